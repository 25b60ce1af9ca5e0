//! Rollback protection: the ledger of live rows.
//!
//! Every sealed value carries a version drawn from one store-wide counter, and the version
//! is bound into the value's associated data (`cipher.rs`, record layout 2), so a value
//! cannot be relabelled with another version. The ledger says which version of each row is
//! the live one, in two forms:
//!
//! - **On disk**, the single row of table `ledger`: the counter and, per sealed table, the
//!   number of live rows and the lane-wise sum (mod 2^64) of a keyed hash of each live row's
//!   table, row key and version; the whole state is tagged with HMAC-SHA256 under the
//!   ledger key, which is derived from the lookup key and so sits under the host's
//!   key-encryption key. Opening the store hashes every row and compares: a value written
//!   back over a newer one, a deleted row written back, a row deleted or added behind the
//!   store's back all fail with [`TamperKind::RowSetChanged`].
//! - **In memory**, the live version of every row, built from the verified disk state at
//!   open and kept by the writer. Every read compares the stored version with it, so a
//!   replay while the store is open fails at once with [`TamperKind::Replayed`], and a row
//!   missing from the file with [`TamperKind::RowSetChanged`].
//!
//! A write computes its ledger changes beside the transaction ([`Changes`]), writes the new
//! ledger row in the same transaction and applies the changes to memory only after the
//! commit, so a failed or interrupted write leaves both forms as they were.
//!
//! A whole file rolled back to an earlier copy is consistent and opens; detecting that
//! needs state outside the file (see `docs/threat-model.md`, ADR 0015).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::artifacts;
use super::cipher::{Cipher, LOOKUP_LEN, Slot};
use super::error::{Result, StoreError, TamperKind};
use super::events;
use super::keys;
use super::kv;

/// The sealed tables whose rows the ledger tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// `kv.value`.
    Kv = 0,
    /// `events.payload`.
    Events = 1,
    /// `artifact_chunks.data`.
    Chunks = 2,
    /// `artifacts.manifest`.
    Manifests = 3,
}

impl Table {
    const ALL: [Table; 4] = [Table::Kv, Table::Events, Table::Chunks, Table::Manifests];

    fn name(self) -> &'static str {
        match self {
            Table::Kv => kv::TABLE,
            Table::Events => events::TABLE,
            Table::Chunks => artifacts::CHUNK_TABLE,
            Table::Manifests => artifacts::TABLE,
        }
    }

    fn column(self) -> &'static str {
        match self {
            Table::Kv => kv::COLUMN,
            Table::Events => events::COLUMN,
            Table::Chunks => artifacts::CHUNK_COLUMN,
            Table::Manifests => artifacts::MANIFEST_COLUMN,
        }
    }

    /// Byte that keeps the tables apart in memory keys and entry hashes.
    fn tag(self) -> u8 {
        self as u8 + 1
    }

    fn tampered(self, kind: TamperKind) -> StoreError {
        StoreError::Tampered {
            table: self.name(),
            column: self.column(),
            kind,
        }
    }

    /// The slot of a value of this table at `row` with `version`.
    pub(crate) fn slot(self, row: &[u8], version: u64) -> Slot<'_> {
        Slot {
            table: self.name(),
            column: self.column(),
            row,
            version: Some(version),
        }
    }
}

fn ledger_tampered(kind: TamperKind) -> StoreError {
    StoreError::Tampered {
        table: "ledger",
        column: "state",
        kind,
    }
}

fn key(table: Table, row: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + row.len());
    key.push(table.tag());
    key.extend_from_slice(row);
    key
}

/// A stored version as read from its column: negative values (never written) map to 0,
/// which no value is sealed with.
pub(crate) fn from_sql(version: i64) -> u64 {
    u64::try_from(version).unwrap_or(0)
}

/// A version for its column.
pub(crate) fn to_sql(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|_| StoreError::KeySet("ledger counter exhausted"))
}

