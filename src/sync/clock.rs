//! The device's wall clock. Replaceable, because a device whose clock is wrong by hours is a
//! case the SDK must survive: every time check that matters uses the server's clock, learned
//! from `Date` headers and applied as an offset to this one.

/// Reads the device's wall clock.
pub trait DeviceClock: Send + Sync {
    /// Seconds since the Unix epoch, as the device believes.
    fn unix_seconds(&self) -> i64;
}

/// The system clock (the default).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl DeviceClock for SystemClock {
    fn unix_seconds(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}
