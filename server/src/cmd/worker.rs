//! `queuelab worker`: a process that runs broker stages for a server.
//!
//! It registers, then heartbeats; each reply lists everything it should
//! run (assignments with a worker count), and it starts, scales and stops
//! [`engine::broker::RemoteStage`]s to match. Items never pass through
//! the server's HTTP: they come from and go back to NATS JetStream. A
//! server that restarted answers a heartbeat with 404, and the worker
//! registers again, its stages running on meanwhile. On Ctrl-C or SIGTERM
//! it retires its workers (each settles what it holds), says it leaves,
//! and exits; what a killed worker held is redelivered to the others.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use engine::broker::RemoteStage;
use shared::workers::{EdgeNames, Heartbeat, HeartbeatReply, RegisterRequest, Registered, Running};

/// The `worker` command's flags.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The server's base URL.
    #[arg(long, env = "QUEUELAB_URL", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// API token (operator), sent as a bearer token.
    #[arg(long, env = "QUEUELAB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// This worker's name, unique among the server's workers (default:
    /// HOST-PID).
    #[arg(long, env = "QUEUELAB_WORKER_NAME")]
    pub name: Option<String>,
    /// Labels a stage's `placement` can ask for (comma-separated).
    #[arg(long, env = "QUEUELAB_WORKER_LABELS", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Most stage workers to run here at once.
    #[arg(long, env = "QUEUELAB_WORKER_CAPACITY")]
    pub capacity_hint: Option<u32>,
    /// The broker as this host reaches it, instead of the URL the server
    /// sends (another address for the same NATS server).
    #[arg(long, env = "QUEUELAB_WORKER_NATS_URL")]
    pub nats_url: Option<String>,
    /// Hosts the stages' `http` operations may reach from this host (as
    /// `serve --http-allow`). The server checked each spec against its own
    /// list; this host's network may differ, so without this flag a worker
    /// reaches none (only the broker).
    #[arg(long, env = "QUEUELAB_WORKER_HTTP_ALLOW", value_delimiter = ',',
          value_parser = engine::egress::AllowEntry::parse)]
    pub http_allow: Vec<engine::egress::AllowEntry>,
    /// How long a stop waits for workers to settle what they hold.
    #[arg(long, default_value_t = 10_000)]
    pub grace_ms: u64,
    /// Log as JSON lines.
    #[arg(long, env = "QUEUELAB_LOG_JSON")]
    pub log_json: bool,
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".into())
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let req = self
            .http
            .post(format!("{}{path}", self.base.trim_end_matches('/')));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }
}

/// Runs the worker until Ctrl-C or SIGTERM.
#[tokio::main]
pub async fn run(args: WorkerArgs) -> anyhow::Result<()> {
    let host = host_name();
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("{host}-{}", std::process::id()));
    let req = RegisterRequest {
        name: name.clone(),
        host,
        version: server::VERSION.into(),
        labels: args.labels.clone(),
        capacity_hint: args.capacity_hint,
    };
    if let Some((field, message)) = req.problems().into_iter().next() {
        anyhow::bail!("{field}: {message}");
    }
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .context("HTTP client")?,
        base: args.server.clone(),
        token: args.token.clone(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            crate::shutdown_signal().await;
            stop.cancel();
        });
    }
    let mut stages: HashMap<EdgeNames, Arc<RemoteStage>> = HashMap::new();
    let mut me: Option<Registered> = None;
    let mut every = Duration::from_millis(1000);
    while !stop.is_cancelled() {
        if me.is_none() {
            match register(&client, &req).await {
                Ok(r) => {
                    tracing::info!(worker = %r.id, name = %name, server = %args.server, "registered");
                    every = Duration::from_millis(r.heartbeat_ms.clamp(100, 10_000));
                    me = Some(r);
                }
                Err(e) => {
                    tracing::warn!(server = %args.server, error = %e, "cannot register; trying again")
                }
            }
        }
        if let Some(r) = &me {
            let beat = Heartbeat {
                running: stages
                    .iter()
                    .map(|(names, s)| Running {
                        names: names.clone(),
                        workers: s.workers(),
                        counts: s.counts(),
                    })
                    .collect(),
            };
            match heartbeat(&client, &r.id, &beat).await {
                Ok(Some(reply)) => reconcile(&mut stages, reply, &args).await,
                Ok(None) => {
                    tracing::warn!(worker = %r.id, "the server does not know this worker (it restarted, or this worker was lost): registering again");
                    me = None;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "heartbeat failed; the stages run on")
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
    }
    tracing::info!(name = %name, "stopping: settling what the workers hold");
    for s in stages.values() {
        s.scale_to(0);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(args.grace_ms);
    while stages.values().any(|s| s.live() > 0) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for s in stages.values() {
        s.stop();
    }
    if let Some(r) = &me {
        let _ = client
            .post(&format!("/api/v1/workers/{}/leave", r.id))
            .json(&serde_json::json!({}))
            .send()
            .await;
    }
    Ok(())
}

async fn register(client: &Client, req: &RegisterRequest) -> anyhow::Result<Registered> {
    let resp = client.post("/api/v1/workers").json(req).send().await?;
    let status = resp.status();
    if !status.is_success() {
        anyhow::bail!("{status}: {}", resp.text().await.unwrap_or_default());
    }
    Ok(resp.json().await?)
}

/// `Ok(None)`: the server does not know this worker.
async fn heartbeat(
    client: &Client,
    id: &str,
    beat: &Heartbeat,
) -> anyhow::Result<Option<HeartbeatReply>> {
    let resp = client
        .post(&format!("/api/v1/workers/{id}/heartbeat"))
        .json(beat)
        .send()
        .await?;
    match resp.status() {
        reqwest::StatusCode::NOT_FOUND => Ok(None),
        s if s.is_success() => Ok(Some(resp.json().await?)),
        s => anyhow::bail!("{s}: {}", resp.text().await.unwrap_or_default()),
    }
}

/// Starts, scales and stops stages to match the server's reply.
async fn reconcile(
    stages: &mut HashMap<EdgeNames, Arc<RemoteStage>>,
    reply: HeartbeatReply,
    args: &WorkerArgs,
) {
    let egress = engine::egress::Egress::Only(std::sync::Arc::new(engine::egress::AllowList::new(
        args.http_allow.clone(),
    )));
    let wanted: Vec<EdgeNames> = reply
        .assignments
        .iter()
        .map(|p| p.assignment.names.clone())
        .collect();
    stages.retain(|names, s| {
        let keep = wanted.contains(names);
        if !keep {
            tracing::info!(job = %names.job, stage = %names.stage, "assignment ended");
            s.stop();
        }
        keep
    });
    for placed in reply.assignments {
        let names = placed.assignment.names.clone();
        if let Some(s) = stages.get(&names) {
            s.set_limits(placed.limits);
            s.scale_to(placed.workers);
            continue;
        }
        let mut assignment = placed.assignment;
        if let Some(url) = &args.nats_url {
            assignment.url = url.clone();
        }
        let started =
            RemoteStage::start(assignment, None, tokio::runtime::Handle::current(), &egress).await;
        match started {
            Ok(s) => {
                tracing::info!(job = %names.job, stage = %names.stage, workers = placed.workers, "assignment started");
                s.set_limits(placed.limits);
                s.scale_to(placed.workers);
                stages.insert(names, s);
            }
            Err(e) => {
                tracing::warn!(job = %names.job, stage = %names.stage, error = ?e, "cannot start an assignment");
            }
        }
    }
}
