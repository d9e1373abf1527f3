//! `queuelab run`: a pipeline headless, with live progress, Ctrl-C to
//! drain (twice to abort) and a report at the end.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use shared::metrics::{JobReport, JobSnapshot, JobState, Latency, NodeSnapshot};
use shared::spec::PipelineSpec;

/// Exit code for a failed job.
pub const EXIT_FAILED: i32 = 1;
/// Exit code when the buckets do not add up.
pub const EXIT_MISMATCH: i32 = 3;

/// Options of `queuelab run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// A spec file (.toml or .json) or a template name (`queuelab templates`).
    pub spec: String,
    /// Print the final report as JSON on stdout (no progress display).
    #[arg(long)]
    pub json: bool,
    /// Folder for the job's files (leftovers after an abort).
    #[arg(long, env = "QUEUELAB_DATA_DIR", default_value = "queuelab-data")]
    pub data_dir: PathBuf,
    /// Hide the live progress display.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the job to its end and returns the process exit code.
pub fn run(args: RunArgs) -> anyhow::Result<i32> {
    let (spec, template) = super::load(&args.spec)?;
    let id = format!(
        "run-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    // On one's own machine nothing is confined. A template's relative
    // paths (its sample, its database) go to the data directory; those of
    // one's own spec file resolve where the command runs, as usual.
    let mut opts = engine::JobOptions::new(id, &args.data_dir);
    if template {
        opts.files = engine::confine::Files::Anywhere {
            base: args.data_dir.clone(),
        };
    }
    opts.builtin_target = local_target(&spec)?;
    let job = engine::start(spec.clone(), opts)?;
    // Headless, there are no worker processes: this process runs every
    // worker of a broker stage itself.
    for stage in job.broker_stages() {
        stage.set_local_workers(stage.desired_workers(), stage.limits())?;
    }
    let show_progress = !args.json && !args.quiet;
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(supervise(job, &spec, show_progress));
    if args.json {
        #[allow(clippy::print_stdout)]
        {
            println!("{}", serde_json::to_string_pretty(&*report)?);
        }
    } else {
        #[allow(clippy::print_stdout)]
        {
            print!("{}", render_report(&report));
        }
    }
    Ok(if report.state == JobState::Failed {
        EXIT_FAILED
    } else if !report.balanced {
        EXIT_MISMATCH
    } else {
        0
    })
}

/// Watches snapshots, draws progress, and turns Ctrl-C into drain, then abort.
async fn supervise(
    job: engine::JobHandle,
    spec: &PipelineSpec,
    progress: bool,
) -> std::sync::Arc<JobReport> {
    if let (Some(handle), shared::spec::SourceSpec::HttpIngest { bind }) =
        (job.ingest(), &spec.source)
    {
        serve_ingest(&job, handle, bind).await;
    }
    let mut display = progress.then(|| Display::new(spec));
    let mut snapshots = job.subscribe();
    let mut interrupts = 0;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                interrupts += 1;
                if interrupts == 1 {
                    if let Some(d) = &display {
                        d.note("draining: finishing what is queued (Ctrl-C again to abort)");
                    }
                    let _ = job.drain();
                } else {
                    if let Some(d) = &display {
                        d.note("aborting: saving what is left to the leftovers file");
                    }
                    let _ = job.abort();
                }
            }
            changed = snapshots.changed() => {
                if changed.is_err() {
                    break;
                }
                let snap = snapshots.borrow_and_update().clone();
                if let Some(d) = &mut display {
                    d.update(&snap);
                }
                if snap.state.is_some_and(JobState::is_finished) {
                    break;
                }
            }
        }
    }
    if let Some(d) = display {
        d.finish();
    }
    job.finished().await
}

