//! The hash-chained audit trail: entry hashing, head authentication, signed checkpoints and
//! chain verification (no I/O).
//!
//! Each org has its own chain. Entry `n` stores the hash of entry `n - 1` (`prev_hash`, the
//! [`GENESIS_HASH`] for the first) and its own hash, SHA-256 over `prev_hash` and the entry's
//! fields, so anyone holding an export can recompute it. The storage keeps each chain's head
//! `(seq, hash)` with an HMAC under the [`AuditKey`], derived from the server secret that lives
//! outside the database: someone with write access to the database alone can neither recompute
//! the chain after an edit nor truncate it, because the head they would need cannot be
//! authenticated. Every org's chain starts with its creation, so an org without a head lost its
//! chain. Restoring an older, genuine head together with the rows before it (a rollback) is only
//! caught with a [`AuditCheckpoint`] kept elsewhere: the server signs its current head on
//! request with its desired-state key, and verification against a checkpoint requires that the
//! chain still holds that entry.

use std::borrow::Cow;

use edgekeep_protocol::api::{AuditCheckpoint, AuditEntry, is_invisible_or_bidi};
use edgekeep_protocol::signing::{SigningKey, VerifyingKey};
use ring::hmac;

use crate::storage::{AuditEvent, AuditHead, Storage, StorageError};

/// `prev_hash` of the first entry of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The key that authenticates chain heads. Derived from the server secret; never stored in the
/// database.
#[derive(Clone)]
pub struct AuditKey(hmac::Key);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(<redacted>)")
    }
}

