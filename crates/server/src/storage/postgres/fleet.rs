//! [`FleetStorage`] on PostgreSQL.

use edgekeep_protocol::artifact::SemVer;
use edgekeep_protocol::fleet::DeviceCounts;
use edgekeep_protocol::rollout::{ProgressState, RolloutStatus};
use edgekeep_protocol::telemetry::{
    LATENCY_BUCKETS, ModelRef, QualityMetric, TelemetryAck, TelemetryBatch, TelemetryEvent,
};
use r2d2_postgres::postgres::Row;

use super::store::{
    PgStorage, Scope, Tx, all, append_audit_tx, bad, big, enter, exec, get, get_u64, lock_org, one,
    opt,
};
use crate::storage::fleet::{
    DeviceStatusRecord, FleetStorage, ModelVersionRecord, PublisherKeyRecord, RolloutChange,
    RolloutRecord, TelemetryWindow, VersionLatency, VersionQuality,
};
use crate::storage::{AuditEvent, FLEET_HISTORY_SECS, StorageError};

const VERSION_COLS: &str = "org_id, model, version, artifact_id, manifest, sealed_content_key, \
     uploaded_at, uploaded_by, approved_at, approved_by";
fn version_row(row: &Row) -> Result<ModelVersionRecord, StorageError> {
    Ok(ModelVersionRecord {
        org_id: get(row, 0)?,
        model: get(row, 1)?,
        version: get_u64(row, 2)?,
        artifact_id: get(row, 3)?,
        manifest_json: get(row, 4)?,
        sealed_content_key: get(row, 5)?,
        uploaded_at: get(row, 6)?,
        uploaded_by: get(row, 7)?,
        approved_at: get(row, 8)?,
        approved_by: get(row, 9)?,
    })
}

const ROLLOUT_COLS: &str = "id, org_id, model, version, previous_version, device_group, \
     basis_points, status, created_at, updated_at";
fn rollout_row(row: &Row) -> Result<RolloutRecord, StorageError> {
    Ok(RolloutRecord {
        id: get(row, 0)?,
        org_id: get(row, 1)?,
        model: get(row, 2)?,
        version: get_u64(row, 3)?,
        previous_version: get::<Option<i64>>(row, 4)?
            .map(|v| u64::try_from(v).map_err(|_| bad("negative version")))
            .transpose()?,
        device_group: get(row, 5)?,
        basis_points: u32::try_from(get::<i32>(row, 6)?).map_err(|_| bad("basis points"))?,
        status: RolloutStatus::parse(&get::<String>(row, 7)?)
            .ok_or_else(|| bad("unknown rollout status"))?,
        created_at: get(row, 8)?,
        updated_at: get(row, 9)?,
    })
}

fn json_col<T: serde::de::DeserializeOwned>(
    row: &Row,
    index: usize,
) -> Result<Option<T>, StorageError> {
    get::<Option<String>>(row, index)?
        .map(|t| serde_json::from_str(&t).map_err(|_| bad("stored JSON")))
        .transpose()
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Declared telemetry types are numbers, enums and validated names: they always serialize.
    serde_json::to_string(value).unwrap_or_default()
}

fn ensure_status_row(tx: &mut Tx<'_>, org_id: &str, device_id: &str) -> Result<(), StorageError> {
    exec(
        tx,
        "INSERT INTO device_status (device_id, org_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&device_id, &org_id],
    )
    .map(drop)
}

