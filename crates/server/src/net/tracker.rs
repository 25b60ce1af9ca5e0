//! The open connections: the cap, which one to close when it is reached, and idleness.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Counters of what the listener did, for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Connections open now (TLS handshakes included).
    pub open: usize,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections refused because every open one had a request in flight.
    pub refused: u64,
    /// Idle connections closed to make room for a new one.
    pub evicted: u64,
    /// Connections closed after the idle timeout.
    pub idle_closed: u64,
}

/// One open connection, shared by its task, its requests and the tracker.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` of the last request start or end.
    last_active_ms: AtomicU64,
    close: Notify,
}

impl Connection {
    fn new(id: u64) -> Self {
        Self {
            id,
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(0),
            close: Notify::new(),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    fn last_active(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed))
    }

    /// Marks a request as started; the returned guard ends it when dropped (after the response
    /// body has been sent or abandoned).
    pub fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        RequestGuard(Arc::clone(self))
    }

    /// Whether no request is in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// When the connection becomes closable for idleness, if it stays idle.
    pub fn idle_deadline(&self, idle_timeout: Duration) -> Instant {
        self.last_active() + idle_timeout
    }

    /// Resolves when the tracker asks this connection to close (to make room).
    pub async fn close_requested(&self) {
        self.close.notified().await;
    }
}

/// Holds one request in flight on its connection.
#[derive(Debug)]
pub struct RequestGuard(Arc<Connection>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The set of open connections with a cap.
#[derive(Debug)]
pub struct ConnectionTracker {
    cap: usize,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    evicted: AtomicU64,
    idle_closed: AtomicU64,
}

impl ConnectionTracker {
    /// A tracker admitting at most `cap` connections.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            idle_closed: AtomicU64::new(0),
        }
    }

    /// Admits a new connection. At the cap, the connection idle the longest is asked to close
    /// and forgotten; when every connection has a request in flight the new one is refused
    /// (`None`). The returned slot leaves the set when dropped.
    pub fn admit(self: &Arc<Self>) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= self.cap {
            let victim = open
                .values()
                .filter(|c| c.is_idle())
                .min_by_key(|c| c.last_active())
                .map(|c| c.id);
            match victim.and_then(|id| open.remove(&id)) {
                Some(victim) => {
                    victim.close.notify_one();
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection::new(id));
        open.insert(id, Arc::clone(&connection));
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Some(ConnectionSlot {
            tracker: Arc::clone(self),
            connection,
        })
    }

    /// Counts a connection closed for idleness.
    pub fn record_idle_close(&self) {
        self.idle_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            open: self.open.lock().unwrap_or_else(|p| p.into_inner()).len(),
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
        }
    }
}

/// A connection's place in the tracker, released on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    tracker: Arc<ConnectionTracker>,
    connection: Arc<Connection>,
}

impl ConnectionSlot {
    /// The connection's shared state.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.tracker.open.lock().unwrap_or_else(|p| p.into_inner());
        open.remove(&self.connection.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let tracker = Arc::new(ConnectionTracker::new(2));
        let old = tracker.admit().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let recent = tracker.admit().unwrap();
        recent.connection().touch();
        let newest = tracker.admit().expect("an idle connection is evicted");
        let stats = tracker.stats();
        assert_eq!((stats.open, stats.evicted, stats.refused), (2, 1, 0));
        drop(old);
        assert_eq!(
            tracker.stats().open,
            2,
            "the evicted slot was already forgotten"
        );
        drop((recent, newest));
        assert_eq!(tracker.stats().open, 0);
    }

    #[test]
    fn when_every_connection_is_busy_a_new_one_is_refused() {
        let tracker = Arc::new(ConnectionTracker::new(1));
        let busy = tracker.admit().unwrap();
        let request = busy.connection().request_started();
        assert!(tracker.admit().is_none());
        assert_eq!(tracker.stats().refused, 1);
        drop(request);
        assert!(busy.connection().is_idle());
        assert!(tracker.admit().is_some(), "idle again: evictable");
    }
}
