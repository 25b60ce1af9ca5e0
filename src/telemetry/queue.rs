//! [`UploadQueue`]: telemetry batches sealed in the encrypted store until the server
//! acknowledges them, bounded by bytes and age (oldest dropped first, the drop counted).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::store::{EventId, Namespace, Store};

use super::error::TelemetryError;
use super::health::HealthSnapshot;
use super::metrics::TELEMETRY_BATCHES_DROPPED;
use super::payload::TelemetryBatch;
use super::recorder::Telemetry;

const QUEUE: Namespace = Namespace::new("telemetry.queue");
const STATE: Namespace = Namespace::new("telemetry.state");
const NEXT_SEQ: &[u8] = b"next_seq";

/// Bounds of the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most sealed bytes kept; the oldest batches are dropped beyond it.
    pub max_bytes: u64,
    /// Oldest batch kept; older ones are dropped.
    pub max_age: Duration,
}

impl Default for QueueLimits {
    /// 256 KiB and 7 days.
    fn default() -> Self {
        Self {
            max_bytes: 256 << 10,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// A batch waiting for acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedBatch {
    /// Where it is stored.
    pub event: EventId,
    /// The batch.
    pub batch: TelemetryBatch,
}

/// The durable upload queue. Cheap to clone; shares the store.
#[derive(Debug, Clone)]
pub struct UploadQueue {
    store: Arc<Store>,
    limits: QueueLimits,
}

impl UploadQueue {
    /// A queue over `store` with `limits`.
    pub fn new(store: Arc<Store>, limits: QueueLimits) -> Self {
        Self { store, limits }
    }

    fn next_seq(&self) -> Result<u64, TelemetryError> {
        let stored = self.store.kv().get(STATE, NEXT_SEQ)?;
        Ok(stored
            .and_then(|b| <[u8; 8]>::try_from(b.as_bytes()).ok())
            .map_or(1, u64::from_be_bytes))
    }

    /// Drains `telemetry` into a new batch (with `health` attached) and stores it with the
    /// next sequence number. Returns the sequence, or `None` when there was nothing to send.
    ///
    /// If storing fails, the values go back into `telemetry` and the error is returned.
    pub fn enqueue(
        &self,
        telemetry: &Telemetry,
        health: Option<HealthSnapshot>,
    ) -> Result<Option<u64>, TelemetryError> {
        let seq = self.next_seq()?;
        let batch = telemetry.drain(seq, health);
        if batch.is_empty() && batch.health.is_none() {
            return Ok(None);
        }
        let stored = serde_json::to_vec(&batch)
            .map_err(|_| TelemetryError::Encoding)
            .and_then(|bytes| Ok(self.store.events().append(QUEUE, &bytes)?))
            .and_then(|_| {
                Ok(self
                    .store
                    .kv()
                    .put(STATE, NEXT_SEQ, &(seq + 1).to_be_bytes())?)
            });
        if let Err(err) = stored {
            telemetry.restore(&batch);
            return Err(err);
        }
        let dropped = self.enforce_bounds()?;
        if dropped > 0 {
            telemetry.add(TELEMETRY_BATCHES_DROPPED, dropped);
        }
        Ok(Some(seq))
    }

    /// Drops the oldest batches until the queue is within its bounds; returns how many.
    pub fn enforce_bounds(&self) -> Result<u64, TelemetryError> {
        let events = self.store.events();
        let oldest_kept = SystemTime::now()
            .checked_sub(self.limits.max_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut dropped = 0;
        loop {
            let Some(oldest) = events.scan(QUEUE, None, 1)?.into_iter().next() else {
                break;
            };
            let over_bytes = events.stored_bytes(QUEUE)? > self.limits.max_bytes;
            if !over_bytes && oldest.recorded_at >= oldest_kept {
                break;
            }
            events.delete(QUEUE, oldest.id)?;
            dropped += 1;
        }
        Ok(dropped)
    }

    /// Up to `limit` batches, oldest first.
    pub fn pending(&self, limit: usize) -> Result<Vec<QueuedBatch>, TelemetryError> {
        self.store
            .events()
            .scan(QUEUE, None, limit)?
            .into_iter()
            .map(|event| {
                let batch = serde_json::from_slice(event.payload.as_bytes())
                    .map_err(|_| TelemetryError::Encoding)?;
                Ok(QueuedBatch {
                    event: event.id,
                    batch,
                })
            })
            .collect()
    }

    /// Deletes every batch with a sequence at or below `acked`; returns how many.
    pub fn acknowledge(&self, acked: u64) -> Result<u64, TelemetryError> {
        let mut removed = 0;
        loop {
            let page = self.pending(64)?;
            let done: Vec<_> = page.iter().filter(|q| q.batch.seq <= acked).collect();
            if done.is_empty() {
                return Ok(removed);
            }
            for queued in done {
                if self.store.events().delete(QUEUE, queued.event)? {
                    removed += 1;
                }
            }
        }
    }

    /// Number of queued batches.
    pub fn len(&self) -> Result<u64, TelemetryError> {
        Ok(self.store.events().count(QUEUE)?)
    }

    /// Whether the queue is empty.
    pub fn is_empty(&self) -> Result<bool, TelemetryError> {
        Ok(self.len()? == 0)
    }

    /// Sealed bytes the queue occupies.
    pub fn stored_bytes(&self) -> Result<u64, TelemetryError> {
        Ok(self.store.events().stored_bytes(QUEUE)?)
    }

    /// Deletes every queued batch (opt-out); returns how many.
    pub fn clear(&self) -> Result<u64, TelemetryError> {
        let mut removed = 0;
        while let Some(last) = self.store.events().scan(QUEUE, None, usize::MAX)?.last() {
            removed += self.store.events().delete_through(QUEUE, last.id)?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RawKeyProvider;
    use crate::telemetry::{ErrorKind, MetricId, metrics};

    fn store(dir: &std::path::Path) -> Arc<Store> {
        Arc::new(
            Store::builder(dir.join("q.db"))
                .key_provider(Arc::new(RawKeyProvider::new([1u8; 32])))
                .open()
                .unwrap(),
        )
    }

    #[test]
    fn sequences_acks_bounds_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let limits = QueueLimits {
            max_bytes: 1500,
            max_age: Duration::from_secs(3600),
        };
        let queue = UploadQueue::new(store(dir.path()), limits);
        let telemetry = Telemetry::new();
        assert_eq!(queue.enqueue(&telemetry, None).unwrap(), None);
        for round in 1..=20u64 {
            for kind in ErrorKind::ALL {
                telemetry.add_labeled(metrics::ERRORS, *kind, None, round);
            }
            assert_eq!(queue.enqueue(&telemetry, None).unwrap(), Some(round));
        }
        assert!(queue.stored_bytes().unwrap() <= limits.max_bytes);
        let pending = queue.pending(100).unwrap();
        assert!(pending.len() < 20, "oldest batches are dropped");
        assert_eq!(pending.last().unwrap().batch.seq, 20);
        assert!(
            pending
                .windows(2)
                .all(|w| w[0].batch.seq + 1 == w[1].batch.seq),
            "what is kept is contiguous"
        );
        let counted_in_batches: u64 = pending
            .iter()
            .flat_map(|q| &q.batch.counters)
            .filter(|p| p.metric == MetricId::TelemetryBatchesDropped)
            .map(|p| p.value)
            .sum();
        let counted =
            counted_in_batches + telemetry.counter_value(metrics::TELEMETRY_BATCHES_DROPPED);
        assert!(counted >= 1, "the drop is counted");
        let first = pending[0].batch.seq;
        assert_eq!(queue.acknowledge(first).unwrap(), 1);
        assert_eq!(queue.pending(100).unwrap()[0].batch.seq, first + 1);
        assert!(queue.clear().unwrap() > 0);
        assert!(queue.is_empty().unwrap());
    }
}
