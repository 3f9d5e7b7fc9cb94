//! The bound on requests in flight per host ([`ConnectionSettings::max_per_host`]): the core's [`HostSlots`]
//! behind a mutex, and a condition variable that callers over the bound wait on. ureq opens a connection whenever
//! its pool has none idle, so bounding the requests in flight bounds the connections.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use symphony_auth_core::driver::{ConnectionSettings, HostKey, HostSlots};

/// Requests in flight per host, bounded. One per bot (shared by its agents) or per extension-app client.
#[derive(Debug)]
pub(crate) struct Gate {
    slots: Mutex<HostSlots>,
    freed: Condvar,
}

impl Gate {
    pub(crate) fn new(settings: &ConnectionSettings) -> Self {
        Self { slots: Mutex::new(HostSlots::new(settings.max_per_host())), freed: Condvar::new() }
    }

    /// Waits for a slot of `uri`'s host. A URI without a host takes none: ureq refuses it before connecting.
    /// The wait is not bounded here: every holder gives its slot back within the request timeout.
    pub(crate) fn enter(&self, uri: &http::Uri) -> Option<Pass<'_>> {
        let host = HostKey::of(uri)?;
        let mut slots = self.lock();
        while !slots.try_take(&host) {
            slots = self.freed.wait(slots).unwrap_or_else(PoisonError::into_inner);
        }
        Some(Pass { gate: self, host })
    }

    fn lock(&self) -> MutexGuard<'_, HostSlots> {
        // The count stays consistent across a panic: it is only changed by whole method calls.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A slot taken; given back when dropped, even by a panic.
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    gate: &'a Gate,
    host: HostKey,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.gate.lock().give_back(&self.host);
        // All: the waiters may be waiting for other hosts, and a single wake-up could go to one of those.
        self.gate.freed.notify_all();
    }
}
