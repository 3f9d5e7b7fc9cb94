//! How a bot's HTTP clients hold connections: how many requests go to one host at once (the others queue), how
//! many connections stay idle and for how long, and how large each connection's buffers are. Both drivers read
//! these from [`ClientOptions::connections`](super::ClientOptions::connections) and only apply them.
//!
//! Neither ureq nor reqwest bounds the connections in use per host: each opens one more whenever its pool has
//! none idle, so 1,000 concurrent calls open 1,000 sockets to the pod. The bound is kept by the driver with a
//! permit per request; [`HostSlots`] is the count behind it for a driver (or binding) that waits with a mutex and
//! a condition variable, [`HostKey`] the name of a host for one that keeps a semaphore per host.
//!
//! The defaults are chosen for thousands of bots in one process (a ready bot should cost kilobytes, not the
//! quarter megabyte of ureq's defaults) and are enough for what a bot sends: login answers and API calls of a few
//! kilobytes. A bot that moves large bodies (file uploads, big message batches) gains throughput from larger
//! buffers; nothing fails with the small ones, as bodies stream through them.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Default bound on the requests in flight to one host, hence on its open connections. In the tens: enough to
/// keep a pod busy for one bot, few enough that a storm of callers does not look like an attack to its load
/// balancer or run the process out of file descriptors.
pub const DEFAULT_MAX_CONNECTIONS_PER_HOST: usize = 32;
/// Default time an idle connection is kept: below the 60 s idle timeout of common load balancers, so that the pool
/// does not hand out a connection the other end is closing.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Default size of a connection's read buffer (where the blocking driver has one to size). It must hold a whole
/// response head: Symphony's are about 1 KiB, and 16 KiB leaves room for a load balancer's cookies. Bodies
/// stream through it.
pub const DEFAULT_READ_BUFFER: usize = 16 * 1024;
/// Default size of a connection's write buffer. It must hold a whole request head: tokens and a Common JWT come to
/// about 4 KiB at most. Bodies stream through it.
pub const DEFAULT_WRITE_BUFFER: usize = 8 * 1024;
/// The smallest buffer a setting is raised to: below it a request or response head would not fit.
pub const MIN_BUFFER: usize = 4 * 1024;

/// How a bot's HTTP clients hold connections. [`Default`] gives the `DEFAULT_*` constants of this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionSettings {
    max_per_host: usize,
    /// `None`: as many as [`max_per_host`](Self::max_per_host).
    max_idle_per_host: Option<usize>,
    idle_timeout: Duration,
    read_buffer: usize,
    write_buffer: usize,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        Self {
            max_per_host: DEFAULT_MAX_CONNECTIONS_PER_HOST,
            max_idle_per_host: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            read_buffer: DEFAULT_READ_BUFFER,
            write_buffer: DEFAULT_WRITE_BUFFER,
        }
    }
}

impl ConnectionSettings {
    /// At most `n` requests in flight to one host (at least 1); the others wait for one to finish.
    #[must_use]
    pub fn with_max_per_host(mut self, n: usize) -> Self {
        self.max_per_host = n.max(1);
        self
    }

    /// At most `n` idle connections kept per host (0: none kept, every request opens its own). By default as many
    /// as may be in use: calls finishing together (a storm's waves, answers of equal latency) put all their
    /// connections back at once, and a smaller pool would close most of them only for the next wave to open them
    /// again. A login leaves one per login host, so a ready bot holds two or three whatever this is; the others
    /// close after [`idle_timeout`](Self::idle_timeout).
    #[must_use]
    pub fn with_max_idle_per_host(mut self, n: usize) -> Self {
        self.max_idle_per_host = Some(n);
        self
    }

    /// An idle connection is closed after `timeout`.
    #[must_use]
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Buffer sizes of each connection, raised to [`MIN_BUFFER`] when smaller: for a bot that moves large bodies.
    /// Applied by the blocking driver (ureq allocates both in full for every connection); the async driver's
    /// HTTP stack sizes its buffers to the traffic by itself.
    #[must_use]
    pub fn with_buffers(mut self, read: usize, write: usize) -> Self {
        self.read_buffer = read.max(MIN_BUFFER);
        self.write_buffer = write.max(MIN_BUFFER);
        self
    }

    /// Requests in flight to one host at most.
    #[must_use]
    pub fn max_per_host(&self) -> usize {
        self.max_per_host
    }

    /// Idle connections kept per host at most.
    #[must_use]
    pub fn max_idle_per_host(&self) -> usize {
        self.max_idle_per_host.unwrap_or(self.max_per_host)
    }

    /// Idle connections kept in all: the per-host figure for each service a bot may talk to.
    #[must_use]
    pub fn max_idle(&self) -> usize {
        self.max_idle_per_host().saturating_mul(crate::config::Service::ALL.len())
    }

    /// How long an idle connection is kept.
    #[must_use]
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Size of a connection's read buffer.
    #[must_use]
    pub fn read_buffer(&self) -> usize {
        self.read_buffer
    }

    /// Size of a connection's write buffer.
    #[must_use]
    pub fn write_buffer(&self) -> usize {
        self.write_buffer
    }
}

/// The host a request goes to, as pools count it: scheme, lower-case host and port (the scheme's default when
/// the URI names none).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HostKey(String);

