//! `queuelab sweep` and `queuelab soak`: the tuning lab on one's own
//! machine, with a progress bar per run, a table with the knee marked, and
//! JSON, CSV or SVG output; exit code 4 when `--fail-on` breaks.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lab::launch::LocalLauncher;
use shared::lab::{
    KnobValues, PointRun, RangeStep, Slo, SoakReport, SoakSpec, SweepMode, SweepReport, SweepSpec,
    parse_duration_ms,
};
use shared::spec::PipelineSpec;

/// Exit code when the SLO given with `--fail-on` breaks at the chosen value.
pub const EXIT_SLO: i32 = 4;

fn duration(s: &str) -> Result<u64, String> {
    parse_duration_ms(s)
}

/// Options of `queuelab sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// A spec file (.toml or .json), a template name or `lesson:ID`.
    pub spec: String,
    /// The knob: `stages[io].workers`, `stages[0].queue.capacity`,
    /// `stages[io].concurrency`, `stages[io].rate_limit`, `sink.batch.size`,
    /// `source.rate` (`--knobs` lists this spec's).
    #[arg(long, required_unless_present = "knobs")]
    pub knob: Option<String>,
    /// List the knobs this spec offers, and exit.
    #[arg(long)]
    pub knobs: bool,
    /// Values, comma-separated (for `--capacity`, the first is the start).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["from", "to"])]
    pub values: Vec<f64>,
    /// First value of a range.
    #[arg(long, requires = "to")]
    pub from: Option<f64>,
    /// Last value of a range.
    #[arg(long, requires = "from")]
    pub to: Option<f64>,
    /// Linear step of a range (default: ×2 steps).
    #[arg(long)]
    pub step: Option<f64>,
    /// Run time before measuring each run (500ms, 5s, 1m).
    #[arg(long, default_value = "5s", value_parser = duration)]
    pub warmup: u64,
    /// Measured time of each run.
    #[arg(long, default_value = "15s", value_parser = duration)]
    pub measure: u64,
    /// Runs per value (the median is reported, the spread shown).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Search for the best value keeping this SLO (`p99<50ms,errors<0.1%`)
    /// instead of running each value.
    #[arg(long)]
    pub capacity: Option<String>,
    /// Relative precision of the capacity search.
    #[arg(long, default_value_t = 0.05)]
    pub precision: f64,
    /// Exit with code 4 when this SLO breaks at the chosen value (the
    /// capacity found, or the knee).
    #[arg(long)]
    pub fail_on: Option<String>,
    /// Kneedle's sensitivity.
    #[arg(long, default_value_t = 1.0)]
    pub sensitivity: f64,
    /// P99 or errors this many times the first value's mark a climb.
    #[arg(long, default_value_t = 2.0)]
    pub climb: f64,
    /// Print the report as JSON on stdout (no table).
    #[arg(long)]
    pub json: bool,
    /// Print one CSV row per run on stdout (no table).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Write the chart (throughput and P99 against the knob) to this file.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Folder for the runs' files (leftovers of each aborted run).
    #[arg(long, env = "QUEUELAB_DATA_DIR", default_value = "queuelab-data")]
    pub data_dir: PathBuf,
    /// Hide the progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Options of `queuelab soak`.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// A spec file (.toml or .json), a template name or `lesson:ID`.
    pub spec: String,
    /// How long to run, warm-up included (30m, 1h).
    #[arg(long, default_value = "30m", value_parser = duration)]
    pub duration: u64,
    /// Run time before the first interval counts.
    #[arg(long, default_value = "1m", value_parser = duration)]
    pub warmup: u64,
    /// One median of each figure per interval.
    #[arg(long, default_value = "1m", value_parser = duration)]
    pub interval: u64,
    /// Resident memory growth allowed over the soak, MiB.
    #[arg(long, default_value_t = 64.0)]
    pub rss_budget_mib: f64,
    /// Total queue depth growth allowed over the soak, items.
    #[arg(long, default_value_t = 1000.0)]
    pub depth_budget: f64,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Exit with code 4 when a leak is flagged.
    #[arg(long)]
    pub fail_on_leak: bool,
    /// Folder for the run's files.
    #[arg(long, env = "QUEUELAB_DATA_DIR", default_value = "queuelab-data")]
    pub data_dir: PathBuf,
    /// Hide the progress display.
    #[arg(long)]
    pub quiet: bool,
}

