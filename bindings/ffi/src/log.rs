//! The log sink: the SDK's log lines (target `edgekeep*`, message only) forwarded to the
//! app's logger. Lines are log-safe by the SDK's rule: no user data, keys or tokens.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, RwLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the SDK handled.
    Warn,
    /// A failure.
    Error,
}

impl From<&Level> for LogLevel {
    fn from(level: &Level) -> Self {
        match *level {
            Level::TRACE => Self::Trace,
            Level::DEBUG => Self::Debug,
            Level::INFO => Self::Info,
            Level::WARN => Self::Warn,
            _ => Self::Error,
        }
    }
}

/// Receives the SDK's log lines (route them to `os_log`, `Logcat`, ...). Called on SDK
/// threads; must be cheap and must not call back into the SDK.
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    /// One line: its level, the SDK module it came from, and the message with its fields.
    fn log(&self, level: LogLevel, target: String, message: String);
}

struct Installed {
    sink: Arc<dyn LogSink>,
    min_level: LogLevel,
}

fn current() -> &'static RwLock<Option<Installed>> {
    static CURRENT: OnceLock<RwLock<Option<Installed>>> = OnceLock::new();
    CURRENT.get_or_init(|| RwLock::new(None))
}

/// Sends the SDK's log lines at `min_level` and above to `sink`, replacing any sink set
/// before. The first call installs the SDK's forwarder as the process's global `tracing`
/// subscriber, unless the host already installed one (then nothing is forwarded).
#[uniffi::export]
pub fn set_log_sink(sink: Arc<dyn LogSink>, min_level: LogLevel) {
    static INSTALL: OnceLock<()> = OnceLock::new();
    INSTALL.get_or_init(|| {
        let _ =
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Forwarder));
    });
    *current().write().unwrap_or_else(|e| e.into_inner()) = Some(Installed { sink, min_level });
}

/// Stops forwarding log lines.
#[uniffi::export]
pub fn clear_log_sink() {
    *current().write().unwrap_or_else(|e| e.into_inner()) = None;
}

struct Forwarder;

impl<S: Subscriber> Layer<S> for Forwarder {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("edgekeep") {
            return;
        }
        let guard = current().read().unwrap_or_else(|e| e.into_inner());
        let Some(installed) = guard.as_ref() else {
            return;
        };
        let level = LogLevel::from(meta.level());
        if level < installed.min_level {
            return;
        }
        let mut line = Line::default();
        event.record(&mut line);
        let sink = installed.sink.clone();
        drop(guard);
        // A foreign sink that throws must not take the SDK down.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            sink.log(level, meta.target().to_owned(), line.into_text())
        }));
    }
}

/// A log line: the message, then the event's fields as `name=value`.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Line {
    fn into_text(self) -> String {
        self.message + &self.fields
    }
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}
