//! `queuelab jobs …`: the client verbs for scripts and CI, speaking the
//! REST API of a running server.
//!
//! ```sh
//! id=$(queuelab jobs start thread-io-pool --override '{"source":{"count":500}}')
//! queuelab jobs wait "$id" --fail-on 'p99>50ms' --fail-on 'dead_lettered>0'
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shared::api::{ErrorBody, JobDetail, JobPage, StopMode, StopRequest};
use shared::metrics::{JobReport, JobState, TuneRequest};

/// Where the server is and who we are.
#[derive(Debug, Clone, clap::Args)]
pub struct Remote {
    /// Base URL of the QueueLab server.
    #[arg(
        long,
        global = true,
        env = "QUEUELAB_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// API token, sent as a bearer token.
    #[arg(long, global = true, env = "QUEUELAB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// The `jobs` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state.
        #[arg(long)]
        state: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start a job from a spec file or a template; prints its id.
    Start {
        /// A spec file (.toml or .json) or a template name.
        spec: String,
        /// JSON merged into a template's spec (objects by key, arrays by index).
        #[arg(long = "override")]
        overrides: Option<String>,
    },
    /// Show one job (JSON).
    Get {
        /// Job id.
        id: String,
    },
    /// Change a running stage's knobs (or the sink's batching).
    Tune {
        /// Job id.
        id: String,
        /// Stage name (`sink` for batching).
        #[arg(long)]
        stage: String,
        /// Workers (threads or tasks).
        #[arg(long)]
        workers: Option<u32>,
        /// Async concurrency limit.
        #[arg(long)]
        concurrency: Option<u32>,
        /// Rate limit, items per second.
        #[arg(long)]
        rate_limit: Option<f64>,
        /// Sink batch size.
        #[arg(long)]
        batch_size: Option<u32>,
        /// Sink batch linger, milliseconds.
        #[arg(long)]
        linger_ms: Option<u64>,
        /// `true`: let the engine choose workers or concurrency again;
        /// `false`: pin them where they are.
        #[arg(long)]
        auto: Option<bool>,
    },
    /// Stop a job: drain by default, or abort.
    Stop {
        /// Job id.
        id: String,
        /// Abort instead of draining (leftovers are saved).
        #[arg(long)]
        abort: bool,
        /// Deadline of the drain, milliseconds.
        #[arg(long)]
        deadline_ms: Option<u64>,
    },
    /// Replay a finished job's leftovers as a new job; prints its id.
    Replay {
        /// Job id of the finished job.
        id: String,
        /// Name of the new job (`<name>-replay` by default).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the worker processes (`queuelab worker`) of the server, with
    /// what each runs.
    Workers {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Wait for a job to finish; exit non-zero if it failed or a
    /// `--fail-on` condition holds (`p99>50ms`, `throughput<10000`,
    /// `dead_lettered>0`).
    Wait {
        /// Job id.
        id: String,
        /// A condition that fails the wait; may be repeated.
        #[arg(long = "fail-on", value_parser = Condition::parse)]
        fail_on: Vec<Condition>,
        /// Give up after this many seconds.
        #[arg(long)]
        timeout_s: Option<u64>,
        /// Print the final report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A comparison of a report figure with a number.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    metric: String,
    op: Op,
    value: f64,
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// Report figures a condition may name.
const METRICS: &[&str] = &[
    "p50",
    "p95",
    "p99",
    "max",
    "throughput",
    "produced",
    "sunk",
    "filtered",
    "dead_lettered",
    "dropped_by_policy",
    "leftovers",
    "elapsed_s",
];

impl Condition {
    /// Parses `METRIC OP NUMBER[UNIT]`; latencies take `us`, `ms` or `s`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let (at, op, len) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
        ]
        .iter()
        .find_map(|(sym, op)| t.find(sym).map(|i| (i, *op, sym.len())))
        .ok_or_else(|| format!("`{text}`: expected METRIC>VALUE (or <, >=, <=, ==, !=)"))?;
        let metric = t[..at].to_ascii_lowercase();
        if !METRICS.contains(&metric.as_str()) {
            return Err(format!(
                "`{text}`: unknown metric `{metric}`; one of {}",
                METRICS.join(", ")
            ));
        }
        let raw = &t[at + len..];
        let latency = matches!(metric.as_str(), "p50" | "p95" | "p99" | "max");
        let (number, scale) = if !latency {
            (raw, 1.0)
        } else if let Some(n) = raw.strip_suffix("us") {
            (n, 1.0)
        } else if let Some(n) = raw.strip_suffix("ms") {
            (n, 1e3)
        } else if let Some(n) = raw.strip_suffix('s') {
            (n, 1e6)
        } else {
            return Err(format!("`{text}`: give the latency a unit: us, ms or s"));
        };
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{text}`: `{number}` is not a number"))?;
        Ok(Self {
            metric,
            op,
            value: value * scale,
            text: text.to_owned(),
        })
    }

    fn figure(&self, r: &JobReport) -> f64 {
        let a = &r.accounting;
        match self.metric.as_str() {
            "p50" => r.end_to_end.p50_us as f64,
            "p95" => r.end_to_end.p95_us as f64,
            "p99" => r.end_to_end.p99_us as f64,
            "max" => r.end_to_end.max_us as f64,
            "throughput" => r.throughput,
            "produced" => a.produced as f64,
            "sunk" => a.sunk as f64,
            "filtered" => a.filtered as f64,
            "dead_lettered" => a.dead_lettered as f64,
            "dropped_by_policy" => a.dropped_by_policy as f64,
            "leftovers" => a.leftovers as f64,
            "elapsed_s" => r.elapsed_s,
            _ => f64::NAN,
        }
    }

    /// Whether the condition holds for `report`.
    pub fn holds(&self, report: &JobReport) -> bool {
        let x = self.figure(report);
        match self.op {
            Op::Gt => x > self.value,
            Op::Ge => x >= self.value,
            Op::Lt => x < self.value,
            Op::Le => x <= self.value,
            Op::Eq => x == self.value,
            Op::Ne => x != self.value,
        }
    }
}

struct Client {
    http: reqwest::Client,
    remote: Remote,
}

impl Client {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.remote.url.trim_end_matches('/'));
        let req = self.http.request(method, url);
        match &self.remote.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends and decodes, turning API errors into readable messages.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.remote.url))?;
        let status = resp.status();
        if status.is_success() {
            return resp
                .json()
                .await
                .context("unexpected answer from the server");
        }
        let text = resp.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(e) if !e.errors.is_empty() => {
                let lines: Vec<String> = e.errors.iter().map(|f| format!("  {f}")).collect();
                bail!("{status}: {}\n{}", e.code, lines.join("\n"))
            }
            Ok(e) => match e.field {
                Some(f) if !f.is_empty() => bail!("{status}: {f}: {}", e.message),
                _ => bail!("{status}: {}", e.message),
            },
            Err(_) => bail!("{status}: {text}"),
        }
    }
}

/// Runs a `jobs` verb; returns the exit code.
pub fn run(remote: Remote, command: JobsCommand) -> anyhow::Result<i32> {
    let client = Client {
        http: reqwest::Client::new(),
        remote,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(dispatch(&client, command))
}

#[allow(clippy::print_stdout)]
async fn dispatch(c: &Client, command: JobsCommand) -> anyhow::Result<i32> {
    use reqwest::Method;
    match command {
        JobsCommand::List { state, json } => {
            let mut path = "/api/v1/jobs?limit=500".to_owned();
            if let Some(s) = state {
                path.push_str(&format!("&state={s}"));
            }
            let page: JobPage = c.call(c.request(Method::GET, &path)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page)?);
            } else {
                println!(
                    "{:<26} {:<24} {:<11} {:>10} {:>10} {:>12}",
                    "id", "name", "state", "produced", "sunk", "items/s"
                );
                for j in page.jobs {
                    println!(
                        "{:<26} {:<24} {:<11} {:>10} {:>10} {:>12.1}",
                        j.id,
                        j.name,
                        j.state,
                        j.accounting.produced,
                        j.accounting.sunk,
                        j.throughput
                    );
                }
            }
            Ok(0)
        }
        JobsCommand::Workers { json } => {
            let workers: Vec<shared::workers::WorkerInfo> =
                c.call(c.request(Method::GET, "/api/v1/workers")).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&workers)?);
            } else {
                println!(
                    "{:<24} {:<20} {:<7} {:>8} {:>10} {:>11} {:>8}",
                    "name", "host", "state", "beat ms", "processed", "redelivered", "stages"
                );
                for w in workers {
                    println!(
                        "{:<24} {:<20} {:<7} {:>8} {:>10} {:>11} {:>8}",
                        w.name,
                        w.host,
                        format!("{:?}", w.state).to_lowercase(),
                        w.last_heartbeat_ms_ago,
                        w.counts.processed,
                        w.counts.redelivered,
                        w.assignments.len()
                    );
                }
            }
            Ok(0)
        }
        JobsCommand::Start { spec, overrides } => {
            let path = std::path::Path::new(&spec);
            let req = c.request(Method::POST, "/api/v1/jobs");
            let req = if path.is_file() {
                anyhow::ensure!(overrides.is_none(), "--override applies to templates only");
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("cannot read {spec}"))?;
                let toml = !spec.to_ascii_lowercase().ends_with(".json");
                req.header(
                    "content-type",
                    if toml {
                        "application/toml"
                    } else {
                        "application/json"
                    },
                )
                .body(text)
            } else {
                let overrides: serde_json::Value = match overrides {
                    Some(o) => serde_json::from_str(&o).context("--override must be JSON")?,
                    None => serde_json::json!({}),
                };
                req.json(&serde_json::json!({"template": spec, "overrides": overrides}))
            };
            let d: JobDetail = c.call(req).await?;
            println!("{}", d.summary.id);
            Ok(0)
        }
        JobsCommand::Get { id } => {
            let d: JobDetail = c
                .call(c.request(Method::GET, &format!("/api/v1/jobs/{id}")))
                .await?;
            println!("{}", serde_json::to_string_pretty(&d)?);
            Ok(0)
        }
        JobsCommand::Tune {
            id,
            stage,
            workers,
            concurrency,
            rate_limit,
            batch_size,
            linger_ms,
            auto,
        } => {
            let body = TuneRequest {
                stage,
                workers,
                concurrency,
                rate_limit,
                auto,
                batch_size,
                linger_ms,
            };
            let _: JobDetail = c
                .call(
                    c.request(Method::PATCH, &format!("/api/v1/jobs/{id}"))
                        .json(&body),
                )
                .await?;
            Ok(0)
        }
        JobsCommand::Stop {
            id,
            abort,
            deadline_ms,
        } => {
            let body = StopRequest {
                mode: if abort {
                    StopMode::Abort
                } else {
                    StopMode::Drain
                },
                deadline_ms,
            };
            let _: JobDetail = c
                .call(
                    c.request(Method::POST, &format!("/api/v1/jobs/{id}/stop"))
                        .json(&body),
                )
                .await?;
            Ok(0)
        }
        JobsCommand::Replay { id, name } => {
            let d: JobDetail = c
                .call(
                    c.request(Method::POST, &format!("/api/v1/jobs/{id}/replay"))
                        .json(&shared::api::ReplayRequest { name }),
                )
                .await?;
            #[allow(clippy::print_stdout)]
            {
                println!("{}", d.summary.id);
            }
            Ok(0)
        }
        JobsCommand::Wait {
            id,
            fail_on,
            timeout_s,
            json,
        } => wait(c, &id, &fail_on, timeout_s.map(Duration::from_secs), json).await,
    }
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
async fn wait(
    c: &Client,
    id: &str,
    fail_on: &[Condition],
    timeout: Option<Duration>,
    json: bool,
) -> anyhow::Result<i32> {
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    let report = loop {
        let d: JobDetail = c
            .call(c.request(reqwest::Method::GET, &format!("/api/v1/jobs/{id}")))
            .await?;
        if let Some(report) = d.report {
            break report;
        }
        bar.set_message(format!(
            "{id}: {} · {} sunk · {:.0} items/s",
            d.summary.state, d.summary.accounting.sunk, d.summary.throughput
        ));
        bar.tick();
        if timeout.is_some_and(|t| started.elapsed() > t) {
            bar.finish_and_clear();
            bail!(
                "{id} did not finish within {} s",
                timeout.unwrap_or_default().as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", super::run::render_report(&report));
    }
    let mut code = 0;
    if report.state == JobState::Failed {
        eprintln!(
            "job {id} failed: {}",
            report.error.as_deref().unwrap_or("unknown error")
        );
        code = super::run::EXIT_FAILED;
    }
    if !report.balanced {
        eprintln!("job {id}: the accounting does not add up");
        code = super::run::EXIT_MISMATCH;
    }
    for cond in fail_on.iter().filter(|c| c.holds(&report)) {
        eprintln!(
            "fail-on `{}` holds (value {})",
            cond.text,
            cond.figure(&report)
        );
        if code == 0 {
            code = EXIT_CONDITION;
        }
    }
    Ok(code)
}

/// Exit code when a `--fail-on` condition holds.
pub const EXIT_CONDITION: i32 = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use shared::metrics::{Accounting, Latency};

    fn report() -> JobReport {
        JobReport {
            job: "j".into(),
            name: "n".into(),
            state: JobState::Completed,
            error: None,
            elapsed_s: 2.0,
            accounting: Accounting {
                produced: 10,
                sunk: 9,
                dead_lettered: 1,
                ..Default::default()
            },
            balanced: true,
            throughput: 4.5,
            source: Default::default(),
            end_to_end: Latency {
                count: 9,
                p50_us: 1_000,
                p95_us: 30_000,
                p99_us: 60_000,
                max_us: 90_000,
                mean_us: 5.0,
            },
            nodes: vec![],
            skipped_lines: 0,
            drop_reasons: Default::default(),
            redeliveries: Default::default(),
            kept_on_broker: Default::default(),
            dead_letters_file: None,
            dead_letters_table: None,
            leftovers_file: None,
            events: vec![],
        }
    }

    #[test]
    fn conditions_parse_units_and_compare() {
        let r = report();
        for (text, holds) in [
            ("p99>50ms", true),
            ("p99 > 0.07s", false),
            ("p50<=1000us", true),
            ("throughput<10000", true),
            ("dead_lettered>0", true),
            ("leftovers!=0", false),
            ("sunk==9", true),
            ("elapsed_s>=2", true),
        ] {
            let c = Condition::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(c.holds(&r), holds, "{text}");
        }
    }

    #[test]
    fn bad_conditions_explain_themselves() {
        for (text, hint) in [
            ("p99=5ms", "expected"),
            ("latency>5ms", "unknown metric"),
            ("p99>5", "unit"),
            ("sunk>lots", "not a number"),
        ] {
            let e = Condition::parse(text).unwrap_err();
            assert!(e.contains(hint), "{text}: {e}");
        }
    }
}
