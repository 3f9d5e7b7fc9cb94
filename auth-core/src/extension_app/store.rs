//! The app backend's memory of the pairs the pod issued: appToken → (symphonyToken, expireAt), and the check of a
//! pair a frontend hands back. Bounded, with entries that expire; time is an input.

use std::collections::HashMap;

use super::{AppToken, ExtensionAppTokens, SymphonyToken, constant_time_eq};
use crate::time::UnixTime;

/// Why a pair handed back by a frontend was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PairCheckError {
    /// No pair with this app token is stored (never issued, evicted, or already expired and dropped).
    #[error("unknown app token")]
    UnknownAppToken,
    /// The pair was stored but its `expireAt` has passed.
    #[error("the app token has expired")]
    Expired,
    /// The symphony token is not the one the pod paired with this app token.
    #[error("the symphony token does not match the app token")]
    Mismatch,
}

struct Entry {
    symphony_token: SymphonyToken,
    expire_at: UnixTime,
}

/// appToken → symphonyToken, as the pod issued them (keyed on the app token the backend sent, as BDK-Java does).
///
/// At most `capacity` entries: storing into a full store first drops the expired entries, then the one that
/// expires soonest. Nothing in it is printed; the symphony tokens are kept in wiping buffers, the app tokens (the
/// map's keys, which the frontend holds anyway) in plain strings.
pub struct AppTokenStore {
    capacity: usize,
    entries: HashMap<String, Entry>,
}

impl std::fmt::Debug for AppTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppTokenStore")
            .field("capacity", &self.capacity)
            .field("len", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl AppTokenStore {
    /// A store of at most `capacity` pairs (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), entries: HashMap::new() }
    }

    /// How many pairs are stored, expired ones included until they are dropped.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no pair is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Stores the pair of `app_token` (the one sent to the pod) from the pod's answer. An answer that has already
    /// expired at `now` is not stored. Returns whether it was stored.
    pub fn insert(&mut self, app_token: &AppToken, tokens: &ExtensionAppTokens, now: UnixTime) -> bool {
        if tokens.expire_at() <= now {
            return false;
        }
        let key = app_token.expose_secret();
        if !self.entries.contains_key(key) && self.entries.len() >= self.capacity {
            self.remove_expired(now);
            if self.entries.len() >= self.capacity {
                let soonest = self.entries.iter().min_by_key(|(_, entry)| entry.expire_at).map(|(k, _)| k.clone());
                if let Some(soonest) = soonest {
                    self.entries.remove(&soonest);
                }
            }
        }
        let entry = Entry { symphony_token: tokens.symphony_token().clone(), expire_at: tokens.expire_at() };
        self.entries.insert(key.to_owned(), entry);
        true
    }

    /// Checks a pair handed back by a frontend, as the app backend must before trusting it.
    ///
    /// # Errors
    /// [`PairCheckError`]; an expired entry is dropped.
    pub fn check(
        &mut self,
        app_token: &AppToken,
        symphony_token: &SymphonyToken,
        now: UnixTime,
    ) -> Result<(), PairCheckError> {
        let key = app_token.expose_secret();
        let entry = self.entries.get(key).ok_or(PairCheckError::UnknownAppToken)?;
        if entry.expire_at <= now {
            self.entries.remove(key);
            return Err(PairCheckError::Expired);
        }
        if constant_time_eq(entry.symphony_token.expose_secret(), symphony_token.expose_secret()) {
            Ok(())
        } else {
            Err(PairCheckError::Mismatch)
        }
    }

    /// Drops every entry that has expired at `now`.
    pub fn remove_expired(&mut self, now: UnixTime) {
        self.entries.retain(|_, entry| entry.expire_at > now);
    }
}
