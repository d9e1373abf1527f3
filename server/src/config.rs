//! Configuration of `queuelab serve`, from flags and environment variables.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Everything `queuelab serve` needs; each flag has an environment variable
/// so containers and systemd units can configure it without a command line.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Address to bind. Loopback by default: exposing the server is a choice.
    #[arg(long, env = "QUEUELAB_BIND", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,

    /// TCP port to listen on; 0 picks a free one (printed at start).
    #[arg(long, short, env = "QUEUELAB_PORT", default_value_t = 8080)]
    pub port: u16,

    /// Folder for QueueLab's own files (its SQLite store, job leftovers).
    /// Created if missing.
    #[arg(long, env = "QUEUELAB_DATA_DIR", default_value = "queuelab-data")]
    pub data_dir: PathBuf,

    /// Where QueueLab keeps its state: a `postgres://` URL for a team
    /// server, or a SQLite file; `<data dir>/queuelab.db` when omitted.
    #[arg(long, env = "QUEUELAB_STORE", hide_env_values = true)]
    pub store: Option<String>,

    /// Folder of the built dashboard. Found automatically when omitted:
    /// next to the binary, in `../share/queuelab/dashboard`, or in the
    /// source tree's `frontend/dist`.
    #[arg(long, env = "QUEUELAB_ASSETS")]
    pub assets: Option<PathBuf>,

    /// Milliseconds between WebSocket heartbeat frames.
    #[arg(long, env = "QUEUELAB_HEARTBEAT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub heartbeat_ms: u64,

    /// Most WebSocket clients served at once; more are refused with 503.
    #[arg(long, env = "QUEUELAB_MAX_WS_CLIENTS", default_value_t = crate::state::DEFAULT_MAX_WS_CLIENTS)]
    pub max_ws_clients: usize,

    /// Most ingest requests waiting for room in their job at once, over
    /// all jobs; more are refused with 503 and `Retry-After`. A waiting
    /// request costs memory and a connection, never a thread.
    #[arg(long, env = "QUEUELAB_MAX_INGEST_WAITING", default_value_t = crate::ingest::DEFAULT_MAX_WAITING)]
    pub max_ingest_waiting: usize,

    /// On shutdown, how long running jobs may drain before they are aborted
    /// (what is left goes to their leftovers files).
    #[arg(long, env = "QUEUELAB_SHUTDOWN_DRAIN_MS", default_value_t = 10_000)]
    pub shutdown_drain_ms: u64,

    /// API tokens: `auto` asks for them unless bound to loopback.
    #[arg(long, env = "QUEUELAB_AUTH", value_enum, default_value_t = crate::auth::AuthMode::Auto)]
    pub auth: crate::auth::AuthMode,

    /// Origins allowed to call the API from a browser (CORS), e.g.
    /// `https://dash.example`; repeat or separate with commas.
    #[arg(long, env = "QUEUELAB_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origin: Vec<String>,

    /// Host names the server answers for, besides IP addresses and
    /// `localhost` (e.g. `queuelab.staging.example`); requests naming any
    /// other host are refused, which defeats DNS rebinding. Repeat or
    /// separate with commas.
    #[arg(long, env = "QUEUELAB_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_host: Vec<String>,

    /// Jobs that may run at once; more are refused with 429.
    #[arg(long, env = "QUEUELAB_MAX_JOBS", default_value_t = crate::limits::Limits::default().max_jobs)]
    pub max_jobs: usize,

    /// Stage workers (threads and tasks) all running jobs may have
    /// together; starts and scale-ups past it are refused with 429.
    #[arg(long, env = "QUEUELAB_MAX_WORKERS", default_value_t = crate::limits::Limits::default().max_workers)]
    pub max_workers: u64,

    /// Items the bounded queues of all running jobs may hold together.
    #[arg(long, env = "QUEUELAB_MAX_QUEUED", default_value_t = crate::limits::Limits::default().max_queued)]
    pub max_queued: u64,

    /// Folders the paths in specs must resolve inside (sources, offsets,
    /// samples, sinks, dead letters); relative paths resolve against the
    /// first. Repeat or separate with commas; `<data dir>/files` when
    /// omitted. Created if missing. The store is never a target.
    #[arg(long, env = "QUEUELAB_FILES_ROOT", value_delimiter = ',')]
    pub files_root: Vec<PathBuf>,

    /// Hosts `http` operations and sinks (and literal `postgres://` URLs)
    /// may connect to: `host`, `host:port`, an IP address or a CIDR such as
    /// `10.0.0.0/8`. Repeat or separate with commas. Nothing when omitted,
    /// except this server's own `/target`.
    #[arg(long, env = "QUEUELAB_HTTP_ALLOW", value_delimiter = ',',
          value_parser = engine::egress::AllowEntry::parse)]
    pub http_allow: Vec<engine::egress::AllowEntry>,

    /// Lets `tcp` sources listen on any address; without it a spec's tcp
    /// source may listen on loopback only, so no spec opens the host to
    /// the network.
    #[arg(long, env = "QUEUELAB_LISTEN_ANYWHERE")]
    pub listen_anywhere: bool,

    /// Unknown API tokens a client address may send per minute before its
    /// requests are refused with 429 and `Retry-After`.
    #[arg(long, env = "QUEUELAB_AUTH_FAILURES_PER_MINUTE", default_value_t = crate::auth::FAILURES_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_failures_per_minute: u32,

    /// The built-in test target at `/target`: `auto` mounts it only when
    /// no tokens are asked for (it answers without one, so that jobs'
    /// `http` ops can call it); `on` mounts it on a shared server too.
    #[arg(long, env = "QUEUELAB_TARGET", value_enum, default_value_t = TargetMode::Auto)]
    pub target: TargetMode,

    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "QUEUELAB_LOG_JSON")]
    pub log_json: bool,

    /// The NATS JetStream broker of broker stages (`transport = { kind =
    /// "nats" }` without a URL, or `env:QUEUELAB_NATS_URL`). Workers are
    /// told this URL unless they were given their own.
    #[arg(long, env = "QUEUELAB_NATS_URL")]
    pub nats_url: Option<String>,

    /// Run no broker stage workers in the server itself: only `queuelab
    /// worker` processes do (a stage waits in its stream until one joins).
    #[arg(long, env = "QUEUELAB_NO_LOCAL_STAGE_WORKERS")]
    pub no_local_stage_workers: bool,

    /// A TOML file with any of the settings above (`port = 9000`,
    /// `data_dir = "/var/lib/queuelab"`, `cors_origin = ["https://…"]`).
    /// Flags win over environment variables, which win over the file.
    #[arg(long, env = "QUEUELAB_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Whether `/target` is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetMode {
    /// Only while the API asks for no tokens.
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl TargetMode {
    /// As [`crate::state::AppState::with_target`] takes it.
    pub fn mounted(self) -> Option<bool> {
        match self {
            TargetMode::Auto => None,
            TargetMode::On => Some(true),
            TargetMode::Off => Some(false),
        }
    }
}