impl AuditKey {
    /// Derives the audit key from secret key material (the server secret's bytes).
    pub fn derive(secret: &[u8]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derived = hmac::sign(&root, b"edgekeep/v1/audit-head-key");
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    fn message(org_id: &str, seq: i64, hash: &str) -> String {
        format!("edgekeep/v1/audit-head\0{org_id}\0{seq}\0{hash}")
    }

    /// The authentication code of the head `(seq, hash)` of `org_id`'s chain, as hex.
    pub fn head_mac(&self, org_id: &str, seq: i64, hash: &str) -> String {
        to_hex(hmac::sign(&self.0, Self::message(org_id, seq, hash).as_bytes()).as_ref())
    }

    /// Whether `head` of `org_id`'s chain carries a valid authentication code.
    pub fn verify_head(&self, org_id: &str, head: &AuditHead) -> bool {
        let Some(tag) = from_hex(&head.mac) else {
            return false;
        };
        hmac::verify(
            &self.0,
            Self::message(org_id, head.seq, &head.hash).as_bytes(),
            &tag,
        )
        .is_ok()
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

const CHECKPOINT_CONTEXT: &[u8] = b"edgekeep/v1/audit-checkpoint\0";

fn checkpoint_message(org_id: &str, seq: i64, hash: &str, signed_at: i64) -> Vec<u8> {
    format!("{org_id}\0{seq}\0{hash}\0{signed_at}").into_bytes()
}

/// Signs the head of `org_id`'s chain as a checkpoint an auditor keeps outside the server.
pub fn sign_checkpoint(
    key: &SigningKey,
    org_id: &str,
    head: &AuditHead,
    signed_at: i64,
) -> AuditCheckpoint {
    let message = checkpoint_message(org_id, head.seq, &head.hash, signed_at);
    AuditCheckpoint {
        org_id: org_id.to_owned(),
        seq: head.seq,
        hash: head.hash.clone(),
        signed_at,
        key_id: key.key_id(),
        signature: edgekeep_protocol::b64_encode(&key.sign(CHECKPOINT_CONTEXT, &message)),
    }
}

/// Whether `checkpoint` carries a valid signature by `key`.
pub fn checkpoint_signed_by(checkpoint: &AuditCheckpoint, key: &VerifyingKey) -> bool {
    let Some(signature) = edgekeep_protocol::b64_decode(&checkpoint.signature) else {
        return false;
    };
    let message = checkpoint_message(
        &checkpoint.org_id,
        checkpoint.seq,
        &checkpoint.hash,
        checkpoint.signed_at,
    );
    key.verify(CHECKPOINT_CONTEXT, &message, &signature).is_ok()
}

/// Checks that a verified chain still holds the entry a checkpoint recorded.
pub fn check_against(
    entries: &[AuditEntry],
    checkpoint: &AuditCheckpoint,
) -> Result<(), ChainBreak> {
    let seq = checkpoint.seq;
    match entries.iter().find(|e| e.seq == seq) {
        Some(entry) if entry.hash == checkpoint.hash => Ok(()),
        Some(_) => Err(ChainBreak::CheckpointMismatch { seq }),
        None => Err(ChainBreak::BehindCheckpoint {
            seq,
            last: entries.last().map_or(0, |e| e.seq),
        }),
    }
}

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

fn needs_escape(c: char) -> bool {
    c.is_control() || is_invisible_or_bidi(c)
}

/// `text` with control, bidirectional and invisible characters written as `\u{…}`, so an
/// audit field shows what was there and cannot reorder, hide or break the lines around it.
/// Every text field is passed through this before it is hashed and stored.
pub fn display_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// An event with every text field made [`display_safe`].
pub fn safe_event(event: &AuditEvent) -> AuditEvent {
    let safe = |text: &str| display_safe(text).into_owned();
    AuditEvent {
        org_id: safe(&event.org_id),
        actor: safe(&event.actor),
        action: safe(&event.action),
        target: safe(&event.target),
        outcome: safe(&event.outcome),
        request_id: safe(&event.request_id),
        at: event.at,
    }
}

/// One entry as a JSON Lines record in which every non-ASCII bidirectional or invisible
/// character is a JSON `\u` escape (controls already are), so an export viewed in a terminal or
/// editor cannot be made to show other text than it holds. Parses back to the same entry.
pub fn export_line(entry: &AuditEntry) -> Result<String, serde_json::Error> {
    let json = serde_json::to_string(entry)?;
    if !json.chars().any(is_invisible_or_bidi) {
        return Ok(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_invisible_or_bidi(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
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
    /// The head's authentication code is wrong: the chain was recomputed or its head rewritten
    /// by someone without the server secret.
    #[error("the chain head at entry {seq} is not authentic (chain recomputed or head rewritten)")]
    HeadForged {
        /// The head's sequence number.
        seq: i64,
    },
    /// The org exists but its chain and head are gone.
    #[error("the org's audit chain and its head are missing (deleted)")]
    ChainMissing,
    /// A checkpoint names an entry the chain no longer holds: entries were removed and an
    /// older head restored.
    #[error(
        "a signed checkpoint records entry {seq} but the chain ends at entry {last} (rolled back)"
    )]
    BehindCheckpoint {
        /// The checkpoint's sequence number.
        seq: i64,
        /// The last entry present.
        last: i64,
    },
    /// The entry a checkpoint names has another hash now.
    #[error("entry {seq} differs from the signed checkpoint (rewritten)")]
    CheckpointMismatch {
        /// The checkpoint's sequence number.
        seq: i64,
    },
}

/// What a chain is checked against: its authenticated head and whether its org exists.
#[derive(Debug, Clone, Copy)]
pub struct ChainContext<'a> {
    /// The org the chain belongs to.
    pub org_id: &'a str,
    /// The recorded head, if any.
    pub head: Option<&'a AuditHead>,
    /// The key that authenticates heads.
    pub key: &'a AuditKey,
    /// Whether the org still exists (every existing org has a chain).
    pub org_exists: bool,
}

/// Checks a whole chain in order against its authenticated head. Returns the number of
/// entries.
pub fn verify_chain(entries: &[AuditEntry], context: ChainContext<'_>) -> Result<u64, ChainBreak> {
    if context.org_exists && entries.is_empty() && context.head.is_none() {
        return Err(ChainBreak::ChainMissing);
    }
    if let Some(head) = context.head
        && !context.key.verify_head(context.org_id, head)
    {
        return Err(ChainBreak::HeadForged { seq: head.seq });
    }
    let head = context.head;
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
        Some(head) if head.seq != last || head.hash != prev_hash => Err(ChainBreak::HeadMismatch {
            head: head.seq,
            last,
        }),
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

/// Verifies the chain of one org, and that it still holds `checkpoint` when one is given
/// (whose signature the caller has checked).
pub fn verify_org(
    storage: &dyn Storage,
    key: &AuditKey,
    org_id: &str,
    checkpoint: Option<&AuditCheckpoint>,
) -> Result<ChainReport, StorageError> {
    let entries = storage.audit_entries(org_id, None, None)?;
    let head = storage.audit_head(org_id)?;
    let org_exists = storage.org(org_id)?.is_some();
    let context = ChainContext {
        org_id,
        head: head.as_ref(),
        key,
        org_exists,
    };
    let result = verify_chain(&entries, context).and_then(|count| {
        checkpoint
            .map_or(Ok(()), |c| check_against(&entries, c))
            .map(|()| count)
    });
    Ok(ChainReport {
        org_id: org_id.to_owned(),
        result,
    })
}

/// Verifies the chains of every org, each against its checkpoint among `checkpoints` (the
/// newest per org), and reports orgs that have a checkpoint but no longer exist.
pub fn verify_all(
    storage: &dyn Storage,
    key: &AuditKey,
    checkpoints: &[AuditCheckpoint],
) -> Result<Vec<ChainReport>, StorageError> {
    let orgs = storage.org_ids()?;
    let newest = |org: &str| {
        checkpoints
            .iter()
            .filter(|c| c.org_id == org)
            .max_by_key(|c| c.seq)
    };
    let mut reports = orgs
        .iter()
        .map(|org| verify_org(storage, key, org, newest(org)))
        .collect::<Result<Vec<_>, _>>()?;
    for checkpoint in checkpoints {
        if !orgs.contains(&checkpoint.org_id)
            && !reports.iter().any(|r| r.org_id == checkpoint.org_id)
        {
            reports.push(ChainReport {
                org_id: checkpoint.org_id.clone(),
                result: Err(ChainBreak::ChainMissing),
            });
        }
    }
    Ok(reports)
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

    fn key() -> AuditKey {
        AuditKey::derive(&[7; 32])
    }

    fn head(entries: &[AuditEntry]) -> AuditHead {
        let last = entries.last().unwrap();
        AuditHead {
            seq: last.seq,
            hash: last.hash.clone(),
            mac: key().head_mac("org", last.seq, &last.hash),
        }
    }

    fn verify_chain(entries: &[AuditEntry], head: Option<&AuditHead>) -> Result<u64, ChainBreak> {
        super::verify_chain(
            entries,
            ChainContext {
                org_id: "org",
                head,
                key: &key(),
                org_exists: true,
            },
        )
    }

    #[test]
    fn unsafe_characters_are_escaped_in_fields_and_exports() {
        assert_eq!(display_safe("artifact:abc"), "artifact:abc");
        assert_eq!(
            display_safe("a\nb\u{202e}c\u{200b}"),
            "a\\u{000a}b\\u{202e}c\\u{200b}"
        );
        let mut entry = chain(1).remove(0);
        entry.target = "x\u{202e}y\u{e0041}".into();
        let line = export_line(&entry).unwrap();
        assert!(line.is_ascii(), "{line}");
        assert!(line.contains("\\u202e") && line.contains("\\udb40\\udc41"));
        let back: AuditEntry = serde_json::from_str(&line).unwrap();
        assert_eq!(back, entry);
    }

    #[test]
    fn intact_chain_verifies() {
        let entries = chain(5);
        assert_eq!(verify_chain(&entries, Some(&head(&entries))), Ok(5));
        assert_eq!(verify_chain(&[], None), Err(ChainBreak::ChainMissing));
    }

    #[test]
    fn a_recomputed_chain_or_truncation_needs_the_key() {
        let entries = chain(5);
        let mut forged = chain(3);
        forged[2].action = "forged".into();
        let event = AuditEvent {
            org_id: "org".into(),
            actor: "system".into(),
            action: "forged".into(),
            target: "t".into(),
            outcome: "ok".into(),
            request_id: "r".into(),
            at: 3,
        };
        forged[2].hash = entry_hash(&forged[2].prev_hash, 3, &event);
        let wrong_key = AuditKey::derive(&[8; 32]);
        let forged_head = AuditHead {
            seq: 3,
            hash: forged[2].hash.clone(),
            mac: wrong_key.head_mac("org", 3, &forged[2].hash),
        };
        assert_eq!(
            verify_chain(&forged, Some(&forged_head)),
            Err(ChainBreak::HeadForged { seq: 3 })
        );
        let mut copied = head(&entries);
        copied.seq = 4;
        copied.hash.clone_from(&entries[3].hash);
        assert_eq!(
            verify_chain(&entries[..4], Some(&copied)),
            Err(ChainBreak::HeadForged { seq: 4 })
        );
        let mut other_org = head(&entries);
        other_org.mac = key().head_mac("org2", 5, &entries[4].hash);
        assert!(verify_chain(&entries, Some(&other_org)).is_err());
    }

    #[test]
    fn checkpoints_detect_rollback_and_are_signed() {
        let rng = ring::rand::SystemRandom::new();
        let signing = SigningKey::generate(&rng).unwrap();
        let entries = chain(5);
        let checkpoint = sign_checkpoint(&signing, "org", &head(&entries), 100);
        assert!(checkpoint_signed_by(&checkpoint, &signing.public_key()));
        let mut moved = checkpoint.clone();
        moved.seq = 2;
        assert!(!checkpoint_signed_by(&moved, &signing.public_key()));
        assert_eq!(check_against(&entries, &checkpoint), Ok(()));
        assert_eq!(
            check_against(&entries[..3], &checkpoint),
            Err(ChainBreak::BehindCheckpoint { seq: 5, last: 3 })
        );
        let mut rewritten = entries.clone();
        rewritten[4].hash = "00".repeat(32);
        assert_eq!(
            check_against(&rewritten, &checkpoint),
            Err(ChainBreak::CheckpointMismatch { seq: 5 })
        );
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
