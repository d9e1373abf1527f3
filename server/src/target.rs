//! The built-in HTTP test target: a stand-in for the slow, flaky services
//! pipelines call (like the article's httpbin `/delay`). Every request is
//! answered after a latency drawn from a distribution, and a share of them
//! fail with a chosen status. Query parameters override the configuration
//! per request: `?delay_ms=20&status=503&fail_share=0.5`.
//!
//! It runs on its own (`queuelab target --port N`) or nested into another
//! router; `GET /_stats` reports what it has seen, so tests can check
//! that nothing was lost on the way.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use shared::spec::Distribution;
use tokio::sync::Semaphore;

/// How the target answers.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Latency of each answer.
    pub latency: Distribution,
    /// Share of requests that fail, 0..=1.
    pub fail_share: f64,
    /// Status of a failed request.
    pub fail_status: StatusCode,
}

impl Default for TargetConfig {
    fn default() -> Self {
        Self {
            latency: Distribution::Fixed { ms: 0.0 },
            fail_share: 0.0,
            fail_status: StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Parses a latency written as `fixed:MS`, `uniform:MIN:MAX`,
/// `exponential:MEAN` or `log_normal:MEDIAN:SIGMA`.
pub fn parse_latency(text: &str) -> Result<Distribution, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let num = |i: usize| -> Result<f64, String> {
        parts
            .get(i)
            .and_then(|p| p.parse::<f64>().ok())
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| format!("`{text}`: expected a non-negative number in position {i}"))
    };
    let d = match (parts[0], parts.len()) {
        ("fixed", 2) => Distribution::Fixed { ms: num(1)? },
        ("uniform", 3) => Distribution::Uniform {
            min_ms: num(1)?,
            max_ms: num(2)?,
        },
        ("exponential", 2) => Distribution::Exponential { mean_ms: num(1)? },
        ("log_normal", 3) => Distribution::LogNormal {
            median_ms: num(1)?,
            sigma: num(2)?,
        },
        _ => {
            return Err(format!(
                "`{text}`: expected fixed:MS, uniform:MIN:MAX, exponential:MEAN or log_normal:MEDIAN:SIGMA"
            ));
        }
    };
    if let Distribution::Uniform { min_ms, max_ms } = d
        && min_ms > max_ms
    {
        return Err(format!("`{text}`: MIN must not exceed MAX"));
    }
    Ok(d)
}

/// What the target has seen.
#[derive(Debug, Default, Serialize)]
pub struct TargetStats {
    /// Requests answered.
    pub requests: u64,
    /// Requests answered with the failure status.
    pub failures: u64,
    /// Non-empty lines in successfully answered request bodies.
    pub lines: u64,
    /// What every latency is multiplied by now (`PUT /_tune`).
    pub latency_factor: f64,
    /// Most requests served at once so far (those waiting for a slot
    /// not counted).
    pub most_served_at_once: u64,
}

/// A change to how the target answers from now on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetTune {
    /// Every latency is multiplied by this, 0 to 100.
    pub latency_factor: f64,
}

/// Most `slots` a request may name.
pub const MAX_SLOTS: u32 = 10_000;
/// Most distinct slot pools at once (one per `slots` value).
const MAX_POOLS: usize = 64;

#[derive(Debug, Default)]
struct Counters {
    serving: AtomicU64,
    most_serving: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
    lines: AtomicU64,
}

#[derive(Debug)]
struct Target {
    config: TargetConfig,
    latency: engine::ops::Latency,
    counters: Counters,
    seed: AtomicU64,
    /// The latency factor's bits (an `f64`), tuned live.
    factor: AtomicU64,
    /// One pool of slots per path and `slots` value: the requests to the
    /// same service share its capacity, another path is another service.
    pools: Mutex<HashMap<(String, u32), Arc<Semaphore>>>,
}

impl Target {
    fn factor(&self) -> f64 {
        f64::from_bits(self.factor.load(Ordering::Relaxed))
    }

    /// The pool of `n` slots of the service at `path`, `None` when too
    /// many pools exist already.
    fn pool(&self, path: &str, n: u32) -> Option<Arc<Semaphore>> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let key = (path.to_owned(), n);
        if let Some(p) = pools.get(&key) {
            return Some(p.clone());
        }
        if pools.len() >= MAX_POOLS {
            return None;
        }
        let p = Arc::new(Semaphore::new(n as usize));
        pools.insert(key, p.clone());
        Some(p)
    }
}

/// The allow-list entries that keep the target of a server listening on
/// `addr` reachable from its jobs: `/target` on its address and port (on
/// loopback, by name too, when it listens on loopback or everywhere), and
/// nothing else of that server.
pub fn allow_entries(addr: std::net::SocketAddr) -> Vec<engine::egress::AllowEntry> {
    let ip = addr.ip();
    let mut hosts = Vec::new();
    if !ip.is_unspecified() {
        hosts.push(ip.to_string());
    }
    if ip.is_unspecified() || ip.is_loopback() {
        for local in ["127.0.0.1", "::1", "localhost"] {
            if !hosts.iter().any(|h| h == local) {
                hosts.push(local.to_owned());
            }
        }
    }
    hosts
        .iter()
        .filter_map(|h| engine::egress::AllowEntry::under_path(h, addr.port(), "/target").ok())
        .collect()
}