/// Ctrl-C sets the returned flag (the current run is cut short and the
/// report covers what was measured).
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = std::thread::Builder::new()
        .name("ql-ctrl-c".into())
        .spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    let _ = tokio::signal::ctrl_c().await;
                });
                flag.store(true, Ordering::Relaxed);
            }
        });
    stop
}

/// The launcher `queuelab run` would use: a template's files in the data
/// directory, the built-in target served when the spec calls it.
fn launcher(
    spec: &PipelineSpec,
    template: bool,
    args_dir: &std::path::Path,
    prefix: &str,
) -> anyhow::Result<LocalLauncher> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let target = super::run::local_target(spec)?;
    let base = args_dir.to_path_buf();
    std::fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
    Ok(
        LocalLauncher::new(&base, format!("{prefix}-{stamp}")).configure(move |opts| {
            if template {
                opts.files = engine::confine::Files::Anywhere { base: base.clone() };
            }
            opts.builtin_target = target.clone();
        }),
    )
}

/// Runs `queuelab sweep`; returns the exit code.
pub fn sweep(args: SweepArgs) -> anyhow::Result<i32> {
    let (pipeline, template) = super::load(&args.spec)?;
    if args.knobs {
        let mut out = String::new();
        for t in lab::knob::tunables(&pipeline) {
            let cur = t
                .current
                .map(lab::verdict::num)
                .unwrap_or_else(|| "—".into());
            out.push_str(&format!("{:<40} {cur}\n", t.path));
        }
        #[allow(clippy::print_stdout)]
        {
            print!("{out}");
        }
        return Ok(0);
    }
    let knob = args.knob.clone().unwrap_or_default();
    let values = match (args.from, args.to) {
        (Some(from), Some(to)) => KnobValues::Range {
            from,
            to,
            step: args.step.map_or(RangeStep::Double, RangeStep::Linear),
        },
        _ if !args.values.is_empty() => KnobValues::List(args.values.clone()),
        _ if args.capacity.is_some() => {
            KnobValues::List(vec![lab::knob::current(&pipeline, &knob).unwrap_or(1.0)])
        }
        _ => bail!("give the knob's values: --values 1,2,4,8 or --from 1 --to 16"),
    };
    let parse_slo = |s: &str| Slo::parse(s).map_err(anyhow::Error::msg);
    let capacity_slo = args.capacity.as_deref().map(parse_slo).transpose()?;
    let fail_on = args.fail_on.as_deref().map(parse_slo).transpose()?;
    let spec = SweepSpec {
        pipeline: pipeline.clone(),
        knob,
        values,
        warmup_ms: args.warmup,
        measure_ms: args.measure,
        repeat: args.repeat,
        sensitivity: args.sensitivity,
        climb_factor: args.climb,
        slo: capacity_slo.clone().or_else(|| fail_on.clone()),
        mode: if capacity_slo.is_some() {
            SweepMode::Capacity {
                precision: args.precision,
                max_probes: 16,
            }
        } else {
            SweepMode::Sweep
        },
    };
    spec.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut launcher = launcher(&pipeline, template, &args.data_dir, "sweep")?;
    let stop = stop_on_ctrl_c();
    let show = !args.quiet && !args.json && !args.csv;
    let mut bars = Bars::new(
        show,
        Duration::from_millis(spec.warmup_ms + spec.measure_ms),
        &spec.knob,
    );
    let report = lab::sweep::run(&spec, &mut launcher, &stop, &mut bars)?;
    drop(bars);
    if let Some(path) = &args.svg {
        std::fs::write(path, lab::svg::render(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    #[allow(clippy::print_stdout)]
    {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else if args.csv {
            print!("{}", csv(&report));
        } else {
            print!("{}", table(&report));
        }
    }
    let broken = match (&fail_on, report.chosen) {
        (Some(slo), Some(v)) => report
            .points
            .iter()
            .find(|p| p.value == v)
            .is_none_or(|p| !slo.broken(&p.median).is_empty()),
        (Some(_), None) => true,
        _ => false,
    };
    Ok(if broken { EXIT_SLO } else { 0 })
}

/// A progress bar per run.
struct Bars {
    multi: Option<MultiProgress>,
    current: Option<ProgressBar>,
    total: Duration,
    knob: String,
}

impl Bars {
    fn new(show: bool, total: Duration, knob: &str) -> Self {
        Self {
            multi: show
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4))),
            current: None,
            total,
            knob: knob.rsplit('.').next().unwrap_or(knob).to_string(),
        }
    }
}