/// Live rows of one table: how many, and the lane-wise sum of their entry hashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Digest {
    count: u64,
    sum: [u64; 4],
}

impl Digest {
    fn lanes(entry: &[u8; LOOKUP_LEN]) -> [u64; 4] {
        let mut lanes = [0u64; 4];
        for (lane, bytes) in lanes.iter_mut().zip(entry.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            *lane = u64::from_be_bytes(b);
        }
        lanes
    }

    fn add(&mut self, entry: &[u8; LOOKUP_LEN]) {
        self.count = self.count.wrapping_add(1);
        for (sum, lane) in self.sum.iter_mut().zip(Self::lanes(entry)) {
            *sum = sum.wrapping_add(lane);
        }
    }

    fn sub(&mut self, entry: &[u8; LOOKUP_LEN]) {
        self.count = self.count.wrapping_sub(1);
        for (sum, lane) in self.sum.iter_mut().zip(Self::lanes(entry)) {
            *sum = sum.wrapping_sub(lane);
        }
    }
}

/// What the ledger row authenticates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    /// Last version handed out.
    counter: u64,
    tables: [Digest; 4],
}

impl State {
    const FORMAT: u8 = 1;
    const LEN: usize = 1 + 8 + 4 * 40;

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.push(Self::FORMAT);
        out.extend_from_slice(&self.counter.to_be_bytes());
        for digest in &self.tables {
            out.extend_from_slice(&digest.count.to_be_bytes());
            for lane in digest.sum {
                out.extend_from_slice(&lane.to_be_bytes());
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != Self::LEN || bytes[0] != Self::FORMAT {
            return None;
        }
        let mut words = bytes[1..].chunks_exact(8).map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_be_bytes(b)
        });
        let mut state = State {
            counter: words.next()?,
            ..State::default()
        };
        for digest in &mut state.tables {
            digest.count = words.next()?;
            for lane in &mut digest.sum {
                *lane = words.next()?;
            }
        }
        Some(state)
    }
}

/// Whether the store has its ledger row (false before the schema-3 upgrade finishes).
pub(crate) fn exists(conn: &Connection) -> Result<bool> {
    Ok(read_row(conn)?.is_some())
}

fn read_row(conn: &Connection) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    Ok(conn
        .prepare_cached("SELECT state, tag FROM ledger WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Calls `f(table, row key, stored version)` for every sealed value in the file.
fn for_each_row(
    conn: &Connection,
    mut f: impl FnMut(Table, &[u8], i64) -> Result<()>,
) -> Result<()> {
    {
        let mut stmt = conn.prepare("SELECT namespace, lookup, ver FROM kv")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (ns, lookup): (String, Vec<u8>) = (r.get(0)?, r.get(1)?);
            f(Table::Kv, &kv::row_key(&ns, &lookup), r.get(2)?)?;
        }
    }
    {
        let mut stmt = conn.prepare("SELECT namespace, id, recorded_at, ver FROM events")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let ns: String = r.get(0)?;
            f(
                Table::Events,
                &events::row_key(&ns, r.get(1)?, r.get(2)?),
                r.get(3)?,
            )?;
        }
    }
    {
        let mut stmt = conn.prepare(
            "SELECT a.namespace, a.lookup, c.seq, c.ver
             FROM artifact_chunks c LEFT JOIN artifacts a ON a.id = c.artifact_id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (ns, lookup): (Option<String>, Option<Vec<u8>>) = (r.get(0)?, r.get(1)?);
            let (Some(ns), Some(lookup)) = (ns, lookup) else {
                return Err(Table::Chunks.tampered(TamperKind::RowSetChanged));
            };
            f(
                Table::Chunks,
                &artifacts::chunk_row(&ns, &lookup, r.get(2)?),
                r.get(3)?,
            )?;
        }
    }
    {
        let mut stmt = conn
            .prepare("SELECT namespace, lookup, ver FROM artifacts WHERE manifest IS NOT NULL")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (ns, lookup): (String, Vec<u8>) = (r.get(0)?, r.get(1)?);
            f(
                Table::Manifests,
                &artifacts::manifest_row(&ns, &lookup),
                r.get(2)?,
            )?;
        }
    }
    Ok(())
}