/// The base URL a job on this machine reaches a target listening on
/// `addr` by (a wildcard address is reached on loopback).
pub fn base_url(addr: std::net::SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, addr.port()))
}

/// The target's routes: `GET /_stats`, and everything else answered.
pub fn router(config: TargetConfig) -> Router {
    let state = Arc::new(Target {
        latency: engine::ops::Latency::new(&config.latency),
        config,
        counters: Counters::default(),
        seed: AtomicU64::new(1),
        factor: AtomicU64::new(1.0f64.to_bits()),
        pools: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/_stats", get(stats))
        .route("/_tune", put(tune))
        .fallback(answer)
        .with_state(state)
}

async fn stats(State(t): State<Arc<Target>>) -> axum::Json<TargetStats> {
    let c = &t.counters;
    axum::Json(TargetStats {
        requests: c.requests.load(Ordering::Relaxed),
        failures: c.failures.load(Ordering::Relaxed),
        lines: c.lines.load(Ordering::Relaxed),
        latency_factor: t.factor(),
        most_served_at_once: c.most_serving.load(Ordering::Relaxed),
    })
}

async fn tune(
    State(t): State<Arc<Target>>,
    body: Result<axum::Json<TargetTune>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(axum::Json(tune)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            "expected {\"latency_factor\": <0..=100>}\n",
        )
            .into_response();
    };
    let f = tune.latency_factor;
    if !(f.is_finite() && (0.0..=100.0).contains(&f)) {
        return (
            StatusCode::BAD_REQUEST,
            "latency_factor must be between 0 and 100\n",
        )
            .into_response();
    }
    t.factor.store(f.to_bits(), Ordering::Relaxed);
    tracing::info!(latency_factor = f, "target tuned");
    stats(State(t)).await.into_response()
}

async fn answer(
    State(t): State<Arc<Target>>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut rng = SmallRng::seed_from_u64(t.seed.fetch_add(1, Ordering::Relaxed));
    let delay = match q.get("delay_ms").and_then(|v| v.parse::<f64>().ok()) {
        Some(ms) if ms.is_finite() && ms >= 0.0 => {
            std::time::Duration::from_secs_f64(ms.min(600_000.0) / 1000.0)
        }
        _ => t.latency.sample(&mut rng),
    };
    let fail_share = q
        .get("fail_share")
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(t.config.fail_share);
    let forced = q
        .get("status")
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok());
    let delay = delay.mul_f64(t.factor());
    let slots = match q.get("slots").map(|v| v.parse::<u32>()) {
        None => None,
        Some(Ok(n)) if (1..=MAX_SLOTS).contains(&n) => match t.pool(uri.path(), n) {
            Some(pool) => Some(pool),
            None => {
                return (StatusCode::SERVICE_UNAVAILABLE, "too many slot pools\n").into_response();
            }
        },
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("slots must be between 1 and {MAX_SLOTS}\n"),
            )
                .into_response();
        }
    };
    // Held while the answer is prepared: past `slots` in flight, requests
    // queue here, as at a service with that many workers.
    let _slot = match &slots {
        Some(pool) => pool.clone().acquire_owned().await.ok(),
        None => None,
    };
    let now = t.counters.serving.fetch_add(1, Ordering::Relaxed) + 1;
    t.counters.most_serving.fetch_max(now, Ordering::Relaxed);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    t.counters.serving.fetch_sub(1, Ordering::Relaxed);
    t.counters.requests.fetch_add(1, Ordering::Relaxed);
    let status = match forced {
        Some(s) => s,
        None if rng.random::<f64>() < fail_share => t.config.fail_status,
        None => StatusCode::OK,
    };
    if !status.is_success() {
        t.counters.failures.fetch_add(1, Ordering::Relaxed);
        return (status, format!("failed on purpose ({status})\n")).into_response();
    }
    let lines = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .count() as u64;
    t.counters.lines.fetch_add(lines, Ordering::Relaxed);
    axum::Json(serde_json::json!({
        "ok": true,
        "method": method.as_str(),
        "path": uri.path(),
        "delay_ms": delay.as_secs_f64() * 1000.0,
        "lines": lines,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_parse_or_explain() {
        assert_eq!(
            parse_latency("fixed:5").unwrap(),
            Distribution::Fixed { ms: 5.0 }
        );
        assert_eq!(
            parse_latency("uniform:1:2.5").unwrap(),
            Distribution::Uniform {
                min_ms: 1.0,
                max_ms: 2.5
            }
        );
        for bad in [
            "",
            "fixed",
            "fixed:-1",
            "uniform:3:1",
            "normal:1",
            "fixed:x",
        ] {
            assert!(parse_latency(bad).is_err(), "{bad}");
        }
    }
}
