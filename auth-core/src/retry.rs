//! When to try a failed login again: exponential backoff with jitter (BDK defaults), `Retry-After` honoured, and a
//! seeded generator so that a run can be replayed exactly.

use std::time::Duration;

use http::HeaderValue;

use crate::error::ConfigError;
use crate::time::UnixTime;

/// Backoff for login attempts. Defaults match the official SDKs: 10 attempts in all, 500 ms first wait, doubling,
/// each wait capped at 300 s; plus 20 % jitter so that a fleet of bots does not retry in step.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_interval: Duration,
    multiplier: f64,
    max_interval: Duration,
    jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_interval: Duration::from_millis(500),
            multiplier: 2.0,
            max_interval: Duration::from_secs(300),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// A policy with the given attempts (the first included; at most [`MAX_ATTEMPTS`](Self::MAX_ATTEMPTS)), first
    /// wait, growth factor and cap (at most [`MAX_INTERVAL`](Self::MAX_INTERVAL)). Jitter is 20 %; see [`with_jitter`](Self::with_jitter).
    pub fn new(
        max_attempts: u32,
        initial_interval: Duration,
        multiplier: f64,
        max_interval: Duration,
    ) -> Result<Self, ConfigError> {
        let bad = |setting, reason| Err(ConfigError::Retry { setting, reason });
        if max_attempts == 0 || max_attempts > Self::MAX_ATTEMPTS {
            return bad("max_attempts", "must be between 1 and 100");
        }
        if max_interval > Self::MAX_INTERVAL {
            return bad("max_interval", "must not exceed an hour");
        }
        if initial_interval < Duration::from_millis(10) {
            return bad("initial_interval", "must be at least 10 ms");
        }
        if !multiplier.is_finite() || multiplier < 1.0 {
            return bad("multiplier", "must be a finite number of at least 1");
        }
        if max_interval < initial_interval {
            return bad("max_interval", "must not be below initial_interval");
        }
        Ok(Self { max_attempts, initial_interval, multiplier, max_interval, jitter: 0.2 })
    }

    /// One attempt, no retry.
    #[must_use]
    pub fn no_retry() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// Sets the jitter: each wait is shortened by a random fraction of up to `jitter` (0 to 1) of itself.
    pub fn with_jitter(mut self, jitter: f64) -> Result<Self, ConfigError> {
        if !(0.0..=1.0).contains(&jitter) {
            return Err(ConfigError::Retry { setting: "jitter", reason: "must be between 0 and 1" });
        }
        self.jitter = jitter;
        Ok(self)
    }

    /// The same policy with another number of attempts (the first included; at least 1).
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Result<Self, ConfigError> {
        if max_attempts == 0 || max_attempts > Self::MAX_ATTEMPTS {
            return Err(ConfigError::Retry { setting: "max_attempts", reason: "must be between 1 and 100" });
        }
        self.max_attempts = max_attempts;
        Ok(self)
    }

    /// Attempts in all, the first included.
    #[must_use]
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The cap on any single wait, `Retry-After` included.
    #[must_use]
    pub fn max_interval(&self) -> Duration {
        self.max_interval
    }

    /// The largest `max_interval` a policy may have: every wait a caller can reach stays bounded.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
    /// The most attempts a policy may make (a BDK `maxAttempts: -1`, "no limit", is read as this).
    pub const MAX_ATTEMPTS: u32 = 100;

    /// The wait after the `failures`-th consecutive failure (1 for the first): `initial × multiplier^(failures-1)`,
    /// capped, minus jitter; or the server's `Retry-After`, capped, when it gave one.
    pub(crate) fn delay(&self, failures: u32, retry_after: Option<Duration>, jitter: &mut Jitter) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_interval);
        }
        let exponent = i32::try_from(failures.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = self.initial_interval.as_secs_f64() * self.multiplier.powi(exponent);
        let capped = base.min(self.max_interval.as_secs_f64());
        let shortened = capped * (1.0 - self.jitter * jitter.next_unit());
        Duration::from_secs_f64(shortened.max(0.0))
    }
}

/// How long a failed login keeps answering callers with its error before a new login may begin, so that a bot
/// whose key was revoked does not hammer the login endpoint (and risk an account lock-out) from a request loop. The
/// first failure cools down for `first`, each further failure in a row twice as long, up to `max`. A success resets
/// it; [`Authenticator::refresh`](crate::Authenticator::refresh) overrides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoolDown {
    first: Duration,
    max: Duration,
}

impl Default for CoolDown {
    /// 1 s, doubling, up to 60 s.
    fn default() -> Self {
        Self { first: Duration::from_secs(1), max: Duration::from_secs(60) }
    }
}

