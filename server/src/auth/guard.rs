//! The guard in front of the token check: failed checks throttled per
//! client address, and the short-lived cache of tokens the store knows.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::tokens::Identity;

/// Failed token checks a client address may make in a burst, and then
/// per minute.
pub const FAILURES_PER_MINUTE: u32 = 10;

/// How long a token found in the store is trusted without asking again.
/// Why cache: each authenticated request would otherwise queue a query on
/// the store's few threads, so a burst of requests (a thousand ingest
/// clients) would make an unrelated `POST /jobs` wait behind their
/// lookups. Why so short: a token deleted from the store stops working
/// within this time. Only tokens the store knows are cached, so the cache
/// stays as small as the token table.
pub const TOKEN_TTL: Duration = Duration::from_secs(10);

/// Failed-token throttling per client address, and the token cache.
pub struct Guard {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses the limiter refused, and until when.
    throttled: Mutex<HashMap<IpAddr, Instant>>,
    /// Token hash → who, and when the store said so.
    known: Mutex<HashMap<String, (Identity, Instant)>>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("addresses", &self.failures.len())
            .finish_non_exhaustive()
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self::new(FAILURES_PER_MINUTE)
    }
}

impl Guard {
    /// A guard allowing `per_minute` failures per address (also the burst).
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        Self {
            failures: RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)),
            throttled: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// How long `peer` must still wait, if it is throttled.
    pub(super) fn throttled(&self, peer: IpAddr) -> Option<Duration> {
        let mut map = self.throttled.lock().unwrap_or_else(|e| e.into_inner());
        let until = *map.get(&peer)?;
        let now = Instant::now();
        if until > now {
            Some(until - now)
        } else {
            map.remove(&peer);
            None
        }
    }

    /// Counts a failed check from `peer`; returns how long it is throttled
    /// from now on, if this failure was one too many.
    pub(super) fn failed(&self, peer: IpAddr) -> Option<Duration> {
        let not_until = self.failures.check_key(&peer).err()?;
        let wait = not_until.wait_time_from(self.failures.clock().now());
        let now = Instant::now();
        let mut map = self.throttled.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, until| *until > now);
        map.insert(peer, now + wait);
        // Forget addresses whose allowance is whole again.
        if self.failures.len() > 4096 {
            self.failures.retain_recent();
        }
        Some(wait)
    }

    pub(super) fn cached(&self, hash: &str) -> Option<Identity> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(hash)
            .filter(|(_, at)| at.elapsed() < TOKEN_TTL)
            .map(|(who, _)| who.clone())
    }

    pub(super) fn remember(&self, hash: String, who: Identity) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.retain(|_, (_, at)| at.elapsed() < TOKEN_TTL);
        known.insert(hash, (who, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::Role;

    #[test]
    fn failures_are_throttled_per_address() {
        let guard = Guard::new(3);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        for _ in 0..3 {
            assert_eq!(guard.failed(a), None, "within the burst");
        }
        assert_eq!(guard.throttled(a), None);
        let wait = guard.failed(a).expect("one too many");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(guard.throttled(a).is_some());
        assert_eq!(guard.throttled(b), None, "per address");
        assert_eq!(guard.failed(b), None);
    }

    #[test]
    fn known_tokens_are_cached_briefly() {
        let guard = Guard::default();
        assert_eq!(guard.cached("h"), None);
        let who = Identity {
            label: "ci".into(),
            role: Role::Operator,
        };
        guard.remember("h".into(), who.clone());
        assert_eq!(guard.cached("h"), Some(who));
        assert_eq!(guard.cached("other"), None);
    }
}
