//! The hash-chained audit trail: entry hashing and chain verification (no I/O).
//!
//! Each org has its own chain. Entry `n` stores the hash of entry `n - 1` (`prev_hash`, the
//! [`GENESIS_HASH`] for the first) and its own hash, SHA-256 over `prev_hash` and the entry's
//! fields. The storage also keeps each chain's head, so deleting the newest entries is detected
//! too. Someone able to rewrite both the rows and the head can still forge a consistent chain;
//! exporting heads elsewhere (e.g. with the JSON Lines export) closes that gap.

use edgekeep_protocol::api::AuditEntry;

use crate::storage::{AuditEvent, Storage, StorageError};

/// `prev_hash` of the first entry of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of an entry at `seq` following `prev_hash`, as lowercase hex.
pub fn entry_hash(prev_hash: &str, seq: i64, event: &AuditEvent) -> String {
    let fields = (
        seq,
        event.at,
        &event.org_id,
        &event.actor,
        &event.action,
        &event.target,
        &event.outcome,
        &event.request_id,
    );
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(prev_hash.as_bytes());
    ctx.update(b"\n");
    // A tuple of numbers and strings always serializes.
    ctx.update(
        serde_json::to_string(&fields)
            .unwrap_or_default()
            .as_bytes(),
    );
    to_hex(ctx.finish().as_ref())
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The first place where a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// Entries `expected..found` are missing (deleted).
    #[error("entries {expected} to {} are missing (deleted)", found - 1)]
    Missing {
        /// The first missing sequence number.
        expected: i64,
        /// The next sequence number present.
        found: i64,
    },
    /// The entry's content no longer matches its hash (edited).
    #[error("entry {seq} was edited (its hash does not match its content)")]
    Edited {
        /// The edited entry.
        seq: i64,
    },
    /// The entry does not point to its predecessor's hash: the predecessor was rewritten.
    #[error("entry {seq} does not link to entry {} (entry {} was rewritten)", seq - 1, seq - 1)]
    BrokenLink {
        /// The entry whose `prev_hash` does not match.
        seq: i64,
    },
    /// The newest entries do not match the recorded head: they were deleted or rewritten.
    #[error(
        "chain ends at entry {last} but its head records entry {head} (tail deleted or rewritten)"
    )]
    HeadMismatch {
        /// The head's sequence number.
        head: i64,
        /// The last entry present.
        last: i64,
    },
}

/// Checks a whole chain in order against its recorded head. Returns the number of entries.
pub fn verify_chain(
    entries: &[AuditEntry],
    head: Option<&(i64, String)>,
) -> Result<u64, ChainBreak> {
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut expected = 1;
    for entry in entries {
        if entry.seq != expected {
            return Err(ChainBreak::Missing {
                expected,
                found: entry.seq,
            });
        }
        if entry.prev_hash != prev_hash {
            return Err(ChainBreak::BrokenLink { seq: entry.seq });
        }
        let event = AuditEvent {
            org_id: entry.org_id.clone(),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            target: entry.target.clone(),
            outcome: entry.outcome.clone(),
            request_id: entry.request_id.clone(),
            at: entry.at,
        };
        if entry_hash(&prev_hash, entry.seq, &event) != entry.hash {
            return Err(ChainBreak::Edited { seq: entry.seq });
        }
        prev_hash.clone_from(&entry.hash);
        expected += 1;
    }
    let last = expected - 1;
    match head {
        Some((seq, hash)) if *seq != last || *hash != prev_hash => {
            Err(ChainBreak::HeadMismatch { head: *seq, last })
        }
        None if last != 0 => Err(ChainBreak::HeadMismatch { head: 0, last }),
        _ => Ok(last as u64),
    }
}

/// The verification result of one org's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Org id.
    pub org_id: String,
    /// Entries checked, or the first break.
    pub result: Result<u64, ChainBreak>,
}

/// Verifies the chain of one org.
pub fn verify_org(storage: &dyn Storage, org_id: &str) -> Result<ChainReport, StorageError> {
    let entries = storage.audit_entries(org_id, None, None)?;
    let head = storage.audit_head(org_id)?;
    Ok(ChainReport {
        org_id: org_id.to_owned(),
        result: verify_chain(&entries, head.as_ref()),
    })
}

/// Verifies the chains of every org.
pub fn verify_all(storage: &dyn Storage) -> Result<Vec<ChainReport>, StorageError> {
    storage
        .org_ids()?
        .iter()
        .map(|org| verify_org(storage, org))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let event = AuditEvent {
                    org_id: "org".into(),
                    actor: "system".into(),
                    action: format!("a{seq}"),
                    target: "t".into(),
                    outcome: "ok".into(),
                    request_id: "r".into(),
                    at: seq,
                };
                let hash = entry_hash(&prev, seq, &event);
                let entry = AuditEntry {
                    seq,
                    at: event.at,
                    org_id: event.org_id,
                    actor: event.actor,
                    action: event.action,
                    target: event.target,
                    outcome: event.outcome,
                    request_id: event.request_id,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                entry
            })
            .collect()
    }

    fn head(entries: &[AuditEntry]) -> (i64, String) {
        let last = entries.last().unwrap();
        (last.seq, last.hash.clone())
    }

    #[test]
    fn intact_chain_verifies() {
        let entries = chain(5);
        assert_eq!(verify_chain(&entries, Some(&head(&entries))), Ok(5));
        assert_eq!(verify_chain(&[], None), Ok(0));
    }

    #[test]
    fn each_tampering_is_located() {
        let entries = chain(5);
        let h = head(&entries);

        let mut edited = entries.clone();
        edited[2].target = "other".into();
        assert_eq!(
            verify_chain(&edited, Some(&h)),
            Err(ChainBreak::Edited { seq: 3 })
        );

        let mut deleted = entries.clone();
        deleted.remove(1);
        assert_eq!(
            verify_chain(&deleted, Some(&h)),
            Err(ChainBreak::Missing {
                expected: 2,
                found: 3
            })
        );

        let mut rehashed = entries.clone();
        rehashed[1].action = "forged".into();
        let event = AuditEvent {
            org_id: "org".into(),
            actor: "system".into(),
            action: "forged".into(),
            target: "t".into(),
            outcome: "ok".into(),
            request_id: "r".into(),
            at: 2,
        };
        rehashed[1].hash = entry_hash(&rehashed[1].prev_hash, 2, &event);
        assert_eq!(
            verify_chain(&rehashed, Some(&h)),
            Err(ChainBreak::BrokenLink { seq: 3 })
        );

        let truncated = &entries[..4];
        assert_eq!(
            verify_chain(truncated, Some(&h)),
            Err(ChainBreak::HeadMismatch { head: 5, last: 4 })
        );
    }
}
