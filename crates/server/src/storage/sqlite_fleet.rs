//! [`FleetStorage`] on SQLite.

use edgekeep_protocol::artifact::SemVer;
use edgekeep_protocol::fleet::DeviceCounts;
use edgekeep_protocol::rollout::{ProgressState, RolloutStatus};
use edgekeep_protocol::telemetry::{
    LATENCY_BUCKETS, ModelRef, QualityMetric, TelemetryAck, TelemetryBatch, TelemetryEvent,
};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::fleet::{
    DeviceStatusRecord, FleetStorage, ModelVersionRecord, PublisherKeyRecord, RolloutChange,
    RolloutRecord, TelemetryWindow, VersionLatency, VersionQuality,
};
use super::sqlite::{append_audit_tx, bad};
use super::{AuditEvent, SqliteStorage, StorageError};

const VERSION_COLS: &str = "org_id, model, version, artifact_id, manifest, sealed_content_key, \
     uploaded_at, uploaded_by, approved_at, approved_by";
fn version_row(row: &Row<'_>) -> rusqlite::Result<ModelVersionRecord> {
    Ok(ModelVersionRecord {
        org_id: row.get(0)?,
        model: row.get(1)?,
        version: row.get::<_, i64>(2)? as u64,
        artifact_id: row.get(3)?,
        manifest_json: row.get(4)?,
        sealed_content_key: row.get(5)?,
        uploaded_at: row.get(6)?,
        uploaded_by: row.get(7)?,
        approved_at: row.get(8)?,
        approved_by: row.get(9)?,
    })
}

const ROLLOUT_COLS: &str = "id, org_id, model, version, previous_version, device_group, \
     basis_points, status, created_at, updated_at";
fn rollout_row(row: &Row<'_>) -> rusqlite::Result<RolloutRecord> {
    let status: String = row.get(7)?;
    Ok(RolloutRecord {
        id: row.get(0)?,
        org_id: row.get(1)?,
        model: row.get(2)?,
        version: row.get::<_, i64>(3)? as u64,
        previous_version: row.get::<_, Option<i64>>(4)?.map(|v| v as u64),
        device_group: row.get(5)?,
        basis_points: row.get(6)?,
        status: RolloutStatus::parse(&status).ok_or_else(|| bad(7, "unknown rollout status"))?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

fn json_col<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<Option<T>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| serde_json::from_str(&t).map_err(|_| bad(index, "stored JSON")))
        .transpose()
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Declared telemetry types are numbers, enums and validated names: they always serialize.
    serde_json::to_string(value).unwrap_or_default()
}

fn ensure_status_row(
    tx: &Transaction<'_>,
    org_id: &str,
    device_id: &str,
) -> Result<(), StorageError> {
    tx.execute(
        "INSERT OR IGNORE INTO device_status (device_id, org_id) VALUES (?1, ?2)",
        params![device_id, org_id],
    )?;
    Ok(())
}

fn apply_event(
    tx: &Transaction<'_>,
    org_id: &str,
    device_id: &str,
    event: &TelemetryEvent,
    now: i64,
) -> Result<(), StorageError> {
    match event {
        TelemetryEvent::Health(health) => {
            let text = to_json(health);
            tx.prepare_cached(
                "UPDATE device_status SET health = ?2, health_at = ?3 WHERE device_id = ?1",
            )?
            .execute(params![device_id, text, now])?;
            tx.prepare_cached(
                "INSERT INTO telemetry_health (org_id, device_id, at, health) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(
                params![org_id, device_id, now, text],
            )?;
        }
        TelemetryEvent::Versions(report) => {
            tx.prepare_cached(
                "UPDATE device_status SET sdk_version = ?2, active_models = ?3 WHERE device_id = ?1",
            )?
            .execute(
                params![device_id, to_json(&report.sdk), to_json(&report.active)],
            )?;
        }
        TelemetryEvent::Latency(hist) => {
            tx.prepare_cached(
                "INSERT INTO telemetry_latency (org_id, device_id, model, version, at, counts) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                org_id,
                device_id,
                hist.model.model.as_str(),
                hist.model.version as i64,
                now,
                to_json(&hist.counts)
            ])?;
        }
        TelemetryEvent::Quality(q) => {
            tx.prepare_cached(
                "INSERT INTO telemetry_quality (org_id, device_id, model, version, metric, sum, \
                 count, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                org_id,
                device_id,
                q.model.model.as_str(),
                q.model.version as i64,
                q.metric.as_str(),
                q.sum,
                q.count as i64,
                now
            ])?;
        }
        TelemetryEvent::Events(count) => {
            tx.prepare_cached(
                "INSERT INTO telemetry_events (org_id, device_id, code, count, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                org_id,
                device_id,
                count.code.as_str(),
                count.count as i64,
                now
            ])?;
        }
        TelemetryEvent::RolloutProgress(report) => {
            let rollout: Option<String> = tx
                .query_row(
                    "SELECT id FROM rollouts WHERE org_id = ?1 AND model = ?2 AND version = ?3 \
                     ORDER BY created_at DESC, rowid DESC LIMIT 1",
                    params![
                        org_id,
                        report.model.model.as_str(),
                        report.model.version as i64
                    ],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(rollout) = rollout {
                tx.prepare_cached(
                    "INSERT INTO rollout_progress (rollout_id, device_id, org_id, state, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(rollout_id, device_id) DO UPDATE \
                     SET state = excluded.state, updated_at = excluded.updated_at",
                )?
                .execute(
                    params![rollout, device_id, org_id, report.state.as_str(), now],
                )?;
            }
        }
    }
    Ok(())
}