/// Serves the built-in test target on loopback for this run when the spec
/// calls it (`/target…` URLs, as the retries lesson does), on a thread of
/// its own that lives as long as the command; its base URL.
pub(crate) fn local_target(spec: &PipelineSpec) -> anyhow::Result<Option<String>> {
    if spec.clone().builtin_target_urls().is_empty() {
        return Ok(None);
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("ql-target".into())
        .spawn(move || {
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => {
                        let router = server::target::router(Default::default());
                        if let Err(e) = axum::serve(listener, router).await {
                            tracing::error!(error = %e, "the built-in test target stopped");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "cannot serve the built-in test target"),
                }
            })
        })?;
    Ok(Some(server::target::base_url(addr)))
}

/// Serves the ingest endpoint of an `http_ingest` source for this run;
/// aborts the job if its address is taken.
async fn serve_ingest(job: &engine::JobHandle, handle: engine::source::IngestHandle, bind: &str) {
    match tokio::net::TcpListener::bind(bind).await {
        Ok(listener) => {
            if let Ok(addr) = listener.local_addr() {
                tracing::warn!(url = %format!("http://{addr}/ingest"), "POST lines to ingest them");
            }
            tokio::spawn(async move {
                let _ = axum::serve(listener, server::ingest::router(handle)).await;
            });
        }
        Err(e) => {
            tracing::error!(%bind, error = %e, "cannot listen for ingest; aborting");
            let _ = job.abort();
        }
    }
}

/// The live progress: an overall bar and a line per node. Messages are
/// `wide_msg`, cut to the terminal's width: a line that wrapped would throw
/// off the redraw's line count and leave stale lines behind (seen in tmux).
struct Display {
    multi: MultiProgress,
    total: ProgressBar,
    nodes: Vec<ProgressBar>,
}

impl Display {
    fn new(spec: &PipelineSpec) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        let count = match spec.source {
            shared::spec::SourceSpec::Synthetic { count, .. } => count,
            _ => None,
        };
        let total = match count {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} sunk  {wide_msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{prefix:.bold} {spinner} {pos} sunk  {wide_msg}")
                    .expect("valid template"),
            ),
        };
        // Into the group first: a bar drawn on its own (`set_prefix` draws)
        // leaves a line the group's redraws never clear.
        let total = multi.add(total);
        total.set_prefix(spec.name.clone());
        Self {
            multi,
            total,
            nodes: Vec::new(),
        }
    }

    fn note(&self, text: &str) {
        let _ = self.multi.println(text);
    }

    fn update(&mut self, snap: &JobSnapshot) {
        while self.nodes.len() < snap.nodes.len() {
            let bar = ProgressBar::new_spinner()
                .with_style(ProgressStyle::with_template("  {wide_msg}").expect("valid template"));
            self.nodes.push(self.multi.add(bar));
        }
        self.total.set_position(snap.accounting.sunk);
        self.total.set_message(format!(
            "{} · {:.0}/s · p99 {} · {} · rss {} MiB · {}",
            snap.state.map_or("?", JobState::as_str),
            snap.throughput,
            us(snap.end_to_end.p99_us),
            secs(snap.elapsed_ms as f64 / 1000.0),
            snap.process.rss_bytes / (1 << 20),
            event_loop(snap),
        ));
        for (bar, node) in self.nodes.iter().zip(&snap.nodes) {
            bar.set_message(node_line(node));
        }
    }

    fn finish(self) {
        for bar in &self.nodes {
            bar.finish_and_clear();
        }
        self.total.finish_and_clear();
    }
}

/// The event loop's figure for the status line: its lag, and who blocks
/// it when someone does.
fn event_loop(snap: &JobSnapshot) -> String {
    match &snap.event_loop {
        None => "lag —".into(),
        Some(l) if l.blocking_stages.is_empty() => format!("lag {:.1} ms", l.lag_ms),
        Some(l) => format!(
            "lag {:.1} ms, blocked by {}",
            l.lag_ms,
            l.blocking_stages.join(", ")
        ),
    }
}