impl HostKey {
    /// The host of `uri`; `None` for a URI without one (a driver sends no such request).
    #[must_use]
    pub fn of(uri: &http::Uri) -> Option<Self> {
        let host = uri.host()?;
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if scheme == "http" { 80 } else { 443 });
        Some(Self(format!("{scheme}://{}:{port}", host.to_ascii_lowercase())))
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({})", self.0)
    }
}

/// Requests in flight per host, each host bounded: a driver takes a slot before sending and gives it back once
/// the answer is read, and waits (on its condition variable, say) when [`try_take`](Self::try_take) says no.
#[derive(Debug)]
pub struct HostSlots {
    limit: usize,
    in_use: HashMap<HostKey, usize>,
}

impl HostSlots {
    /// At most `limit` (at least 1) slots per host.
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self { limit: limit.max(1), in_use: HashMap::new() }
    }

    /// The bound per host.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Takes a slot of `host` when one is free; `false` when all are taken (nothing changes then).
    pub fn try_take(&mut self, host: &HostKey) -> bool {
        let count = self.in_use.entry(host.clone()).or_insert(0);
        if *count >= self.limit {
            return false;
        }
        *count += 1;
        true
    }

    /// Gives a slot of `host` back. A host with no slot taken is forgotten, so the map holds only busy hosts.
    pub fn give_back(&mut self, host: &HostKey) {
        if let Some(count) = self.in_use.get_mut(host) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.in_use.remove(host);
            }
        }
    }

    /// Slots of `host` taken now.
    #[must_use]
    pub fn in_use(&self, host: &HostKey) -> usize {
        self.in_use.get(host).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str) -> HostKey {
        HostKey::of(&uri.parse().unwrap()).unwrap()
    }

    #[test]
    fn a_host_key_is_scheme_host_and_port_with_defaults_filled_in() {
        assert_eq!(key("https://Pod.Example.com/login"), key("https://pod.example.com:443/pod/v1"));
        assert_eq!(key("http://pod.example.com/x"), key("http://pod.example.com:80/y"));
        assert_ne!(key("http://pod.example.com/"), key("https://pod.example.com/"));
        assert_ne!(key("https://pod.example.com/"), key("https://pod.example.com:8443/"));
        assert_ne!(key("https://pod.example.com/"), key("https://km.example.com/"));
        assert!(HostKey::of(&"/relative".parse().unwrap()).is_none());
        assert_eq!(format!("{:?}", key("https://pod.example.com/login")), "HostKey(https://pod.example.com:443)");
    }

    #[test]
    fn slots_are_bounded_per_host_and_come_back() {
        let (pod, km) = (key("https://pod/"), key("https://km/"));
        let mut slots = HostSlots::new(2);
        assert_eq!(slots.limit(), 2);
        assert!(slots.try_take(&pod));
        assert!(slots.try_take(&pod));
        assert!(!slots.try_take(&pod), "a third request to the same host waits");
        assert_eq!(slots.in_use(&pod), 2);
        assert!(slots.try_take(&km), "another host has slots of its own");
        slots.give_back(&pod);
        assert_eq!(slots.in_use(&pod), 1);
        assert!(slots.try_take(&pod));
        slots.give_back(&pod);
        slots.give_back(&pod);
        slots.give_back(&km);
        assert!(slots.in_use.is_empty(), "idle hosts are forgotten: {:?}", slots.in_use);
        slots.give_back(&km);
        assert_eq!(slots.in_use(&km), 0, "an extra give-back does not underflow");
    }

    #[test]
    fn a_limit_of_zero_means_one() {
        let pod = key("https://pod/");
        let mut slots = HostSlots::new(0);
        assert_eq!(slots.limit(), 1);
        assert!(slots.try_take(&pod));
        assert!(!slots.try_take(&pod));
    }

    #[test]
    fn settings_keep_their_floors() {
        let settings = ConnectionSettings::default().with_max_per_host(0).with_buffers(10, 1 << 20);
        assert_eq!(settings.max_per_host(), 1);
        assert_eq!(settings.read_buffer(), MIN_BUFFER);
        assert_eq!(settings.write_buffer(), 1 << 20);
        let default = ConnectionSettings::default();
        assert!((10..100).contains(&default.max_per_host()));
        assert_eq!(default.max_idle_per_host(), default.max_per_host(), "idle follows the bound by default");
        assert_eq!(default.max_idle(), default.max_per_host() * crate::config::Service::ALL.len());
        let raised = default.with_max_per_host(100);
        assert_eq!(raised.max_idle_per_host(), 100);
        assert_eq!(raised.with_max_idle_per_host(2).max_idle_per_host(), 2);
    }

    /// The figures the README and the heap-per-bot measure rest on.
    #[test]
    fn the_defaults_are_the_documented_sizes_and_times() {
        let default = ConnectionSettings::default();
        assert_eq!((default.read_buffer(), default.write_buffer()), (16_384, 8_192), "16 KiB read, 8 KiB write");
        assert_eq!(default.with_buffers(0, 0).read_buffer(), 4_096, "a 4 KiB floor");
        assert_eq!(default.max_per_host(), 32);
        assert_eq!(default.idle_timeout(), Duration::from_secs(15));
        let brief = default.with_idle_timeout(Duration::from_millis(1_500));
        assert_eq!(brief.idle_timeout(), Duration::from_millis(1_500));
        assert_eq!(brief.with_max_per_host(7), ConnectionSettings { max_per_host: 7, ..brief }, "nothing else moves");
    }
}