/// The live version of every row, verified against the ledger row. One per open store.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    live: BTreeMap<Vec<u8>, u64>,
    state: State,
    /// The ledger row (state, then tag) as last verified or written by this store.
    stored: Vec<u8>,
}

impl Ledger {
    /// Reads the ledger row, checks its tag, hashes every sealed row of the file and
    /// compares. Cost: one HMAC per row, no decryption; memory: one entry per row.
    ///
    /// Fails with `Tampered { table: "ledger", .. }` when the row is missing or altered,
    /// and with [`TamperKind::RowSetChanged`] naming the first table whose rows differ.
    pub(crate) fn load(conn: &Connection, cipher: &Cipher) -> Result<Self> {
        if conn.is_autocommit() {
            // One snapshot for the ledger row and every table.
            let tx = conn.unchecked_transaction()?;
            let ledger = Self::load(&tx, cipher);
            tx.finish()?;
            return ledger;
        }
        let (state_bytes, tag) =
            read_row(conn)?.ok_or(ledger_tampered(TamperKind::RowSetChanged))?;
        if !cipher.verify_ledger_tag(&state_bytes, &tag) {
            return Err(ledger_tampered(TamperKind::AuthenticationFailed));
        }
        let state =
            State::decode(&state_bytes).ok_or(ledger_tampered(TamperKind::AuthenticationFailed))?;
        let mut live = BTreeMap::new();
        let mut found = [Digest::default(); 4];
        for_each_row(conn, |table, row, stored| {
            let version = from_sql(stored);
            if version == 0 || version > state.counter {
                return Err(table.tampered(TamperKind::RowSetChanged));
            }
            if live.insert(key(table, row), version).is_some() {
                return Err(table.tampered(TamperKind::RowSetChanged));
            }
            found[table as usize].add(&cipher.ledger_entry(table.tag(), row, version));
            Ok(())
        })?;
        for table in Table::ALL {
            if found[table as usize] != state.tables[table as usize] {
                return Err(table.tampered(TamperKind::RowSetChanged));
            }
        }
        let mut stored = state_bytes;
        stored.extend_from_slice(&tag);
        Ok(Self {
            live,
            state,
            stored,
        })
    }

    /// Brings this ledger up to date with the file before a write or a disputed read. A
    /// ledger row written by another connection (a newer counter under a valid tag) is
    /// verified in full and taken; an older or altered one is tampering.
    pub(crate) fn sync(&mut self, conn: &Connection, cipher: &Cipher) -> Result<()> {
        let (state_bytes, tag) =
            read_row(conn)?.ok_or(ledger_tampered(TamperKind::RowSetChanged))?;
        let unchanged = self.stored.len() == state_bytes.len() + tag.len()
            && self.stored.starts_with(&state_bytes)
            && self.stored.ends_with(&tag);
        if unchanged {
            return Ok(());
        }
        if !cipher.verify_ledger_tag(&state_bytes, &tag) {
            return Err(ledger_tampered(TamperKind::AuthenticationFailed));
        }
        let state =
            State::decode(&state_bytes).ok_or(ledger_tampered(TamperKind::AuthenticationFailed))?;
        if state.counter <= self.state.counter {
            return Err(ledger_tampered(TamperKind::RowSetChanged));
        }
        *self = Self::load(conn, cipher)?;
        Ok(())
    }

    /// Fails unless `stored` is the live version of `row`: [`TamperKind::Replayed`] for an
    /// older or deleted value written back.
    pub(crate) fn check(&self, table: Table, row: &[u8], stored: i64) -> Result<()> {
        match self.live.get(&key(table, row)) {
            Some(&live) if live == from_sql(stored) => Ok(()),
            _ => Err(table.tampered(TamperKind::Replayed)),
        }
    }