fn node_line(n: &NodeSnapshot) -> String {
    let cap = n.capacity.map_or("-".into(), |c| c.to_string());
    format!(
        "{:<22} {:>6} ×{:<4} queue {:>6}/{:<9} in {:>8.0}/s out {:>8.0}/s  busy {:>3.0}% blocked {:>3.0}%  svc p99 {}",
        n.name,
        n.runtime.map(|r| r.to_string()).unwrap_or_default(),
        workers(n),
        n.depth,
        cap,
        n.in_rate,
        n.out_rate,
        n.busy * 100.0,
        n.blocked * 100.0,
        us(n.service.p99_us),
    )
}

/// Live workers, and what was asked for when they differ: a finished
/// stage reads `0/4`, not a bare 0.
fn workers(n: &NodeSnapshot) -> String {
    match n.configured_workers {
        Some(c) if c != n.workers => format!("{}/{c}", n.workers),
        _ => n.workers.to_string(),
    }
}

fn us(v: u64) -> String {
    match v {
        0..1_000 => format!("{v} µs"),
        1_000..1_000_000 => format!("{:.1} ms", v as f64 / 1e3),
        _ => format!("{:.2} s", v as f64 / 1e6),
    }
}

fn secs(s: f64) -> String {
    format!("{s:.1} s")
}

fn lat(l: &Latency) -> String {
    if l.count == 0 {
        return "-".into();
    }
    format!("{} / {} / {}", us(l.p50_us), us(l.p99_us), us(l.max_us))
}

/// The human-readable final report.
pub fn render_report(r: &JobReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} ({}) — {} in {:.2} s, {:.1} items/s sunk",
        r.name, r.job, r.state, r.elapsed_s, r.throughput
    );
    if let Some(e) = &r.error {
        let _ = writeln!(out, "error: {e}");
    }
    let _ = writeln!(
        out,
        "\n{:<22} {:<7} {:>9} {:>9} {:>8} {:>8} {:>7} {:>9} {:>10}  {:<28} {:<28}",
        "node",
        "world",
        "in",
        "out",
        "filtered",
        "dropped",
        "errors",
        "leftovers",
        "out/s",
        "queue wait p50/p99/max",
        "service p50/p99/max"
    );
    for n in &r.nodes {
        let _ = writeln!(
            out,
            "{:<22} {:<7} {:>9} {:>9} {:>8} {:>8} {:>7} {:>7} {:>7} {:>9} {:>10.1}  {:<28} {:<28}",
            n.name,
            n.runtime.map(|r| r.to_string()).unwrap_or_default(),
            n.items_in,
            n.items_out,
            n.filtered,
            n.dropped,
            n.errors,
            n.dead_lettered,
            n.retries,
            n.leftovers,
            n.out_rate,
            lat(&n.queue_wait_total),
            lat(&n.service_total),
        );
    }
    let e = &r.end_to_end;
    let _ = writeln!(
        out,
        "\nend to end: p50 {}  p95 {}  p99 {}  max {}  ({} items)",
        us(e.p50_us),
        us(e.p95_us),
        us(e.p99_us),
        us(e.max_us),
        e.count
    );
    for (reason, n) in &r.drop_reasons {
        let _ = writeln!(out, "{n:>9} × {reason}");
    }
    if r.skipped_lines > 0 {
        let _ = writeln!(
            out,
            "{:>9} × blank lines skipped by the source (not items)",
            r.skipped_lines
        );
    }
    if let Some(file) = &r.dead_letters_file {
        let _ = writeln!(out, "dead letters: {file}");
    }
    if let Some(file) = &r.leftovers_file {
        let _ = writeln!(out, "leftovers: {file} (replay with a `file` source)");
    }
    let _ = writeln!(
        out,
        "\naccounting: {} {}",
        r.accounting,
        if r.balanced { "✓" } else { "✗ MISMATCH" }
    );
    out
}
