//! Wall-clock time as a value. The machine never reads a clock: every input that needs time carries it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wall-clock instant in milliseconds since the UNIX epoch.
///
/// Wall time (not a monotonic clock) because the login JWT's `exp` claim is wall time, and because a binding in
/// another language can always produce it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The instant `millis` milliseconds after the epoch.
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// The instant `secs` seconds after the epoch.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Converts a [`SystemTime`]; instants before the epoch become the epoch.
    #[must_use]
    pub fn from_system_time(time: SystemTime) -> Self {
        let millis = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Self(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    /// Milliseconds since the epoch.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded down), the unit of JWT `exp`.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The same instant as a [`SystemTime`].
    #[must_use]
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// `self + duration`, saturating at the end of time.
    #[must_use]
    pub fn saturating_add(self, duration: Duration) -> Self {
        let add = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(add))
    }

    /// How long after `earlier` this instant is; zero if it is not after it.
    #[must_use]
    pub const fn saturating_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl From<SystemTime> for UnixTime {
    fn from(time: SystemTime) -> Self {
        Self::from_system_time(time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_and_saturates() {
        let t = UnixTime::from_secs(1_700_000_000);
        assert_eq!(t.as_millis(), 1_700_000_000_000);
        assert_eq!(UnixTime::from_system_time(t.to_system_time()), t);
        assert_eq!(UnixTime::from_millis(1999).as_secs(), 1);
        assert_eq!(UnixTime::from_millis(u64::MAX).saturating_add(Duration::from_secs(1)).as_millis(), u64::MAX);
        assert_eq!(t.saturating_since(t.saturating_add(Duration::from_secs(5))), Duration::ZERO);
        assert_eq!(t.saturating_add(Duration::from_secs(5)).saturating_since(t), Duration::from_secs(5));
    }
}
