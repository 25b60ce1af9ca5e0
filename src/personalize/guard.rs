//! The adaptation guard: an adapted head goes live only if it is not worse than the base on
//! held-out data.

use super::eval::Evaluation;

/// What "not worse than the base" means.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuardPolicy {
    /// Fewer held-out examples than this is not enough evidence to accept anything.
    pub min_held_out: u32,
    /// Largest tolerated drop in held-out accuracy versus the base (absolute, e.g. `0.0`).
    pub max_accuracy_drop: f32,
    /// Largest tolerated rise in held-out log-loss versus the base (nats).
    pub max_log_loss_increase: f32,
}

impl Default for GuardPolicy {
    fn default() -> Self {
        Self {
            min_held_out: 3,
            max_accuracy_drop: 0.0,
            max_log_loss_increase: 0.05,
        }
    }
}

/// Why a candidate head was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Too few held-out examples to tell.
    InsufficientEvidence,
    /// Held-out accuracy fell below the base's by more than allowed.
    AccuracyDropped,
    /// Held-out log-loss rose above the base's by more than allowed.
    LogLossIncreased,
}

/// The guard's decision on a candidate head.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// The candidate may replace the live head.
    Accepted,
    /// The candidate is discarded; the live head (or the base) stays.
    Rejected(Rejection),
}

impl GuardPolicy {
    /// Compares a candidate's held-out evaluation with the base's.
    ///
    /// `held_out` is `None` when there is no held-out data at all.
    pub fn judge(&self, held_out: Option<(&Evaluation, &Evaluation)>) -> Verdict {
        let Some((base, candidate)) = held_out else {
            return Verdict::Rejected(Rejection::InsufficientEvidence);
        };
        if candidate.examples < self.min_held_out.max(1) {
            return Verdict::Rejected(Rejection::InsufficientEvidence);
        }
        // Written so that NaN metrics fail the checks.
        let accuracy_ok = candidate.accuracy >= base.accuracy - self.max_accuracy_drop;
        if !accuracy_ok {
            return Verdict::Rejected(Rejection::AccuracyDropped);
        }
        let log_loss_ok = candidate.log_loss <= base.log_loss + self.max_log_loss_increase;
        if !log_loss_ok {
            return Verdict::Rejected(Rejection::LogLossIncreased);
        }
        Verdict::Accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(examples: u32, accuracy: f32, log_loss: f32) -> Evaluation {
        Evaluation {
            examples,
            accuracy,
            log_loss,
            calibration_error: 0.0,
        }
    }

    #[test]
    fn accepts_better_and_rejects_worse_or_unproven() {
        let policy = GuardPolicy::default();
        let base = eval(10, 0.6, 0.9);
        assert_eq!(
            policy.judge(Some((&base, &eval(10, 0.8, 0.5)))),
            Verdict::Accepted
        );
        assert_eq!(
            policy.judge(Some((&base, &eval(10, 0.5, 0.5)))),
            Verdict::Rejected(Rejection::AccuracyDropped)
        );
        assert_eq!(
            policy.judge(Some((&base, &eval(10, 0.7, 1.5)))),
            Verdict::Rejected(Rejection::LogLossIncreased)
        );
        assert_eq!(
            policy.judge(Some((&base, &eval(2, 1.0, 0.1)))),
            Verdict::Rejected(Rejection::InsufficientEvidence)
        );
        assert_eq!(
            policy.judge(None),
            Verdict::Rejected(Rejection::InsufficientEvidence)
        );
        assert_eq!(
            policy.judge(Some((&base, &eval(10, f32::NAN, 0.1)))),
            Verdict::Rejected(Rejection::AccuracyDropped)
        );
    }
}
