//! Connections the server accepted per listener, and how many were open at once: what a test of a client's
//! connection bound asserts on.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::endpoint::Role;

/// Per [`Role`]: connections accepted since the last reset, open now, and the most open at once.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    per_role: [(AtomicU64, AtomicUsize, AtomicUsize); Role::ALL.len()],
}

impl Connections {
    /// Counts a connection accepted on `role`'s listener; it stays open until the guard is dropped.
    pub(crate) fn accepted(&self, role: Role) -> OpenGuard<'_> {
        let (accepted, open, peak) = &self.per_role[role as usize];
        accepted.fetch_add(1, Ordering::SeqCst);
        peak.fetch_max(open.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
        OpenGuard { connections: self, role }
    }

    pub(crate) fn accepted_on(&self, role: Role) -> u64 {
        self.per_role[role as usize].0.load(Ordering::SeqCst)
    }

    pub(crate) fn open_on(&self, role: Role) -> usize {
        self.per_role[role as usize].1.load(Ordering::SeqCst)
    }

    pub(crate) fn peak_open_on(&self, role: Role) -> usize {
        self.per_role[role as usize].2.load(Ordering::SeqCst)
    }

    /// Zeroes the accepted counts and restarts the peaks from the connections open now.
    pub(crate) fn reset(&self) {
        for (accepted, open, peak) in &self.per_role {
            accepted.store(0, Ordering::SeqCst);
            peak.store(open.load(Ordering::SeqCst), Ordering::SeqCst);
        }
    }
}

/// Leaves the open count when the connection ends (closed by either side, or cut off when the server stops).
#[derive(Debug)]
pub(crate) struct OpenGuard<'a> {
    connections: &'a Connections,
    role: Role,
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.connections.per_role[self.role as usize].1.fetch_sub(1, Ordering::SeqCst);
    }
}
