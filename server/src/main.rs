//! The `queuelab` command line: `serve` runs the control plane; `run`,
//! `templates` and `validate` drive the engine headless.

mod cmd;

/// mimalloc instead of the system allocator: pipeline items are allocated
/// on one thread and freed on another (parsed on a stage's workers, freed
/// after the sink's write), which glibc's malloc handles slowly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use server::config::{ServeConfig, display_url};
use server::{AppState, assets};
use tracing_subscriber::EnvFilter;

/// QueueLab: run, watch, tune and gracefully stop producer/consumer queue
/// pipelines.
#[derive(Debug, Parser)]
#[command(name = "queuelab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the dashboard, the REST API and the WebSocket.
    Serve(ServeConfig),
    /// Run a pipeline headless with live progress; Ctrl-C drains, twice aborts.
    Run(cmd::run::RunArgs),
    /// Turn one knob over values (or search the best value keeping an SLO)
    /// and find the knee: a job per run, a table, JSON, CSV or SVG.
    Sweep(cmd::lab::SweepArgs),
    /// Run a pipeline long and flag leaks (RSS, open files, threads, queue
    /// depth) and jitter.
    Soak(cmd::lab::SoakArgs),
    /// List the built-in templates (the article's scenarios).
    Templates {
        /// Print this template's spec (TOML) instead of the list.
        name: Option<String>,
    },
    /// The article's lessons: what each shows, what to do, what to watch
    /// (`queuelab run lesson:ID` runs one).
    Lessons {
        /// Show this lesson in full, with how to run its variants.
        id: Option<String>,
        /// In Chinese.
        #[arg(long)]
        zh: bool,
    },
    /// Check a spec file or template and print every problem.
    Validate {
        /// A spec file (.toml or .json) or a template name.
        spec: String,
    },
    /// Manage API tokens (stored hashed in the data directory's store).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Drive a running server: list, start, get, tune, stop and wait for jobs.
    Jobs {
        #[command(flatten)]
        remote: cmd::client::Remote,
        #[command(subcommand)]
        command: cmd::client::JobsCommand,
    },
    /// Serve the built-in HTTP test target: slow and flaky on demand.
    Target {
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Port; 0 picks a free one (printed at start).
        #[arg(long, short, default_value_t = 8081)]
        port: u16,
        /// Latency of each answer: fixed:MS, uniform:MIN:MAX,
        /// exponential:MEAN or log_normal:MEDIAN:SIGMA.
        #[arg(long, default_value = "fixed:0", value_parser = server::target::parse_latency)]
        latency: shared::spec::Distribution,
        /// Share of requests that fail, 0..=1.
        #[arg(long, default_value_t = 0.0)]
        fail_share: f64,
        /// Status code of a failed request.
        #[arg(long, default_value_t = 503)]
        fail_status: u16,
    },
    /// Run broker stages for a server: register, heartbeat, and run the
    /// stage workers it assigns here (NATS JetStream carries the items).
    Worker(cmd::worker::WorkerArgs),
    /// Probe a running server's /healthz; exits non-zero when unhealthy.
    Healthcheck {
        /// URL to probe; defaults to this host's server on $QUEUELAB_PORT.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it (it is shown only this once).
    Create {
        /// What it may do.
        #[arg(long, value_enum)]
        role: server::auth::Role,
        /// A name for it, shown in the audit log.
        #[arg(long, default_value = "token")]
        label: String,
        /// The server's data directory.
        #[arg(long, env = "QUEUELAB_DATA_DIR", default_value = "queuelab-data")]
        data_dir: std::path::PathBuf,
        /// The server's store, if not in the data directory.
        #[arg(long, env = "QUEUELAB_STORE", hide_env_values = true)]
        store: Option<String>,
    },
}

/// Parses the command line; a `serve --config FILE` (or `QUEUELAB_CONFIG`)
/// supplies defaults that environment variables and flags override.
fn parse_cli() -> anyhow::Result<Cli> {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let from_args = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| std::path::PathBuf::from(&w[1]))
        .or_else(|| {
            args.iter().find_map(|a| {
                a.to_str()?
                    .strip_prefix("--config=")
                    .map(std::path::PathBuf::from)
            })
        });
    let wants_serve = args.get(1).is_some_and(|a| a == "serve");
    let config = from_args.or_else(|| std::env::var_os("QUEUELAB_CONFIG").map(Into::into));
    let mut command = Cli::command();
    if let (true, Some(path)) = (wants_serve, config) {
        let settings = server::config::read_file(&path).map_err(anyhow::Error::msg)?;
        command = command.mut_subcommand("serve", |mut serve| {
            for (id, value) in settings {
                // Parsed once per process: leaking keeps clap's API simple.
                let value: &'static str = Box::leak(value.into_boxed_str());
                serve = serve.mut_arg(id, |arg| arg.default_value(value));
            }
            serve
        });
    }
    let matches = command.get_matches_from(args);
    Ok(Cli::from_arg_matches(&matches)?)
}