impl lab::sweep::SweepWatch for Bars {
    fn run_started(&mut self, index: usize, total: Option<usize>, value: f64, job: &str) {
        let Some(multi) = &self.multi else { return };
        let bar = multi.add(ProgressBar::new(self.total.as_millis() as u64));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30.cyan/blue}] {elapsed:>4} {wide_msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        let of = total.map_or_else(String::new, |t| format!("/{t}"));
        bar.set_prefix(format!(
            "{}{of} {}={}",
            index + 1,
            self.knob,
            lab::verdict::num(value)
        ));
        bar.set_message(job.to_string());
        self.current = Some(bar);
    }

    fn tick(&mut self, elapsed: Duration) {
        if let Some(b) = &self.current {
            b.set_position(elapsed.as_millis() as u64);
        }
    }

    fn run_finished(&mut self, run: &PointRun) {
        if let Some(b) = self.current.take() {
            b.set_position(self.total.as_millis() as u64);
            b.finish_with_message(format!(
                "{:.0}/s  p99 {}",
                run.figures.throughput,
                ms(run.figures.latency.p99_us)
            ));
        }
    }
}

fn ms(us: u64) -> String {
    if us == 0 {
        "—".into()
    } else {
        format!("{:.1} ms", us as f64 / 1000.0)
    }
}

/// The table printed at the end, the knee marked.
pub fn table(r: &SweepReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "\n{} — {}", r.pipeline, r.knob);
    let _ = writeln!(
        out,
        "{:>10} {:>12} {:>17} {:>9} {:>9} {:>9} {:>7} {:>7}  busiest / backpressured",
        "value", "items/s", "(min–max)", "p50", "p95", "p99", "errors", "drops",
    );
    for p in &r.points {
        let m = &p.median;
        let mark = match (&r.knee, &r.capacity, r.chosen) {
            (_, Some(_), Some(c)) if c == p.value => "  ◀ capacity",
            (Some(k), _, _) if k.value == p.value => "  ◀ knee",
            _ => "",
        };
        let bp = if p.backpressured.is_empty() {
            String::new()
        } else {
            format!(" / {}", p.backpressured.join(","))
        };
        let _ = writeln!(
            out,
            "{:>10} {:>12.1} {:>17} {:>9} {:>9} {:>9} {:>6.2}% {:>6.2}%  {}{bp}{mark}",
            lab::verdict::num(p.value),
            m.throughput,
            format!("{:.0}–{:.0}", p.throughput_range.0, p.throughput_range.1),
            ms(m.latency.p50_us),
            ms(m.latency.p95_us),
            ms(m.latency.p99_us),
            m.error_rate * 100.0,
            m.drop_rate * 100.0,
            p.busiest.as_deref().unwrap_or("—"),
        );
    }
    out.push('\n');
    for v in &r.verdict {
        let _ = writeln!(out, "{v}");
    }
    out
}