    /// Fails with [`TamperKind::RowSetChanged`] if `row`, absent from the file, is live.
    pub(crate) fn check_absent(&self, table: Table, row: &[u8]) -> Result<()> {
        if self.live.contains_key(&key(table, row)) {
            Err(table.tampered(TamperKind::RowSetChanged))
        } else {
            Ok(())
        }
    }

    /// Fails with [`TamperKind::RowSetChanged`] unless `ids` are exactly the first `limit`
    /// live events of namespace `ns` after `after` (a scan's result, so none was dropped).
    pub(crate) fn check_event_ids(
        &self,
        ns: &str,
        after: i64,
        limit: usize,
        ids: &[i64],
    ) -> Result<()> {
        let prefix = key(Table::Events, &events::namespace_prefix(ns));
        let mut start = prefix.clone();
        start.extend_from_slice(&after.saturating_add(1).max(0).to_be_bytes());
        let expected = self
            .live
            .range(start..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| events::id_in_row_suffix(&k[prefix.len()..]))
            .take(limit);
        if expected.eq(ids.iter().copied()) {
            Ok(())
        } else {
            Err(Table::Events.tampered(TamperKind::RowSetChanged))
        }
    }

    /// Starts recording the ledger changes of one write.
    pub(crate) fn begin(&self) -> Changes<'_> {
        Changes {
            base: self,
            overlay: BTreeMap::new(),
            state: self.state,
        }
    }

    /// Applies a committed write's changes.
    pub(crate) fn apply(&mut self, update: Update) {
        for (key, version) in update.overlay {
            match version {
                Some(version) => {
                    self.live.insert(key, version);
                }
                None => {
                    self.live.remove(&key);
                }
            }
        }
        self.state = update.state;
        self.stored = update.stored;
    }
}

/// The ledger changes of one write transaction, over the ledger as it was when it began.
#[derive(Debug)]
pub(crate) struct Changes<'a> {
    base: &'a Ledger,
    overlay: BTreeMap<Vec<u8>, Option<u64>>,
    state: State,
}

/// Changes written to the ledger row by a transaction, applied to memory after its commit.
#[derive(Debug)]
pub(crate) struct Update {
    overlay: BTreeMap<Vec<u8>, Option<u64>>,
    state: State,
    stored: Vec<u8>,
}

impl Changes<'_> {
    fn current(&self, key: &[u8]) -> Option<u64> {
        match self.overlay.get(key) {
            Some(version) => *version,
            None => self.base.live.get(key).copied(),
        }
    }

    fn retire(&mut self, cipher: &Cipher, table: Table, key: Vec<u8>) {
        if let Some(old) = self.current(&key) {
            self.state.tables[table as usize].sub(&cipher.ledger_entry(
                table.tag(),
                &key[1..],
                old,
            ));
            self.overlay.insert(key, None);
        }
    }

    /// A fresh version for a new value of `row`, which replaces the live one (if any).
    pub(crate) fn assign(&mut self, cipher: &Cipher, table: Table, row: &[u8]) -> Result<u64> {
        let key = key(table, row);
        self.retire(cipher, table, key.clone());
        let version = self
            .state
            .counter
            .checked_add(1)
            .ok_or(StoreError::KeySet("ledger counter exhausted"))?;
        to_sql(version)?;
        self.state.counter = version;
        self.state.tables[table as usize].add(&cipher.ledger_entry(table.tag(), row, version));
        self.overlay.insert(key, Some(version));
        Ok(version)
    }

    /// Retires `row` (deleted by this write).
    pub(crate) fn remove(&mut self, cipher: &Cipher, table: Table, row: &[u8]) {
        self.retire(cipher, table, key(table, row));
    }

    /// Retires every live row of `table` whose row key is `prefix` followed by a suffix
    /// `matches` accepts, whatever the file holds: a row hidden from a delete (say, moved
    /// to another namespace) cannot come back later.
    pub(crate) fn remove_matching(
        &mut self,
        cipher: &Cipher,
        table: Table,
        prefix: &[u8],
        matches: impl Fn(&[u8]) -> bool,
    ) {
        let prefix = key(table, prefix);
        let mut keys: Vec<Vec<u8>> = self
            .base
            .live
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        keys.extend(
            self.overlay
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone()),
        );
        keys.sort();
        keys.dedup();
        for key in keys {
            if matches(&key[prefix.len()..]) {
                self.retire(cipher, table, key);
            }
        }
    }

    /// Writes the new ledger row in `tx` if anything changed; the caller applies the
    /// returned update to memory once `tx` commits.
    pub(crate) fn finish(self, tx: &Transaction<'_>, cipher: &Cipher) -> Result<Option<Update>> {
        if self.overlay.is_empty() && self.state == self.base.state {
            return Ok(None);
        }
        let state = self.state.encode();
        let tag = cipher.ledger_tag(&state);
        tx.prepare_cached(
            "INSERT INTO ledger (id, state, tag) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, tag = excluded.tag",
        )?
        .execute(params![state, tag])?;
        let mut stored = state;
        stored.extend_from_slice(&tag);
        Ok(Some(Update {
            overlay: self.overlay,
            state: self.state,
            stored,
        }))
    }
}

