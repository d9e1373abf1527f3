//! Finding and serving the built dashboard.
//!
//! The dashboard is a static bundle (`index.html`, a JS loader and a
//! `.wasm` module) built by `./dev build`. The server looks for it in a few
//! well-known places so `queuelab serve` works without configuration both
//! from a source checkout and from an installed image.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tower_http::services::{ServeDir, ServeFile};

/// The dashboard folder to serve: `explicit` if given, otherwise the first
/// folder with an `index.html` among [`candidates`].
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(dir) => Some(dir.to_path_buf()),
        None => candidates()
            .into_iter()
            .find(|d| d.join("index.html").is_file()),
    }
}

/// Where an unconfigured server looks for the dashboard, in order: a
/// `dashboard` folder beside the binary, `../share/queuelab/dashboard`
/// relative to it (the container layout), and the source tree's
/// `frontend/dist` (a developer's checkout).
pub fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir.join("dashboard"));
        dirs.push(exe_dir.join("../share/queuelab/dashboard"));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../frontend/dist"));
    dirs
}

/// The service behind every path no API route claims: the dashboard's
/// files, with `index.html` for unknown paths (client-side routes), or a
/// page explaining how to build the dashboard when none was found.
pub fn service(dir: Option<&Path>) -> BoxCloneSyncService<Request<Body>, Response, Infallible> {
    match dir {
        Some(dir) => {
            let index = ServeFile::new(dir.join("index.html"));
            let files = ServeDir::new(dir).fallback(index);
            BoxCloneSyncService::new(ServiceExt::<Request<Body>>::map_response(files, |res| {
                res.map(Body::new)
            }))
        }
        None => BoxCloneSyncService::new(tower::service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(missing_dashboard())
        })),
    }
}

fn missing_dashboard() -> Response {
    let page = Html(
        "<!doctype html><title>QueueLab</title><h1>QueueLab</h1>\
         <p>The server is running, but the dashboard has not been built.</p>\
         <p>Run <code>./dev up</code> from the source tree, or pass \
         <code>--assets DIR</code> / set <code>QUEUELAB_ASSETS</code>.</p>\
         <p>The API is available under <code>/api/v1</code>.</p>",
    );
    (StatusCode::SERVICE_UNAVAILABLE, page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_folder_wins() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(locate(Some(dir.path())).as_deref(), Some(dir.path()));
    }

    #[test]
    fn source_tree_dist_is_a_candidate() {
        assert!(candidates().iter().any(|d| d.ends_with("frontend/dist")));
    }

    #[tokio::test]
    async fn unknown_paths_get_index_html() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>app</p>").unwrap();
        std::fs::write(dir.path().join("app.js"), "x()").unwrap();
        let svc = service(Some(dir.path()));
        for (path, body) in [
            ("/app.js", "x()"),
            ("/jobs/42", "<p>app</p>"),
            ("/", "<p>app</p>"),
        ] {
            let resp = svc
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            assert_eq!(&bytes[..], body.as_bytes(), "{path}");
        }
    }

    #[tokio::test]
    async fn missing_dashboard_explains_itself() {
        let resp = service(None)
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&bytes).contains("./dev up"));
    }
}
