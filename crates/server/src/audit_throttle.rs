//! Aggregation of repeated identical audit events (rejected attempts), so that someone
//! replaying one refused request cannot write thousands of audit rows.
//!
//! The first event of a kind (org, actor, action, target, outcome) is written at once. Further
//! identical events within the window are counted, not written; the first one after the window
//! is written with the count of those it stands for in its outcome
//! (`bootstrap_token_used (+41 identical in the previous 60 s)`). At most one row per kind and
//! window reaches the trail, and no rejection goes uncounted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::storage::AuditEvent;

/// Above this many tracked kinds, expired ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

type Kind = (String, String, String, String, String);

struct Seen {
    window_start: Instant,
    suppressed: u64,
}

/// Decides which rejected-attempt audit events are written.
pub struct AuditThrottle {
    window: Duration,
    seen: Mutex<HashMap<Kind, Seen>>,
}

impl std::fmt::Debug for AuditThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditThrottle")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

fn kind_of(event: &AuditEvent) -> Kind {
    (
        event.org_id.clone(),
        event.actor.clone(),
        event.action.clone(),
        event.target.clone(),
        event.outcome.clone(),
    )
}

impl AuditThrottle {
    /// A throttle writing at most one event of each kind per `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The event to write for `event` now, or `None` when it is counted into the next one.
    pub fn admit(&self, event: AuditEvent) -> Option<AuditEvent> {
        self.admit_at(event, Instant::now())
    }

    fn admit_at(&self, mut event: AuditEvent, now: Instant) -> Option<AuditEvent> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > PRUNE_ABOVE {
            let window = self.window;
            seen.retain(|_, s| now.duration_since(s.window_start) < window || s.suppressed > 0);
        }
        let kind = kind_of(&event);
        match seen.get_mut(&kind) {
            Some(entry) if now.duration_since(entry.window_start) < self.window => {
                entry.suppressed += 1;
                None
            }
            Some(entry) => {
                if entry.suppressed > 0 {
                    event.outcome = format!(
                        "{} (+{} identical in the previous {} s)",
                        event.outcome,
                        entry.suppressed,
                        self.window.as_secs()
                    );
                }
                entry.window_start = now;
                entry.suppressed = 0;
                Some(event)
            }
            None => {
                seen.insert(
                    kind,
                    Seen {
                        window_start: now,
                        suppressed: 0,
                    },
                );
                Some(event)
            }
        }
    }

    /// How many identical events are counted but not yet written, over every kind.
    pub fn pending(&self) -> u64 {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.values().map(|s| s.suppressed).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(outcome: &str) -> AuditEvent {
        AuditEvent {
            org_id: "org".into(),
            actor: "bootstrap:ab".into(),
            action: "device.enroll.rejected".into(),
            target: "bootstrap:ab".into(),
            outcome: outcome.into(),
            request_id: "req".into(),
            at: 1,
        }
    }

    #[test]
    fn repeats_within_the_window_are_counted_into_the_next_row() {
        let throttle = AuditThrottle::new(Duration::from_secs(60));
        let start = Instant::now();
        assert!(throttle.admit_at(event("used"), start).is_some());
        for i in 1..=41 {
            let at = start + Duration::from_millis(i * 100);
            assert!(throttle.admit_at(event("used"), at).is_none());
        }
        assert_eq!(throttle.pending(), 41);
        let other = throttle.admit_at(event("expired"), start + Duration::from_secs(1));
        assert_eq!(other.unwrap().outcome, "expired");
        let next = throttle
            .admit_at(event("used"), start + Duration::from_secs(61))
            .unwrap();
        assert_eq!(next.outcome, "used (+41 identical in the previous 60 s)");
        assert_eq!(throttle.pending(), 0);
    }
}