fn apply_event(
    tx: &mut Tx<'_>,
    org_id: &str,
    device_id: &str,
    event: &TelemetryEvent,
    now: i64,
) -> Result<(), StorageError> {
    match event {
        TelemetryEvent::Health(health) => {
            let text = to_json(health);
            exec(
                tx,
                "UPDATE device_status SET health = $3, health_at = $4 \
                 WHERE org_id = $1 AND device_id = $2",
                &[&org_id, &device_id, &text, &now],
            )?;
            exec(
                tx,
                "INSERT INTO telemetry_health (org_id, device_id, at, health) \
                 VALUES ($1, $2, $3, $4)",
                &[&org_id, &device_id, &now, &text],
            )?;
        }
        TelemetryEvent::Versions(report) => {
            exec(
                tx,
                "UPDATE device_status SET sdk_version = $3, active_models = $4 \
                 WHERE org_id = $1 AND device_id = $2",
                &[
                    &org_id,
                    &device_id,
                    &to_json(&report.sdk),
                    &to_json(&report.active),
                ],
            )?;
        }
        TelemetryEvent::Latency(hist) => {
            exec(
                tx,
                "INSERT INTO telemetry_latency (org_id, device_id, model, version, at, counts) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &org_id,
                    &device_id,
                    &hist.model.model.as_str(),
                    &big(hist.model.version)?,
                    &now,
                    &to_json(&hist.counts),
                ],
            )?;
        }
        TelemetryEvent::Quality(q) => {
            exec(
                tx,
                "INSERT INTO telemetry_quality (org_id, device_id, model, version, metric, sum, \
                 count, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &org_id,
                    &device_id,
                    &q.model.model.as_str(),
                    &big(q.model.version)?,
                    &q.metric.as_str(),
                    &q.sum,
                    &big(q.count)?,
                    &now,
                ],
            )?;
        }
        TelemetryEvent::Events(count) => {
            exec(
                tx,
                "INSERT INTO telemetry_events (org_id, device_id, code, count, at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &org_id,
                    &device_id,
                    &count.code.as_str(),
                    &big(count.count)?,
                    &now,
                ],
            )?;
        }
        TelemetryEvent::RolloutProgress(report) => {
            let rollout: Option<String> = opt(
                tx,
                "SELECT id FROM rollouts WHERE org_id = $1 AND model = $2 AND version = $3 \
                 ORDER BY created_at DESC, ordinal DESC LIMIT 1",
                &[
                    &org_id,
                    &report.model.model.as_str(),
                    &big(report.model.version)?,
                ],
                |row| get(row, 0),
            )?;
            if let Some(rollout) = rollout {
                exec(
                    tx,
                    "INSERT INTO rollout_progress (rollout_id, device_id, org_id, state, \
                     updated_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (rollout_id, device_id) DO UPDATE \
                     SET state = excluded.state, updated_at = excluded.updated_at",
                    &[&rollout, &device_id, &org_id, &report.state.as_str(), &now],
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

/// The telemetry tables that age out.
const TELEMETRY_TABLES: [&str; 4] = [
    "telemetry_latency",
    "telemetry_quality",
    "telemetry_events",
    "telemetry_health",
];

impl FleetStorage for PgStorage {
    fn insert_publisher_key(
        &self,
        key: &PublisherKeyRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(&key.org_id), |tx| {
            let inserted = exec(
                tx,
                "INSERT INTO publisher_keys (org_id, key_id, name, public_key, created_at, \
                 revoked_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[
                    &key.org_id,
                    &key.key_id,
                    &key.name,
                    &key.public_key.as_slice(),
                    &key.created_at,
                    &key.revoked_at,
                ],
            )?;
            if inserted == 0 {
                return Err(StorageError::Conflict("publisher key already registered"));
            }
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn publisher_keys(&self, org_id: &str) -> Result<Vec<PublisherKeyRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                "SELECT org_id, key_id, name, public_key, created_at, revoked_at \
                 FROM publisher_keys WHERE org_id = $1 ORDER BY created_at, key_id",
                &[&org_id],
                |row| {
                    Ok(PublisherKeyRecord {
                        org_id: get(row, 0)?,
                        key_id: get(row, 1)?,
                        name: get(row, 2)?,
                        public_key: get::<Vec<u8>>(row, 3)?
                            .try_into()
                            .map_err(|_| bad("public key length"))?,
                        created_at: get(row, 4)?,
                        revoked_at: get(row, 5)?,
                    })
                },
            )
        })
    }

    fn revoke_publisher_key(
        &self,
        org_id: &str,
        key_id: &str,
        at: i64,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        self.audited_change(
            Scope::Org(org_id),
            "UPDATE publisher_keys SET revoked_at = $3 WHERE org_id = $1 AND key_id = $2 \
             AND revoked_at IS NULL",
            &[&org_id, &key_id, &at],
            audit,
        )
    }

    fn insert_model_version(
        &self,
        v: &ModelVersionRecord,
        audit: &AuditEvent,
    ) -> Result<(), StorageError> {
        self.run(Scope::Org(&v.org_id), |tx| {
            lock_org(tx, &v.org_id)?;
            let highest: Option<i64> = get(
                &one(
                    tx,
                    "SELECT MAX(version) FROM model_versions WHERE org_id = $1 AND model = $2",
                    &[&v.org_id, &v.model],
                )?,
                0,
            )?;
            if highest.is_some_and(|h| h as u64 >= v.version) {
                return Err(StorageError::Conflict(
                    "versions are monotonic: this version is not above the latest",
                ));
            }
            let inserted = exec(
                tx,
                &format!(
                    "INSERT INTO model_versions ({VERSION_COLS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
                ),
                &[
                    &v.org_id,
                    &v.model,
                    &big(v.version)?,
                    &v.artifact_id,
                    &v.manifest_json,
                    &v.sealed_content_key,
                    &v.uploaded_at,
                    &v.uploaded_by,
                    &v.approved_at,
                    &v.approved_by,
                ],
            )?;
            if inserted == 0 {
                return Err(StorageError::Conflict("artifact already uploaded"));
            }
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn model_versions(&self, org_id: &str) -> Result<Vec<ModelVersionRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                &format!(
                    "SELECT {VERSION_COLS} FROM model_versions WHERE org_id = $1 \
                     ORDER BY model, version"
                ),
                &[&org_id],
                version_row,
            )
        })
    }

    fn model_version(
        &self,
        org_id: &str,
        model: &str,
        version: u64,
    ) -> Result<Option<ModelVersionRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                &format!(
                    "SELECT {VERSION_COLS} FROM model_versions WHERE org_id = $1 AND model = $2 \
                     AND version = $3"
                ),
                &[&org_id, &model, &big(version)?],
                version_row,
            )
        })
    }

    fn model_version_by_artifact(
        &self,
        org_id: &str,
        artifact_id: &str,
    ) -> Result<Option<ModelVersionRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            opt(
                tx,
                &format!(
                    "SELECT {VERSION_COLS} FROM model_versions WHERE org_id = $1 \
                     AND artifact_id = $2"
                ),
                &[&org_id, &artifact_id],
                version_row,
            )
        })
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
        self.audited_change(
            Scope::Org(org_id),
            "UPDATE model_versions SET approved_at = $4, approved_by = $5 WHERE org_id = $1 \
             AND model = $2 AND version = $3 AND approved_at IS NULL",
            &[&org_id, &model, &big(version)?, &at, &by],
            audit,
        )
    }

    fn insert_rollout(&self, r: &RolloutRecord, audit: &AuditEvent) -> Result<(), StorageError> {
        let basis_points = i32::try_from(r.basis_points)
            .map_err(|_| StorageError::Conflict("basis points out of range"))?;
        self.run(Scope::Org(&r.org_id), |tx| {
            exec(
                tx,
                &format!(
                    "INSERT INTO rollouts ({ROLLOUT_COLS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ),
                &[
                    &r.id,
                    &r.org_id,
                    &r.model,
                    &big(r.version)?,
                    &r.previous_version.map(big).transpose()?,
                    &r.device_group,
                    &basis_points,
                    &r.status.as_str(),
                    &r.created_at,
                    &r.updated_at,
                ],
            )?;
            append_audit_tx(tx, &self.audit_key, audit)
        })
    }

    fn rollouts(&self, org_id: &str) -> Result<Vec<RolloutRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                &format!(
                    "SELECT {ROLLOUT_COLS} FROM rollouts WHERE org_id = $1 \
                     ORDER BY created_at, ordinal"
                ),
                &[&org_id],
                rollout_row,
            )
        })
    }

    fn update_rollout(
        &self,
        org_id: &str,
        rollout_id: &str,
        change: &RolloutChange,
        audit: &AuditEvent,
    ) -> Result<bool, StorageError> {
        let basis_points = i32::try_from(change.basis_points)
            .map_err(|_| StorageError::Conflict("basis points out of range"))?;
        self.run(Scope::Org(org_id), |tx| {
            let current: Option<String> = opt(
                tx,
                "SELECT status FROM rollouts WHERE org_id = $1 AND id = $2 FOR UPDATE",
                &[&org_id, &rollout_id],
                |row| get(row, 0),
            )?;
            let allowed = current
                .as_deref()
                .and_then(RolloutStatus::parse)
                .is_some_and(|s| change.from.contains(&s));
            if !allowed {
                return Ok(false);
            }
            exec(
                tx,
                "UPDATE rollouts SET basis_points = $3, status = $4, updated_at = $5 \
                 WHERE org_id = $1 AND id = $2",
                &[
                    &org_id,
                    &rollout_id,
                    &basis_points,
                    &change.status.as_str(),
                    &change.at,
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
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                "SELECT rollout_id, state, COUNT(*) FROM rollout_progress WHERE org_id = $1 \
                 GROUP BY rollout_id, state",
                &[&org_id],
                |row| {
                    Ok((
                        get(row, 0)?,
                        ProgressState::parse(&get::<String>(row, 1)?)
                            .ok_or_else(|| bad("unknown state"))?,
                        get_u64(row, 2)?,
                    ))
                },
            )
        })
    }

    fn record_assignment(
        &self,
        org_id: &str,
        rollout_id: &str,
        device_id: &str,
        at: i64,
    ) -> Result<bool, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            let added = exec(
                tx,
                "INSERT INTO rollout_progress (rollout_id, device_id, org_id, state, updated_at) \
                 VALUES ($1, $2, $3, 'assigned', $4) ON CONFLICT DO NOTHING",
                &[&rollout_id, &device_id, &org_id, &at],
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
        self.run(Scope::Org(org_id), |tx| {
            get(
                &one(
                    tx,
                    "SELECT EXISTS (SELECT 1 FROM rollout_progress WHERE org_id = $1 \
                     AND rollout_id = $2 AND device_id = $3)",
                    &[&org_id, &rollout_id, &device_id],
                )?,
                0,
            )
        })
    }

    fn device_sdk_version(
        &self,
        org_id: &str,
        device_id: &str,
    ) -> Result<Option<SemVer>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            Ok(opt(
                tx,
                "SELECT sdk_version FROM device_status WHERE org_id = $1 AND device_id = $2",
                &[&org_id, &device_id],
                |row| json_col::<SemVer>(row, 0),
            )?
            .flatten())
        })
    }

    fn device_active_models(
        &self,
        org_id: &str,
        device_id: &str,
    ) -> Result<Vec<ModelRef>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            Ok(opt(
                tx,
                "SELECT active_models FROM device_status WHERE org_id = $1 AND device_id = $2",
                &[&org_id, &device_id],
                |row| json_col::<Vec<ModelRef>>(row, 0),
            )?
            .flatten()
            .unwrap_or_default())
        })
    }

    fn touch_device(&self, org_id: &str, device_id: &str, at: i64) -> Result<(), StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            exec(
                tx,
                "INSERT INTO device_status (device_id, org_id, last_seen_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (device_id) DO UPDATE SET last_seen_at = \
                 GREATEST(COALESCE(device_status.last_seen_at, 0), excluded.last_seen_at)",
                &[&device_id, &org_id, &at],
            )
            .map(drop)
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
        self.run(Scope::Org(org_id), |tx| {
            ensure_status_row(tx, org_id, device_id)?;
            // The device's row, locked: one device's batches are taken one at a time, whichever
            // instance receives them.
            let mut acked: i64 = get(
                &one(
                    tx,
                    "UPDATE device_status SET last_seen_at = $3 WHERE org_id = $1 \
                     AND device_id = $2 RETURNING acked_through",
                    &[&org_id, &device_id, &now],
                )?,
                0,
            )?;
            if let Some(abandoned) = batch.abandoned_through {
                acked = acked.max(big(abandoned)?);
            }
            let seq = big(batch.seq)?;
            if batch.seq > acked as u64 + window {
                return Err(StorageError::Conflict("sequence is too far ahead"));
            }
            let held: bool = get(
                &one(
                    tx,
                    "SELECT EXISTS (SELECT 1 FROM telemetry_batches WHERE device_id = $1 \
                     AND seq = $2)",
                    &[&device_id, &seq],
                )?,
                0,
            )?;
            let duplicate = seq <= acked || held;
            if !duplicate {
                exec(
                    tx,
                    "INSERT INTO telemetry_batches (org_id, device_id, seq, received_at) \
                     VALUES ($1, $2, $3, $4)",
                    &[&org_id, &device_id, &seq, &now],
                )?;
                for event in &batch.events {
                    apply_event(tx, org_id, device_id, event, now)?;
                }
            }
            let held: Vec<i64> = all(
                tx,
                "SELECT seq FROM telemetry_batches WHERE device_id = $1 AND seq > $2 ORDER BY seq",
                &[&device_id, &acked],
                |row| get(row, 0),
            )?;
            for next in held {
                if next != acked + 1 {
                    break;
                }
                acked = next;
            }
            exec(
                tx,
                "DELETE FROM telemetry_batches WHERE device_id = $1 AND seq <= $2",
                &[&device_id, &acked],
            )?;
            exec(
                tx,
                "UPDATE device_status SET acked_through = $3 WHERE org_id = $1 AND device_id = $2",
                &[&org_id, &device_id, &acked],
            )?;
            Ok(TelemetryAck {
                acked_through: acked as u64,
                duplicate,
            })
        })
    }

    fn device_statuses(&self, org_id: &str) -> Result<Vec<DeviceStatusRecord>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                "SELECT d.id, d.device_group, d.revoked_at, s.last_seen_at, s.sdk_version, \
                 s.active_models, s.health FROM devices d LEFT JOIN device_status s \
                 ON s.device_id = d.id WHERE d.org_id = $1 ORDER BY d.enrolled_at, d.id",
                &[&org_id],
                |row| {
                    Ok(DeviceStatusRecord {
                        device_id: get(row, 0)?,
                        device_group: get(row, 1)?,
                        revoked: get::<Option<i64>>(row, 2)?.is_some(),
                        last_seen_at: get(row, 3)?,
                        sdk_version: json_col::<SemVer>(row, 4)?,
                        active_models: json_col(row, 5)?.unwrap_or_default(),
                        health: json_col(row, 6)?,
                    })
                },
            )
        })
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
        self.run(Scope::Org(org_id), |tx| {
            exec(
                tx,
                "DELETE FROM fleet_snapshots WHERE org_id = $1 AND at < $2",
                &[&org_id, &(at - FLEET_HISTORY_SECS)],
            )?;
            exec(
                tx,
                "INSERT INTO fleet_snapshots (org_id, at, enrolled, online, never_seen) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, at) DO UPDATE SET \
                 enrolled = excluded.enrolled, online = excluded.online, \
                 never_seen = excluded.never_seen",
                &[&org_id, &at, &enrolled, &online, &never_seen],
            )
            .map(drop)
        })
    }

    fn fleet_snapshots(
        &self,
        org_id: &str,
        since: i64,
    ) -> Result<Vec<(i64, DeviceCounts)>, StorageError> {
        self.run(Scope::Org(org_id), |tx| {
            all(
                tx,
                "SELECT at, enrolled, online, never_seen FROM fleet_snapshots \
                 WHERE org_id = $1 AND at >= $2 ORDER BY at",
                &[&org_id, &since],
                |row| {
                    let count = |i| get::<i64>(row, i).map(|v| v.max(0).unsigned_abs());
                    Ok((
                        get(row, 0)?,
                        DeviceCounts {
                            enrolled: count(1)?,
                            online: count(2)?,
                            never_seen: count(3)?,
                        },
                    ))
                },
            )
        })
    }

    fn last_ingest_at(&self) -> Result<Option<i64>, StorageError> {
        self.run(Scope::Global, |tx| {
            let mut latest = None;
            for org in self.all_orgs(tx)? {
                enter(tx, Scope::Org(&org))?;
                let at: Option<i64> = get(
                    &one(
                        tx,
                        "SELECT MAX(received_at) FROM telemetry_batches WHERE org_id = $1",
                        &[&org],
                    )?,
                    0,
                )?;
                latest = latest.max(at);
            }
            Ok(latest)
        })
    }

    fn ping(&self) -> Result<(), StorageError> {
        self.run(Scope::Global, |tx| one(tx, "SELECT 1", &[]).map(drop))
    }

    fn telemetry_window(&self, org_id: &str, since: i64) -> Result<TelemetryWindow, StorageError> {
        type DeviceKey = (String, u64, String);
        self.run(Scope::Org(org_id), |tx| {
            let mut merged: std::collections::BTreeMap<DeviceKey, [u64; LATENCY_BUCKETS]> =
                Default::default();
            let latency_rows = all(
                tx,
                "SELECT model, version, device_id, counts FROM telemetry_latency \
                 WHERE org_id = $1 AND at >= $2",
                &[&org_id, &since],
                |row| {
                    let counts: [u64; LATENCY_BUCKETS] =
                        json_col(row, 3)?.ok_or_else(|| bad("counts"))?;
                    Ok(((get(row, 0)?, get_u64(row, 1)?, get(row, 2)?), counts))
                },
            )?;
            for (key, counts) in latency_rows {
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
            let quality_rows = all(
                tx,
                "SELECT model, version, metric, device_id, SUM(sum), SUM(count)::BIGINT \
                 FROM telemetry_quality WHERE org_id = $1 AND at >= $2 \
                 GROUP BY model, version, metric, device_id \
                 ORDER BY model, version, metric, device_id",
                &[&org_id, &since],
                |row| {
                    Ok((
                        get::<String>(row, 0)?,
                        get_u64(row, 1)?,
                        metric_from(&get::<String>(row, 2)?)
                            .ok_or_else(|| bad("unknown metric"))?,
                        get::<f64>(row, 4)?,
                        get_u64(row, 5)?,
                    ))
                },
            )?;
            let mut quality: Vec<VersionQuality> = Vec::new();
            for (model, version, metric, sum, count) in quality_rows {
                match quality.last_mut() {
                    Some(last)
                        if last.model == model
                            && last.version == version
                            && last.metric == metric =>
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
        })
    }

    fn purge_telemetry(&self, before: i64) -> Result<u64, StorageError> {
        self.run(Scope::Global, |tx| {
            let mut total = 0;
            for org in self.all_orgs(tx)? {
                enter(tx, Scope::Org(&org))?;
                for table in TELEMETRY_TABLES {
                    total += exec(
                        tx,
                        &format!("DELETE FROM {table} WHERE org_id = $1 AND at < $2"),
                        &[&org, &before],
                    )?;
                }
            }
            Ok(total)
        })
    }
}