fn metric_from(text: &str) -> Option<QualityMetric> {
    [
        QualityMetric::Accuracy,
        QualityMetric::LogLoss,
        QualityMetric::CalibrationError,
        QualityMetric::PersonalizedAccuracy,
    ]
    .into_iter()
    .find(|m| m.as_str() == text)
}

impl FleetStorage for SqliteStorage {
    fn insert_publisher_key(
        &self,
        key: &PublisherKeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO publisher_keys (org_id, key_id, name, public_key, \
                 created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    key.org_id,
                    key.key_id,
                    key.name,
                    key.public_key.as_slice(),
                    key.created_at,
                    key.revoked_at
                ],
            )?;
            if inserted == 0 {
                return Err(StorageError::Conflict("publisher key already registered"));
            }
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn publisher_keys(&self, org_id: &str) -> Result<Vec<PublisherKeyRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT org_id, key_id, name, public_key, created_at, revoked_at FROM publisher_keys \
             WHERE org_id = ?1 ORDER BY created_at, key_id",
        )?;
        let rows = stmt
            .query_map([org_id], |row| {
                let bytes: Vec<u8> = row.get(3)?;
                Ok(PublisherKeyRecord {
                    org_id: row.get(0)?,
                    key_id: row.get(1)?,
                    name: row.get(2)?,
                    public_key: bytes.try_into().map_err(|_| bad(3, "public key length"))?,
                    created_at: row.get(4)?,
                    revoked_at: row.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn revoke_publisher_key(
        &self,
        org_id: &str,
        key_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE publisher_keys SET revoked_at = ?3 WHERE org_id = ?1 AND key_id = ?2 \
                 AND revoked_at IS NULL",
                params![org_id, key_id, at],
            )?;
            if changed > 0 {
                append_audit_tx(tx, &self.audit_key, audit)?;
            }
            Ok(changed > 0)
        })
    }

    fn insert_model_version(
        &self,
        v: &ModelVersionRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.write(|tx| {
            let highest: Option<i64> = tx.query_row(
                "SELECT MAX(version) FROM model_versions WHERE org_id = ?1 AND model = ?2",
                params![v.org_id, v.model],
                |row| row.get(0),
            )?;
            if highest.is_some_and(|h| h as u64 >= v.version) {
                return Err(StorageError::Conflict(
                    "versions are monotonic: this version is not above the latest",
                ));
            }
            let inserted = tx.execute(
                &format!(
                    "INSERT OR IGNORE INTO model_versions ({VERSION_COLS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    v.org_id,
                    v.model,
                    v.version as i64,
                    v.artifact_id,
                    v.manifest_json,
                    v.sealed_content_key,
                    v.uploaded_at,
                    v.uploaded_by,
                    v.approved_at,
                    v.approved_by
                ],
            )?;
            if inserted == 0 {
                return Err(StorageError::Conflict("artifact already uploaded"));
            }
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn model_versions(&self, org_id: &str) -> Result<Vec<ModelVersionRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {VERSION_COLS} FROM model_versions WHERE org_id = ?1 ORDER BY model, version"
        ))?;
        let rows = stmt
            .query_map([org_id], version_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn model_version(
        &self,
        org_id: &str,
        model: &str,
        version: u64,
    ) -> Result<Option<ModelVersionRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {VERSION_COLS} FROM model_versions WHERE org_id = ?1 AND model = ?2 \
             AND version = ?3"
        ))?;
        Ok(stmt
            .query_row(params![org_id, model, version as i64], version_row)
            .optional()?)
    }

    fn model_version_by_artifact(
        &self,
        org_id: &str,
        artifact_id: &str,
    ) -> Result<Option<ModelVersionRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {VERSION_COLS} FROM model_versions WHERE org_id = ?1 AND artifact_id = ?2"
        ))?;
        Ok(stmt
            .query_row(params![org_id, artifact_id], version_row)
            .optional()?)
    }

    fn approve_model_version(
        &self,
        org_id: &str,
        model: &str,
        version: u64,
        by: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE model_versions SET approved_at = ?4, approved_by = ?5 WHERE org_id = ?1 \
                 AND model = ?2 AND version = ?3 AND approved_at IS NULL",
                params![org_id, model, version as i64, at, by],
            )?;
            if changed > 0 {
                append_audit_tx(tx, &self.audit_key, audit)?;
            }
            Ok(changed > 0)
        })
    }

    fn insert_rollout(&self, r: &RolloutRecord, audit: &AuditEvent) -> Result<(), StorageError> {
        self.write(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO rollouts ({ROLLOUT_COLS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                params![
                    r.id,
                    r.org_id,
                    r.model,
                    r.version as i64,
                    r.previous_version.map(|v| v as i64),
                    r.device_group,
                    r.basis_points,
                    r.status.as_str(),
                    r.created_at,
                    r.updated_at
                ],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn rollouts(&self, org_id: &str) -> Result<Vec<RolloutRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ROLLOUT_COLS} FROM rollouts WHERE org_id = ?1 ORDER BY created_at, rowid"
        ))?;
        let rows = stmt
            .query_map([org_id], rollout_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn update_rollout(
        &self,
        org_id: &str,
        rollout_id: &str,
        change: &RolloutChange,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            let current: Option<String> = tx
                .query_row(
                    "SELECT status FROM rollouts WHERE org_id = ?1 AND id = ?2",
                    params![org_id, rollout_id],
                    |row| row.get(0),
                )
                .optional()?;
            let allowed = current
                .as_deref()
                .and_then(RolloutStatus::parse)
                .is_some_and(|s| change.from.contains(&s));
            if !allowed {
                return Ok(false);
            }
            tx.execute(
                "UPDATE rollouts SET basis_points = ?3, status = ?4, updated_at = ?5 \
                 WHERE org_id = ?1 AND id = ?2",
                params![
                    org_id,
                    rollout_id,
                    change.basis_points,
                    change.status.as_str(),
                    change.at
                ],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)?;
            Ok(true)
        })
    }

    fn rollout_progress(
        &self,
        org_id: &str,
    ) -> Result<Vec<(String, ProgressState, u64)>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT rollout_id, state, COUNT(*) FROM rollout_progress WHERE org_id = ?1 \
             GROUP BY rollout_id, state",
        )?;
        let rows = stmt
            .query_map([org_id], |row| {
                let state: String = row.get(1)?;
                Ok((
                    row.get(0)?,
                    ProgressState::parse(&state).ok_or_else(|| bad(1, "unknown state"))?,
                    row.get::<_, i64>(2)? as u64,
                ))
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn record_assignment(
        &self,
        org_id: &str,
        rollout_id: &str,
        device_id: &str,
        at: i64,
    ) -> Result<bool, StorageError> {
        self.write(|tx| {
            let added = tx.execute(
                "INSERT OR IGNORE INTO rollout_progress (rollout_id, device_id, org_id, state, \
                 updated_at) VALUES (?1, ?2, ?3, 'assigned', ?4)",
                params![rollout_id, device_id, org_id, at],
            )?;
            Ok(added > 0)
        })
    }

    fn has_progress(
        &self,
        org_id: &str,
        rollout_id: &str,
        device_id: &str,
    ) -> Result<bool, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT 1 FROM rollout_progress WHERE org_id = ?1 AND rollout_id = ?2 \
             AND device_id = ?3",
        )?;
        Ok(stmt.exists(params![org_id, rollout_id, device_id])?)
    }

    fn device_sdk_version(
        &self,
        org_id: &str,
        device_id: &str,
    ) -> Result<Option<SemVer>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT sdk_version FROM device_status WHERE org_id = ?1 AND device_id = ?2",
        )?;
        Ok(stmt
            .query_row([org_id, device_id], |row| json_col::<SemVer>(row, 0))
            .optional()?
            .flatten())
    }

    fn device_active_models(
        &self,
        org_id: &str,
        device_id: &str,
    ) -> Result<Vec<ModelRef>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT active_models FROM device_status WHERE org_id = ?1 AND device_id = ?2",
        )?;
        Ok(stmt
            .query_row([org_id, device_id], |row| json_col::<Vec<ModelRef>>(row, 0))
            .optional()?
            .flatten()
            .unwrap_or_default())
    }

    fn touch_device(&self, org_id: &str, device_id: &str, at: i64) -> Result<(), StorageError> {
        self.write(|tx| {
            ensure_status_row(tx, org_id, device_id)?;
            tx.execute(
                "UPDATE device_status SET last_seen_at = MAX(COALESCE(last_seen_at, 0), ?2) \
                 WHERE device_id = ?1",
                params![device_id, at],
            )?;
            Ok(())
        })
    }

    fn ingest_telemetry(
        &self,
        org_id: &str,
        device_id: &str,
        batch: &TelemetryBatch,
        now: i64,
        window: u64,
    ) -> Result<TelemetryAck, StorageError> {
        self.write(|tx| {
            ensure_status_row(tx, org_id, device_id)?;
            tx.execute(
                "UPDATE device_status SET last_seen_at = ?2 WHERE device_id = ?1",
                params![device_id, now],
            )?;
            let mut acked: i64 = tx.query_row(
                "SELECT acked_through FROM device_status WHERE device_id = ?1",
                [device_id],
                |row| row.get(0),
            )?;
            if let Some(abandoned) = batch.abandoned_through {
                acked = acked.max(abandoned as i64);
            }
            let seq = batch.seq as i64;
            if seq as u64 > acked as u64 + window {
                return Err(StorageError::Conflict("sequence is too far ahead"));
            }
            let held = tx
                .prepare_cached("SELECT 1 FROM telemetry_batches WHERE device_id = ?1 AND seq = ?2")?
                .exists(params![device_id, seq])?;
            let duplicate = seq <= acked || held;
            if !duplicate {
                tx.execute(
                    "INSERT INTO telemetry_batches (device_id, seq, received_at) VALUES (?1, ?2, ?3)",
                    params![device_id, seq, now],
                )?;
                for event in &batch.events {
                    apply_event(tx, org_id, device_id, event, now)?;
                }
            }
            loop {
                let next = tx
                    .prepare_cached(
                        "SELECT 1 FROM telemetry_batches WHERE device_id = ?1 AND seq = ?2",
                    )?
                    .exists(params![device_id, acked + 1])?;
                if !next {
                    break;
                }
                acked += 1;
            }
            tx.execute(
                "DELETE FROM telemetry_batches WHERE device_id = ?1 AND seq <= ?2",
                params![device_id, acked],
            )?;
            tx.execute(
                "UPDATE device_status SET acked_through = ?2 WHERE device_id = ?1",
                params![device_id, acked],
            )?;
            Ok(TelemetryAck {
                acked_through: acked as u64,
                duplicate,
            })
        })
    }

    fn device_statuses(&self, org_id: &str) -> Result<Vec<DeviceStatusRecord>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT d.id, d.device_group, d.revoked_at, s.last_seen_at, s.sdk_version, \
             s.active_models, s.health FROM devices d LEFT JOIN device_status s \
             ON s.device_id = d.id WHERE d.org_id = ?1 ORDER BY d.enrolled_at, d.id",
        )?;
        let rows = stmt
            .query_map([org_id], |row| {
                Ok(DeviceStatusRecord {
                    device_id: row.get(0)?,
                    device_group: row.get(1)?,
                    revoked: row.get::<_, Option<i64>>(2)?.is_some(),
                    last_seen_at: row.get(3)?,
                    sdk_version: json_col::<SemVer>(row, 4)?,
                    active_models: json_col(row, 5)?.unwrap_or_default(),
                    health: json_col(row, 6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn record_fleet_snapshot(
        &self,
        org_id: &str,
        at: i64,
        counts: &DeviceCounts,
    ) -> Result<(), StorageError> {
        let enrolled = i64::try_from(counts.enrolled).unwrap_or(i64::MAX);
        let online = i64::try_from(counts.online).unwrap_or(i64::MAX);
        let never_seen = i64::try_from(counts.never_seen).unwrap_or(i64::MAX);
        self.write(|tx| {
            tx.execute(
                "DELETE FROM fleet_snapshots WHERE org_id = ?1 AND at < ?2",
                params![org_id, at - super::FLEET_HISTORY_SECS],
            )?;
            tx.execute(
                "INSERT INTO fleet_snapshots (org_id, at, enrolled, online, never_seen) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (org_id, at) DO UPDATE SET \
                 enrolled = excluded.enrolled, online = excluded.online, \
                 never_seen = excluded.never_seen",
                params![org_id, at, enrolled, online, never_seen],
            )?;
            Ok(())
        })
    }

    fn fleet_snapshots(
        &self,
        org_id: &str,
        since: i64,
    ) -> Result<Vec<(i64, DeviceCounts)>, StorageError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT at, enrolled, online, never_seen FROM fleet_snapshots \
             WHERE org_id = ?1 AND at >= ?2 ORDER BY at",
        )?;
        let rows = stmt.query_map(params![org_id, since], |row| {
            let count = |i| row.get::<_, i64>(i).map(|v| v.max(0).unsigned_abs());
            Ok((
                row.get(0)?,
                DeviceCounts {
                    enrolled: count(1)?,
                    online: count(2)?,
                    never_seen: count(3)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn last_ingest_at(&self) -> Result<Option<i64>, StorageError> {
        let conn = self.read();
        Ok(conn.query_row(
            "SELECT MAX(received_at) FROM telemetry_batches",
            [],
            |row| row.get(0),
        )?)
    }

    fn ping(&self) -> Result<(), StorageError> {
        let conn = self.read();
        conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?;
        Ok(())
    }

    fn telemetry_window(&self, org_id: &str, since: i64) -> Result<TelemetryWindow, StorageError> {
        type DeviceKey = (String, u64, String);
        let conn = self.read();
        let mut merged: std::collections::BTreeMap<DeviceKey, [u64; LATENCY_BUCKETS]> =
            Default::default();
        let mut stmt = conn.prepare_cached(
            "SELECT model, version, device_id, counts FROM telemetry_latency \
             WHERE org_id = ?1 AND at >= ?2",
        )?;
        let mut rows = stmt.query(params![org_id, since])?;
        while let Some(row) = rows.next()? {
            let counts: [u64; LATENCY_BUCKETS] =
                json_col(row, 3)?.ok_or_else(|| bad(3, "counts"))?;
            let key = (
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)? as u64,
                row.get::<_, String>(2)?,
            );
            let total = merged.entry(key).or_insert([0; LATENCY_BUCKETS]);
            for (sum, count) in total.iter_mut().zip(counts) {
                *sum = sum.saturating_add(count);
            }
        }
        let mut latency: Vec<VersionLatency> = Vec::new();
        for ((model, version, _device), counts) in merged {
            match latency.last_mut() {
                Some(last) if last.model == model && last.version == version => {
                    last.per_device.push(counts);
                }
                _ => latency.push(VersionLatency {
                    model,
                    version,
                    per_device: vec![counts],
                }),
            }
        }
        let mut stmt = conn.prepare_cached(
            "SELECT model, version, metric, device_id, SUM(sum), SUM(count) \
             FROM telemetry_quality WHERE org_id = ?1 AND at >= ?2 \
             GROUP BY model, version, metric, device_id \
             ORDER BY model, version, metric, device_id",
        )?;
        let rows = stmt
            .query_map(params![org_id, since], |row| {
                let metric: String = row.get(2)?;
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)? as u64,
                    metric_from(&metric).ok_or_else(|| bad(2, "unknown metric"))?,
                    row.get::<_, f64>(4)?,
                    row.get::<_, i64>(5)? as u64,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut quality: Vec<VersionQuality> = Vec::new();
        for (model, version, metric, sum, count) in rows {
            match quality.last_mut() {
                Some(last)
                    if last.model == model && last.version == version && last.metric == metric =>
                {
                    last.per_device.push((sum, count));
                }
                _ => quality.push(VersionQuality {
                    model,
                    version,
                    metric,
                    per_device: vec![(sum, count)],
                }),
            }
        }
        Ok(TelemetryWindow { latency, quality })
    }

    fn purge_telemetry(&self, before: i64) -> Result<u64, StorageError> {
        self.write(|tx| {
            let mut total = 0;
            for table in [
                "telemetry_latency",
                "telemetry_quality",
                "telemetry_events",
                "telemetry_health",
            ] {
                total += tx.execute(&format!("DELETE FROM {table} WHERE at < ?1"), [before])?;
            }
            Ok(total as u64)
        })
    }
}