/// An artifact row as the upgrade reads it: id, namespace, lookup hash, sealed manifest.
type ArtifactRow = (i64, String, Vec<u8>, Option<Vec<u8>>);

/// Gives every value of a store without a ledger (a new store, or one written before
/// schema 3) a version, re-seals it under the primary key with record layout 2, and writes
/// the first ledger row, all in `tx`.
///
/// Refuses with [`TamperKind::RowSetChanged`] when any value already has a version: the
/// ledger of a versioned store was deleted, and authenticating its rows again would accept
/// whatever the file now holds.
pub(crate) fn authenticate_existing(tx: &Transaction<'_>, cipher: &Cipher) -> Result<()> {
    let versioned: i64 = tx.query_row(
        "SELECT (SELECT COUNT(*) FROM kv WHERE ver != 0)
              + (SELECT COUNT(*) FROM events WHERE ver != 0)
              + (SELECT COUNT(*) FROM artifact_chunks WHERE ver != 0)
              + (SELECT COUNT(*) FROM artifacts WHERE ver != 0)",
        [],
        |r| r.get(0),
    )?;
    if versioned != 0 {
        return Err(ledger_tampered(TamperKind::RowSetChanged));
    }
    let values: i64 = tx.query_row(
        "SELECT (SELECT COUNT(*) FROM kv) + (SELECT COUNT(*) FROM events)
              + (SELECT COUNT(*) FROM artifact_chunks)
              + (SELECT COUNT(*) FROM artifacts WHERE manifest IS NOT NULL)",
        [],
        |r| r.get(0),
    )?;
    keys::reserve_nonces_in(tx, cipher.primary_id(), u64::try_from(values).unwrap_or(0))?;

    let empty = Ledger::default();
    let mut changes = empty.begin();
    let mut reseal = |table: Table, row: &[u8], sealed: &[u8]| -> Result<(i64, Vec<u8>)> {
        let legacy = Slot {
            version: None,
            ..table.slot(row, 0)
        };
        let plain = cipher.open(legacy, sealed)?;
        let version = changes.assign(cipher, table, row)?;
        Ok((
            to_sql(version)?,
            cipher.seal(table.slot(row, version), &plain)?,
        ))
    };
    let primary = cipher.primary_id();

    let kv_rows: Vec<(i64, String, Vec<u8>)> = tx
        .prepare("SELECT id, namespace, lookup FROM kv ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (id, ns, lookup) in kv_rows {
        let sealed: Vec<u8> =
            tx.query_row("SELECT value FROM kv WHERE id = ?1", [id], |r| r.get(0))?;
        let (ver, value) = reseal(Table::Kv, &kv::row_key(&ns, &lookup), &sealed)?;
        tx.execute(
            "UPDATE kv SET value = ?1, key_id = ?2, ver = ?3, byte_len = ?4 WHERE id = ?5",
            params![value, primary, ver, value.len() as i64, id],
        )?;
    }

    let event_rows: Vec<(i64, String, i64)> = tx
        .prepare("SELECT id, namespace, recorded_at FROM events ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (id, ns, at) in event_rows {
        let sealed: Vec<u8> =
            tx.query_row("SELECT payload FROM events WHERE id = ?1", [id], |r| {
                r.get(0)
            })?;
        let (ver, payload) = reseal(Table::Events, &events::row_key(&ns, id, at), &sealed)?;
        tx.execute(
            "UPDATE events SET payload = ?1, key_id = ?2, ver = ?3, byte_len = ?4 WHERE id = ?5",
            params![payload, primary, ver, payload.len() as i64, id],
        )?;
    }

    let artifact_rows: Vec<ArtifactRow> = tx
        .prepare("SELECT id, namespace, lookup, manifest FROM artifacts ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (id, ns, lookup, manifest) in artifact_rows {
        let seqs: Vec<i64> = tx
            .prepare("SELECT seq FROM artifact_chunks WHERE artifact_id = ?1 ORDER BY seq")?
            .query_map([id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for seq in seqs {
            let sealed: Vec<u8> = tx.query_row(
                "SELECT data FROM artifact_chunks WHERE artifact_id = ?1 AND seq = ?2",
                params![id, seq],
                |r| r.get(0),
            )?;
            let row = artifacts::chunk_row(&ns, &lookup, seq);
            let (ver, data) = reseal(Table::Chunks, &row, &sealed)?;
            tx.execute(
                "UPDATE artifact_chunks SET data = ?1, key_id = ?2, ver = ?3
                 WHERE artifact_id = ?4 AND seq = ?5",
                params![data, primary, ver, id, seq],
            )?;
        }
        if let Some(sealed) = manifest {
            let row = artifacts::manifest_row(&ns, &lookup);
            let (ver, manifest) = reseal(Table::Manifests, &row, &sealed)?;
            tx.execute(
                "UPDATE artifacts SET manifest = ?1, key_id = ?2, ver = ?3 WHERE id = ?4",
                params![manifest, primary, ver, id],
            )?;
        }
    }
    // Written even when nothing changed: a new store starts with an empty ledger row.
    let state = changes.state.encode();
    let tag = cipher.ledger_tag(&state);
    tx.execute(
        "INSERT INTO ledger (id, state, tag) VALUES (1, ?1, ?2)",
        params![state, tag],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let mut state = State {
            counter: 42,
            ..State::default()
        };
        state.tables[2].add(&[7; LOOKUP_LEN]);
        state.tables[3].add(&[0xFF; LOOKUP_LEN]);
        state.tables[3].add(&[0xFF; LOOKUP_LEN]);
        let bytes = state.encode();
        assert_eq!(bytes.len(), State::LEN);
        assert_eq!(State::decode(&bytes), Some(state));
        assert_eq!(State::decode(&bytes[1..]), None);
    }

    #[test]
    fn digest_is_order_independent_and_removal_undoes_addition() {
        let (a, b) = ([1u8; LOOKUP_LEN], [0xF0u8; LOOKUP_LEN]);
        let (mut x, mut y) = (Digest::default(), Digest::default());
        x.add(&a);
        x.add(&b);
        y.add(&b);
        y.add(&a);
        assert_eq!(x, y);
        x.sub(&a);
        x.sub(&b);
        assert_eq!(x, Digest::default());
        // A row counted twice does not cancel out (unlike an XOR of hashes).
        let mut twice = Digest::default();
        twice.add(&a);
        twice.add(&a);
        assert_ne!(twice.sum, [0; 4]);
    }
}
