//! The bound on requests in flight per host ([`ConnectionSettings::max_per_host`]): a tokio semaphore per host,
//! named by the core's [`HostKey`]. reqwest opens a connection whenever its pool has none idle, so bounding the
//! requests in flight bounds the connections; callers over the bound queue in the semaphore's fair order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use symphony_auth_core::driver::{ConnectionSettings, HostKey};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests in flight per host, bounded. One per bot (shared by its clients) or per extension-app client.
#[derive(Debug)]
pub(crate) struct Gate {
    limit: usize,
    /// One entry per host the bot has sent to: its services' few, and those of `send_unauthenticated`.
    hosts: Mutex<HashMap<HostKey, Arc<Semaphore>>>,
}

impl Gate {
    pub(crate) fn new(settings: &ConnectionSettings) -> Self {
        Self { limit: settings.max_per_host(), hosts: Mutex::new(HashMap::new()) }
    }

    /// Waits for a slot of `uri`'s host; the slot is given back when the permit is dropped. A URI without a host
    /// takes none: reqwest refuses it before connecting. Cancellation-safe: a caller dropped while queued leaves
    /// the queue.
    pub(crate) async fn enter(&self, uri: &http::Uri) -> Option<OwnedSemaphorePermit> {
        let host = HostKey::of(uri)?;
        let semaphore = {
            let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(hosts.entry(host).or_insert_with(|| Arc::new(Semaphore::new(self.limit))))
        };
        // The semaphore is never closed, so acquiring only fails if it were.
        semaphore.acquire_owned().await.ok()
    }
}