fn main() -> std::process::ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {err:#}");
            }
            return std::process::ExitCode::FAILURE;
        }
    };
    match dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The whole chain, without a backtrace: these are user errors.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {err:#}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(config) => serve(config),
        Command::Worker(args) => {
            init_tracing(args.log_json);
            cmd::worker::run(args)
        }
        Command::Run(args) => {
            init_tracing_quiet();
            let code = cmd::run::run(args)?;
            std::process::exit(code);
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    role,
                    label,
                    data_dir,
                    store,
                },
        } => {
            let store = match store {
                Some(place) => server::store::Store::open_at(&place)?,
                None => {
                    std::fs::create_dir_all(&data_dir)
                        .with_context(|| format!("cannot create {}", data_dir.display()))?;
                    server::store::Store::open(&data_dir.join("queuelab.db"))?
                }
            };
            let token = server::auth::generate();
            store.add_token(&label, role.as_str(), &server::auth::hash(&token))?;
            #[allow(clippy::print_stdout)]
            {
                println!("{token}");
            }
            Ok(())
        }
        Command::Sweep(args) => {
            init_tracing_quiet();
            let code = cmd::lab::sweep(args)?;
            std::process::exit(code);
        }
        Command::Soak(args) => {
            init_tracing_quiet();
            let code = cmd::lab::soak(args)?;
            std::process::exit(code);
        }
        Command::Jobs { remote, command } => {
            init_tracing_quiet();
            let code = cmd::client::run(remote, command)?;
            std::process::exit(code);
        }
        Command::Templates { name: None } => {
            #[allow(clippy::print_stdout)]
            {
                print!("{}", cmd::list_templates());
            }
            Ok(())
        }
        Command::Lessons { id, zh } => {
            let text = cmd::list_lessons(id.as_deref(), zh)?;
            #[allow(clippy::print_stdout)]
            {
                print!("{text}");
            }
            Ok(())
        }
        Command::Templates { name: Some(name) } => {
            let Some(t) = shared::templates::get(&name) else {
                anyhow::bail!("no template named `{name}`; see `queuelab templates`");
            };
            #[allow(clippy::print_stdout)]
            {
                print!("{}", t.toml);
            }
            Ok(())
        }
        Command::Validate { spec } => {
            let spec = cmd::load_spec(&spec)?;
            #[allow(clippy::print_stdout)]
            {
                println!("{}", cmd::describe(&spec));
            }
            Ok(())
        }
        Command::Target {
            bind,
            port,
            latency,
            fail_share,
            fail_status,
        } => {
            anyhow::ensure!(
                (0.0..=1.0).contains(&fail_share),
                "--fail-share must be between 0 and 1"
            );
            let fail_status = axum::http::StatusCode::from_u16(fail_status).map_err(|_| {
                anyhow::anyhow!("--fail-status {fail_status} is not an HTTP status")
            })?;
            serve_target(
                std::net::SocketAddr::new(bind, port),
                server::target::TargetConfig {
                    latency,
                    fail_share,
                    fail_status,
                },
            )
        }
        Command::Healthcheck { url } => {
            let url = url.unwrap_or_else(|| {
                let port = std::env::var("QUEUELAB_PORT").unwrap_or_else(|_| "8080".into());
                format!("http://127.0.0.1:{port}/healthz")
            });
            server::healthcheck::probe(&url, Duration::from_secs(3))
                .with_context(|| format!("health check of {url} failed"))
        }
    }
}

fn init_tracing(json: bool) {
    let filter = EnvFilter::try_from_env("QUEUELAB_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Logs for headless runs: warnings only unless `QUEUELAB_LOG` says more,
/// so they do not fight the progress display.
fn init_tracing_quiet() {
    let filter = EnvFilter::try_from_env("QUEUELAB_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    init_tracing(config.log_json);
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let assets = assets::locate(config.assets.as_deref());
    match &assets {
        Some(dir) => tracing::info!(dir = %dir.display(), "serving dashboard"),
        None => tracing::warn!("dashboard not built; run `./dev up` or pass --assets"),
    }
    let listener = tokio::net::TcpListener::bind(config.addr())
        .await
        .with_context(|| format!("cannot listen on {}", config.addr()))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "queuelab listening");
    let state = AppState::with_store(
        assets,
        config.heartbeat_every(),
        config.data_dir.clone(),
        config.store.as_deref(),
    )
    .context("cannot open the store")?
    .with_max_ws_clients(config.max_ws_clients)
    .with_max_ingest_waiting(config.max_ingest_waiting)
    .with_auth(config.auth_enabled())
    .with_allowed_hosts(&config.allowed_host)
    .with_limits(config.limits())
    .with_target(config.target.mounted())
    .with_auth_failures_per_minute(config.auth_failures_per_minute)
    .with_listen_anywhere(config.listen_anywhere)
    .with_cors_origins(&config.cors_origin)
    .context("--cors-origin")?
    .with_files_roots(&config.files_root)
    .context("--files-root")?
    .with_http_allow(config.http_allow.clone())
    .with_nats_url(config.nats_url.clone())
    .with_no_local_stage_workers(config.no_local_stage_workers);
    tracing::info!(
        roots = ?state.files_roots(),
        http_allow = config.http_allow.len(),
        "spec paths confined to the files roots; outbound connections to the allow-list"
    );
    tracing::info!(
        auth = config.auth_enabled(),
        "API tokens {}",
        if config.auth_enabled() {
            "required"
        } else {
            "not required"
        }
    );
    // The one line a person (and the end-to-end test) reads to find us.
    #[allow(clippy::print_stdout)]
    {
        println!(
            "QueueLab {} is serving at {}",
            server::VERSION,
            display_url(addr)
        );
    }
    let drain = Duration::from_millis(config.shutdown_drain_ms);
    server::run(listener, state, shutdown_signal(), drain).await?;
    tracing::info!("stopped");
    Ok(())
}

#[tokio::main]
async fn serve_target(
    addr: std::net::SocketAddr,
    config: server::target::TargetConfig,
) -> anyhow::Result<()> {
    init_tracing(false);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    #[allow(clippy::print_stdout)]
    {
        println!("QueueLab test target is answering at {}", display_url(addr));
    }
    axum::serve(listener, server::target::router(config))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what `docker stop` sends).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
