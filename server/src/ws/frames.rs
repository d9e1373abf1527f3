//! The snapshot frames WebSocket subscribers share, kept in
//! [`crate::state::AppState`] so every connection finds them.

use std::collections::HashMap;

use axum::extract::ws::Utf8Bytes;
use shared::metrics::JobSnapshot;
use shared::ws::ServerFrame;

/// Snapshot frames, serialised once per job and snapshot number and shared
/// by every subscriber (a hundred dashboards cost one serialisation).
#[derive(Debug, Default)]
pub struct FrameCache {
    frames: std::sync::Mutex<HashMap<String, (u64, Utf8Bytes)>>,
}

impl FrameCache {
    pub(super) fn snapshot_frame(&self, job: &str, snapshot: &JobSnapshot) -> Utf8Bytes {
        let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seq, text)) = frames.get(job)
            && *seq == snapshot.seq
        {
            return text.clone();
        }
        let frame = ServerFrame::Snapshot {
            job: job.to_owned(),
            snapshot: Box::new(snapshot.clone()),
        };
        let text = Utf8Bytes::from(frame.to_json());
        frames.insert(job.to_owned(), (snapshot.seq, text.clone()));
        text
    }
}