/// One CSV row per run.
pub fn csv(r: &SweepReport) -> String {
    let mut out = String::from(
        "knob,value,repeat,job,window_ms,throughput,p50_us,p95_us,p99_us,error_rate,timeout_rate,drop_rate,retry_rate,rss_bytes,threads,open_fds,cpu_percent,busiest,backpressured,balanced\n",
    );
    for u in &r.runs {
        let f = &u.figures;
        out.push_str(&format!(
            "{},{},{},{},{},{:.3},{},{},{},{:.6},{:.6},{:.6},{:.6},{},{},{},{:.1},{},{},{}\n",
            r.knob,
            u.value,
            u.repeat,
            u.job,
            u.window_ms,
            f.throughput,
            f.latency.p50_us,
            f.latency.p95_us,
            f.latency.p99_us,
            f.error_rate,
            f.timeout_rate,
            f.drop_rate,
            f.retry_rate,
            u.rss_bytes,
            u.threads,
            u.open_fds,
            u.cpu_percent,
            u.busiest.as_deref().unwrap_or(""),
            u.backpressured.join(";"),
            u.balanced
        ));
    }
    out
}

/// Runs `queuelab soak`; returns the exit code.
pub fn soak(args: SoakArgs) -> anyhow::Result<i32> {
    let (pipeline, template) = super::load(&args.spec)?;
    let spec = SoakSpec {
        pipeline: pipeline.clone(),
        duration_ms: args.duration,
        warmup_ms: args.warmup,
        interval_ms: args.interval,
        budgets: shared::lab::SoakBudgets {
            rss_bytes: args.rss_budget_mib * 1024.0 * 1024.0,
            queue_depth: args.depth_budget,
            ..Default::default()
        },
        alpha: 0.05,
    };
    spec.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut launcher = launcher(&pipeline, template, &args.data_dir, "soak")?;
    let stop = stop_on_ctrl_c();
    let mut watch = SoakBar::new(!args.quiet && !args.json, args.duration);
    let report = lab::soak::run(&spec, &mut launcher, &stop, &mut watch)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(watch);
    #[allow(clippy::print_stdout)]
    {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", soak_table(&report));
        }
    }
    Ok(if args.fail_on_leak && report.leaks() {
        EXIT_SLO
    } else {
        0
    })
}

struct SoakBar(Option<ProgressBar>);

impl SoakBar {
    fn new(show: bool, total_ms: u64) -> Self {
        Self(show.then(|| {
            let b = ProgressBar::with_draw_target(
                Some(total_ms),
                ProgressDrawTarget::stderr_with_hz(2),
            );
            b.set_style(
                ProgressStyle::with_template("soak [{bar:30.cyan/blue}] {elapsed:>4} {wide_msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            b
        }))
    }
}

impl lab::soak::SoakWatch for SoakBar {
    fn update(&mut self, r: &SoakReport) {
        if let Some(b) = &self.0 {
            if let Some(i) = r.intervals.last() {
                b.set_position(i.elapsed_ms);
            }
            b.set_message(r.verdict.first().cloned().unwrap_or_default());
            if r.finished {
                b.finish();
            }
        }
    }
}

fn soak_table(r: &SoakReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "\n{} — soak ({})", r.pipeline, r.job);
    let _ = writeln!(
        out,
        "{:>9} {:>10} {:>6} {:>8} {:>10} {:>10} {:>9}",
        "at", "RSS MiB", "FDs", "threads", "depth", "items/s", "p99"
    );
    for i in &r.intervals {
        let _ = writeln!(
            out,
            "{:>8.0}s {:>10.1} {:>6.0} {:>8.0} {:>10.0} {:>10.1} {:>9}",
            i.elapsed_ms as f64 / 1000.0,
            i.rss_bytes / 1048576.0,
            i.open_fds,
            i.threads,
            i.queue_depth,
            i.throughput,
            ms(i.p99_us)
        );
    }
    out.push('\n');
    for t in &r.trends {
        let _ = writeln!(
            out,
            "{:<12} slope {:>12}/interval  p {:>6}  projected {:>12}  budget {:>10}  {}",
            t.figure,
            t.slope_per_interval.map_or("—".into(), lab::verdict::num),
            t.p_value.map_or("—".into(), |p| format!("{p:.3}")),
            t.projected.map_or("—".into(), lab::verdict::num),
            lab::verdict::num(t.budget),
            if t.leak { "LEAK" } else { "ok" }
        );
    }
    out.push('\n');
    for v in &r.verdict {
        let _ = writeln!(out, "{v}");
    }
    out
}