impl CoolDown {
    /// The longest cool-down allowed.
    pub const MAX: Duration = Duration::from_secs(3600);

    /// A cool-down of `first` after one failure, doubling up to `max` (at most an hour).
    ///
    /// # Errors
    /// [`ConfigError::Retry`] when `max` is below `first` or above [`CoolDown::MAX`].
    pub fn new(first: Duration, max: Duration) -> Result<Self, ConfigError> {
        if max < first {
            return Err(ConfigError::Retry { setting: "cool_down", reason: "the maximum must not be below the first" });
        }
        if max > Self::MAX {
            return Err(ConfigError::Retry { setting: "cool_down", reason: "must not exceed an hour" });
        }
        Ok(Self { first, max })
    }

    /// No cool-down: every caller after a failure may begin a new login (each failure is still reported once).
    #[must_use]
    pub fn none() -> Self {
        Self { first: Duration::ZERO, max: Duration::ZERO }
    }

    /// The cool-down after `consecutive` failed logins in a row (1 for the first).
    #[must_use]
    pub fn after(&self, consecutive: u32) -> Duration {
        let doublings = consecutive.saturating_sub(1).min(31);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }
}

/// A small deterministic generator (SplitMix64) for backoff jitter. Seeded by the caller, so that a run replays.
#[derive(Clone, Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    fn next_unit(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        #[allow(clippy::cast_precision_loss)]
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit
    }
}

/// Reads a `Retry-After` value: whole seconds, or an HTTP date (taken relative to `now`; a date in the past means
/// no wait). `None` when the value is neither.
#[must_use]
pub fn parse_retry_after(value: &HeaderValue, now: UnixTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(UnixTime::from_system_time(at).saturating_since(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_waits_double_from_half_a_second_to_the_cap() {
        let policy = RetryPolicy::default().with_jitter(0.0).unwrap();
        let mut jitter = Jitter::new(1);
        let waits: Vec<u64> = (1..=11).map(|n| policy.delay(n, None, &mut jitter).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000]);
    }

    #[test]
    fn jitter_only_shortens_and_replays_from_the_seed() {
        let policy = RetryPolicy::default();
        let run = |seed| {
            let mut jitter = Jitter::new(seed);
            (1..=8).map(|n| policy.delay(n, None, &mut jitter)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let plain = RetryPolicy::default().with_jitter(0.0).unwrap();
        for (n, wait) in run(7).into_iter().enumerate() {
            let full = plain.delay(n as u32 + 1, None, &mut Jitter::new(0));
            assert!(wait <= full && wait >= full.mul_f64(0.8), "{wait:?} vs {full:?}");
        }
    }

    #[test]
    fn retry_after_wins_but_is_capped() {
        let policy = RetryPolicy::new(3, Duration::from_millis(100), 2.0, Duration::from_secs(60)).unwrap();
        let mut jitter = Jitter::new(0);
        assert_eq!(policy.delay(1, Some(Duration::from_secs(7)), &mut jitter), Duration::from_secs(7));
        assert_eq!(policy.delay(1, Some(Duration::from_secs(3600)), &mut jitter), Duration::from_secs(60));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = UnixTime::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
        let header = |s| HeaderValue::from_static(s);
        assert_eq!(parse_retry_after(&header("120"), now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(&header("Wed, 21 Oct 2015 07:28:30 GMT"), now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(&header("Wed, 21 Oct 2015 07:00:00 GMT"), now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after(&header("soon"), now), None);
        assert_eq!(parse_retry_after(&header("-5"), now), None);
    }

    #[test]
    fn bad_policies_name_the_setting() {
        let ms = Duration::from_millis;
        let setting = |r: Result<RetryPolicy, ConfigError>| match r {
            Err(ConfigError::Retry { setting, .. }) => setting,
            other => panic!("{other:?}"),
        };
        assert_eq!(setting(RetryPolicy::new(0, ms(500), 2.0, ms(1000))), "max_attempts");
        assert_eq!(setting(RetryPolicy::new(1, ms(5), 2.0, ms(1000))), "initial_interval");
        assert_eq!(setting(RetryPolicy::new(1, ms(500), 0.5, ms(1000))), "multiplier");
        assert_eq!(setting(RetryPolicy::new(1, ms(500), f64::NAN, ms(1000))), "multiplier");
        assert_eq!(setting(RetryPolicy::new(1, ms(500), 2.0, ms(100))), "max_interval");
        assert_eq!(setting(RetryPolicy::default().with_jitter(1.5)), "jitter");
        assert_eq!(setting(RetryPolicy::default().with_max_attempts(0)), "max_attempts");
        assert_eq!(RetryPolicy::default().with_max_attempts(3).unwrap().max_attempts(), 3);
    }
}