/// Settings a config file may hold: the `serve` flags, by their names.
pub const FILE_KEYS: &[&str] = &[
    "bind",
    "port",
    "data_dir",
    "store",
    "assets",
    "heartbeat_ms",
    "max_ws_clients",
    "max_ingest_waiting",
    "shutdown_drain_ms",
    "auth",
    "cors_origin",
    "allowed_host",
    "max_jobs",
    "max_workers",
    "max_queued",
    "files_root",
    "http_allow",
    "target",
    "auth_failures_per_minute",
    "listen_anywhere",
    "log_json",
];

/// Reads a config file into `(flag id, value)` pairs, to become the
/// defaults of `queuelab serve`. Every problem names the key.
pub fn read_file(path: &std::path::Path) -> Result<Vec<(&'static str, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let Some(id) = FILE_KEYS.iter().find(|k| **k == key) else {
            return Err(format!(
                "{}: unknown setting `{key}`; known: {}",
                path.display(),
                FILE_KEYS.join(", ")
            ));
        };
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            other => {
                return Err(format!(
                    "{}: `{key}` cannot be {}",
                    path.display(),
                    other.type_str()
                ));
            }
        };
        out.push((*id, text));
    }
    Ok(out)
}

impl ServeConfig {
    /// The socket address to listen on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.bind, self.port)
    }

    /// Whether the API asks for tokens.
    pub fn auth_enabled(&self) -> bool {
        match self.auth {
            crate::auth::AuthMode::On => true,
            crate::auth::AuthMode::Off => false,
            crate::auth::AuthMode::Auto => !self.bind.is_loopback(),
        }
    }

    /// The server-wide limits these flags set.
    pub fn limits(&self) -> crate::limits::Limits {
        crate::limits::Limits {
            max_jobs: self.max_jobs,
            max_workers: self.max_workers,
            max_queued: self.max_queued,
        }
    }

    /// Interval between heartbeat frames.
    pub fn heartbeat_every(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }
}

/// The URL a person should open for a server listening on `addr`: an
/// unspecified bind address (`0.0.0.0`) is shown as loopback, which is
/// reachable from the same host.
pub fn display_url(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => match ip {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        },
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(host, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_shows_loopback_for_unspecified_bind() {
        assert_eq!(
            display_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(display_url("[::]:81".parse().unwrap()), "http://[::1]:81/");
        assert_eq!(
            display_url("192.0.2.7:9".parse().unwrap()),
            "http://192.0.2.7:9/"
        );
    }
}
