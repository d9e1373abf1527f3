//! `spawn_app()`: a real server on a free loopback port, per test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use server::AppState;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server; shut it down with [`TestApp::shutdown`] to exercise
/// graceful shutdown, or drop it to abort.
pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Heartbeat interval used by tests: short, so tests see several quickly.
pub const TEST_HEARTBEAT: Duration = Duration::from_millis(100);

pub async fn spawn_app() -> TestApp {
    spawn_app_with_assets(None).await
}

pub async fn spawn_app_with_assets(assets: Option<PathBuf>) -> TestApp {
    spawn_app_with(assets, server::DEFAULT_MAX_WS_CLIENTS).await
}

pub async fn spawn_app_with(assets: Option<PathBuf>, max_ws_clients: usize) -> TestApp {
    spawn_app_in(assets, max_ws_clients, tempfile::tempdir().unwrap().keep()).await
}

/// A server whose store lives in `data_dir` (reuse it to "restart").
pub async fn spawn_app_in(
    assets: Option<PathBuf>,
    max_ws_clients: usize,
    data_dir: PathBuf,
) -> TestApp {
    spawn_configured(assets, data_dir, |s| s.with_max_ws_clients(max_ws_clients)).await
}

/// A server whose store is the PostgreSQL database at `url`.
pub async fn spawn_app_with_store(data_dir: PathBuf, url: &str) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let state = AppState::with_store(None, TEST_HEARTBEAT, data_dir, Some(url)).unwrap();
    serve(listener, state)
}

/// A server with tokens required.
pub async fn spawn_app_with_auth() -> TestApp {
    spawn_configured(None, tempfile::tempdir().unwrap().keep(), |s| {
        s.with_auth(true)
    })
    .await
}

/// A server whose state `configure` adjusts before it starts.
pub async fn spawn_configured(
    assets: Option<PathBuf>,
    data_dir: PathBuf,
    configure: impl FnOnce(AppState) -> AppState,
) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let state = configure(AppState::new(assets, TEST_HEARTBEAT, data_dir).unwrap());
    serve(listener, state)
}

/// Serves `state` on `listener` in the background.
fn serve(listener: tokio::net::TcpListener, state: AppState) -> TestApp {
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server::run(
        listener,
        state.clone(),
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    TestApp {
        addr,
        state,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}{}", self.addr, shared::WS_PATH)
    }

    /// Triggers graceful shutdown and waits for the server to return.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("server stops within 10 s")
            .unwrap()
            .unwrap();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// A minimal HTTP/1.1 GET over a raw socket: returns status and body.
/// (No HTTP client crate is needed for these few probes.)
pub async fn get(app: &TestApp, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, body.to_owned())
}

/// `GET` a path of `app` and decode its JSON.
pub async fn get_json<T: serde::de::DeserializeOwned>(app: &TestApp, path: &str) -> T {
    reqwest::get(app.url(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `POST`s a job (a spec, or a template with overrides) and returns the
/// answer as it came.
pub async fn create(app: &TestApp, body: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/v1/jobs"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Creates a job that must start, and returns its id.
pub async fn start(app: &TestApp, body: serde_json::Value) -> String {
    let r = create(app, body).await;
    assert_eq!(r.status(), 201);
    r.json::<shared::api::JobDetail>().await.unwrap().summary.id
}

/// Polls a job until `pred` holds (bounded; not a timing assertion).
pub async fn wait_job(
    app: &TestApp,
    id: &str,
    what: &str,
    pred: impl Fn(&shared::api::JobDetail) -> bool,
) -> shared::api::JobDetail {
    for _ in 0..600 {
        let d: shared::api::JobDetail = get_json(app, &format!("/api/v1/jobs/{id}")).await;
        if pred(&d) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Starts a job that runs until stopped (a million items at the pace of
/// the `thread-io-pool` template) and returns its id.
pub async fn running_job(app: &TestApp) -> String {
    start(
        app,
        serde_json::json!({"template": "thread-io-pool", "overrides": {"source": {"count": 1_000_000}}}),
    )
    .await
}

/// `POST /jobs/{id}/stop` with `{"mode": mode}`; the answer as it came.
pub async fn stop(app: &TestApp, id: &str, mode: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(&format!("/api/v1/jobs/{id}/stop")))
        .json(&serde_json::json!({ "mode": mode }))
        .send()
        .await
        .unwrap()
}
