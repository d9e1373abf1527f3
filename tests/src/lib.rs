//! # `e2e` — end-to-end tests of QueueLab as a user meets it
//!
//! These tests start the real `queuelab` binary as a child process, talk to
//! it over real sockets and drive the real dashboard in headless Chromium.
//! This library holds the shared helpers; the tests live in `tests/`.
//!
//! * [`ServerProcess`] — spawns `queuelab serve --port 0` in a scratch data
//!   directory, reads the URL it prints, and kills it when dropped;
//!   [`WorkerProcess`] a `queuelab worker` for it.
//! * [`browser`] — runs a Node.js script under `browser/` that drives
//!   Chromium through `playwright-core` and prints one JSON report;
//!   [`BrowserSession`] does the same step by step, for tests that act on
//!   the server (restart it, say) while the page is open.
//! * [`artifacts_dir`] — the git-ignored folder for screenshots.
//!
//! The binary, the dashboard bundle, Node's packages and Chromium are put
//! in place by `./dev test`, which is how these tests are meant to run.

use std::io::{BufRead, BufReader, Lines, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Root of the source tree.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Git-ignored folder for test artifacts such as screenshots.
pub fn artifacts_dir() -> PathBuf {
    let dir = repo_root().join("artifacts");
    std::fs::create_dir_all(&dir).expect("create artifacts/");
    dir
}

/// Path of the `queuelab` binary under test: `$QUEUELAB_BIN`, or the one
/// cargo built next to this test executable (`target/<profile>/queuelab`).
pub fn queuelab_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("QUEUELAB_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/queuelab
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .join(format!("queuelab{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} not found: build it first (`./dev test` does) or set QUEUELAB_BIN",
        bin.display()
    );
    bin
}

/// A running `queuelab serve` child process, killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Base URL the server printed, with a trailing slash.
    pub url: String,
    /// Scratch data directory, removed on drop.
    pub data_dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `queuelab serve --port 0` and waits for the URL it prints.
    pub fn spawn() -> Self {
        Self::spawn_with(&[])
    }

    /// Like [`ServerProcess::spawn`], with extra `serve` arguments (which
    /// may name their own `--data-dir`).
    pub fn spawn_with(extra: &[&str]) -> Self {
        Self::spawn_under(&[], extra)
    }

    /// Like [`ServerProcess::spawn_with`], run through a wrapper command
    /// such as `prlimit --as=…` (empty: none).
    pub fn spawn_under(wrapper: &[&str], extra: &[&str]) -> Self {
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(queuelab_bin());
                c
            }
            None => Command::new(queuelab_bin()),
        };
        cmd.arg("serve");
        // Defaults for tests, unless the caller names the flag itself.
        let data_dir_arg = data_dir.path().to_string_lossy().into_owned();
        for (flag, value) in [
            ("--port", "0"),
            ("--heartbeat-ms", "250"),
            ("--data-dir", data_dir_arg.as_str()),
        ] {
            if !extra.contains(&flag) {
                cmd.args([flag, value]);
            }
        }
        let mut child = cmd
            .args(extra)
            .env("QUEUELAB_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn queuelab");
        let stdout = child.stdout.take().expect("piped stdout");
        // Read the announcement on a thread so a silent child cannot hang
        // the test forever.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("wait for queuelab");
                panic!(
                    "queuelab serve exited ({status}) without printing its URL; see stderr above"
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("queuelab serve printed no URL within 30 s");
            }
        };
        Self {
            child,
            url,
            data_dir,
        }
    }

    /// The server's process id, to read its `/proc` entries.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port` part of [`ServerProcess::url`].
    pub fn authority(&self) -> &str {
        self.url.trim_start_matches("http://").trim_end_matches('/')
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Runs `queuelab jobs <args>` against this server, as a CI script does.
    pub fn jobs(&self, args: &[&str]) -> std::process::Output {
        Command::new(queuelab_bin())
            .arg("jobs")
            .args(args)
            .env("QUEUELAB_URL", self.url.trim_end_matches('/'))
            .env("QUEUELAB_LOG", "warn")
            .output()
            .expect("run queuelab jobs")
    }
}

/// A `queuelab worker` child of a [`ServerProcess`], killed on drop.
#[derive(Debug)]
pub struct WorkerProcess(Child);

impl WorkerProcess {
    /// Starts `queuelab worker --server <server> --name <name>` with `env`.
    pub fn spawn(server: &ServerProcess, name: &str, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(queuelab_bin());
        cmd.args(["worker", "--server", server.url.trim_end_matches('/')])
            .args(["--name", name])
            .env("QUEUELAB_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        WorkerProcess(cmd.spawn().expect("spawn queuelab worker"))
    }

    /// True once the process has ended on its own (a fault point that
    /// kills it, a crash).
    pub fn exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }

    /// `kill -9`: no chance to ack, leave or flush.
    pub fn kill9(&mut self) {
        let status = Command::new("kill")
            .args(["-9", &self.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node(script: &str) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(repo_root().join("tests/browser").join(script))
        .current_dir(repo_root())
        .stderr(Stdio::inherit());
    cmd
}

fn parse_report(script: &str, stdout: &str) -> serde_json::Value {
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("bad JSON from {script}: {e}\n{stdout}"))
}

/// Runs `node browser/<script> <args...>` and parses the one JSON object
/// it prints on stdout. Panics with the script's output when it fails.
pub fn browser(script: &str, args: &[&str]) -> serde_json::Value {
    let out = node(script)
        .args(args)
        .output()
        .expect("run node (installed by ./dev setup)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{stdout}",
        out.status
    );
    parse_report(script, &stdout)
}

/// A browser script driven step by step: the script prints `STEP <name>`
/// lines when it reaches a point where the test should act, and waits for a
/// line on its stdin before going on.
#[derive(Debug)]
pub struct BrowserSession {
    script: String,
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    seen: Vec<String>,
}

impl BrowserSession {
    /// Starts `node browser/<script> <args...>`.
    pub fn start(script: &str, args: &[&str]) -> Self {
        let mut child = node(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run node (installed by ./dev setup)");
        let stdin = child.stdin.take().expect("piped stdin");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        Self {
            script: script.to_owned(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Blocks until the script prints `STEP <name>`; panics with what it
    /// printed if it ends first (the script bounds every wait itself).
    pub fn expect_step(&mut self, name: &str) {
        let want = format!("STEP {name}");
        for line in self.lines.by_ref().map_while(Result::ok) {
            let done = line == want;
            self.seen.push(line);
            if done {
                return;
            }
        }
        panic!(
            "{} ended before `{want}`:\n{}",
            self.script,
            self.seen.join("\n")
        );
    }

    /// Tells the script to go on past its current step.
    pub fn resume(&mut self) {
        writeln!(self.stdin, "go").expect("write to the browser script");
        self.stdin.flush().expect("flush");
    }

    /// Waits for the script to end and returns its JSON report.
    pub fn finish(mut self) -> serde_json::Value {
        self.seen.extend(self.lines.by_ref().map_while(Result::ok));
        let status = self.child.wait().expect("wait for node");
        let stdout = self.seen.join("\n");
        assert!(
            status.success(),
            "{} failed ({status}):\n{stdout}",
            self.script
        );
        parse_report(&self.script, &stdout)
    }
}

impl Drop for BrowserSession {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
