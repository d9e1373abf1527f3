//! `GET /metrics`: Prometheus text exposition of the server and its jobs.
//!
//! Cardinality is bounded: series exist for running jobs and for the most
//! recent [`FINISHED_KEPT`] finished ones, one label set per stage.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// Finished jobs still exported.
pub const FINISHED_KEPT: usize = 20;

/// Escapes a label value for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metric families, in exposition order: name, type, help.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "queuelab_workers",
        "gauge",
        "Worker processes by state (active, lost).",
    ),
    (
        "queuelab_edge_messages",
        "gauge",
        "A broker edge's stream, by kind: depth (stored), pending (undelivered), in_flight (unacknowledged).",
    ),
    (
        "queuelab_edge_items",
        "gauge",
        "A broker edge in items (a message carries many): depth (published, not yet booked).",
    ),
    (
        "queuelab_edge_published_messages_total",
        "counter",
        "Messages a broker edge's stream stored.",
    ),
    (
        "queuelab_edge_published_items_total",
        "counter",
        "Items those messages carried (items per message = items over messages).",
    ),
    (
        "queuelab_edge_redeliveries_total",
        "counter",
        "Deliveries after the first on a broker edge, as the broker counts them.",
    ),
    (
        "queuelab_edge_oldest_pending_seconds",
        "gauge",
        "Age of the oldest message on a broker edge.",
    ),
    (
        "queuelab_edge_publish_refusals_total",
        "counter",
        "Publishes a broker edge refused because its stream was full.",
    ),
    (
        "queuelab_edge_workers",
        "gauge",
        "Hosts (worker processes, the server) consuming a broker edge.",
    ),
    (
        "queuelab_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    ),
    (
        "queuelab_websocket_clients",
        "gauge",
        "Open WebSocket connections.",
    ),
    ("queuelab_jobs", "gauge", "Jobs by state."),
    (
        "queuelab_job_items_total",
        "counter",
        "Items of a job by bucket (produced, sunk, ...).",
    ),
    (
        "queuelab_job_throughput",
        "gauge",
        "Items reaching the sink per second, last interval.",
    ),
    (
        "queuelab_stage_items_total",
        "counter",
        "Items a stage accepted (in) and passed on (out).",
    ),
    (
        "queuelab_stage_queue_depth",
        "gauge",
        "Items in a stage's input queue.",
    ),
    (
        "queuelab_stage_workers",
        "gauge",
        "Running workers of a stage.",
    ),
    (
        "queuelab_stage_auto_limit",
        "gauge",
        "The limit an automatic stage's controller chose (field: workers or concurrency; pinned: 1 after a manual tune).",
    ),
    (
        "queuelab_stage_busy_ratio",
        "gauge",
        "Share of worker time spent working, last interval.",
    ),
    (
        "queuelab_stage_blocked_ratio",
        "gauge",
        "Share of worker time blocked on a full downstream queue.",
    ),
    (
        "queuelab_stage_service_p99_seconds",
        "gauge",
        "P99 service time of a stage, last interval.",
    ),
];

/// The exposition: each family's HELP and TYPE, then all its samples.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses(crate::api::Always,
        (status = 200, description = "Prometheus text exposition (version 0.0.4): server, job and stage metrics",
            body = String, content_type = "text/plain; version=0.0.4; charset=utf-8")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut samples: std::collections::HashMap<&str, Vec<String>> = Default::default();
    let mut add = |family: &'static str, labels: String, value: String| {
        let line = if labels.is_empty() {
            format!("{family} {value}")
        } else {
            format!("{family}{{{labels}}} {value}")
        };
        samples.entry(family).or_default().push(line);
    };
    add(
        "queuelab_uptime_seconds",
        String::new(),
        state.uptime().as_secs_f64().to_string(),
    );
    add(
        "queuelab_websocket_clients",
        String::new(),
        state.ws_clients().to_string(),
    );
    let workers = state.workers().list();
    for st in ["active", "lost"] {
        let n = workers
            .iter()
            .filter(|w| serde_json::to_value(w.state).is_ok_and(|v| v == st))
            .count();
        add("queuelab_workers", format!("state=\"{st}\""), n.to_string());
    }
    let summaries = state.jobs().summaries();
    let mut by_state = std::collections::BTreeMap::new();
    for s in &summaries {
        *by_state.entry(s.state.as_str()).or_insert(0u64) += 1;
    }
    for (st, n) in by_state {
        add("queuelab_jobs", format!("state=\"{st}\""), n.to_string());
    }
    let mut finished = 0;
    for s in &summaries {
        if s.state.is_finished() {
            finished += 1;
            if finished > FINISHED_KEPT {
                continue;
            }
        }
        let Some(snap) = state.jobs().latest_snapshot(&s.id) else {
            continue;
        };
        let job = label(&s.id);
        let a = s.accounting;
        for (bucket, v) in [
            ("produced", a.produced),
            ("sunk", a.sunk),
            ("filtered", a.filtered),
            ("dead_lettered", a.dead_lettered),
            ("dropped_by_policy", a.dropped_by_policy),
            ("leftovers", a.leftovers),
        ] {
            add(
                "queuelab_job_items_total",
                format!("job=\"{job}\",bucket=\"{bucket}\""),
                v.to_string(),
            );
        }
        add(
            "queuelab_job_throughput",
            format!("job=\"{job}\""),
            snap.throughput.to_string(),
        );
        for n in &snap.nodes {
            let l = format!("job=\"{job}\",stage=\"{}\"", label(&n.name));
            add(
                "queuelab_stage_items_total",
                format!("{l},direction=\"in\""),
                n.items_in.to_string(),
            );
            add(
                "queuelab_stage_items_total",
                format!("{l},direction=\"out\""),
                n.items_out.to_string(),
            );
            add("queuelab_stage_queue_depth", l.clone(), n.depth.to_string());
            add("queuelab_stage_workers", l.clone(), n.workers.to_string());
            if let Some(a) = &n.auto {
                add(
                    "queuelab_stage_auto_limit",
                    format!(
                        "{l},field=\"{}\",pinned=\"{}\"",
                        label(&a.field),
                        u8::from(a.pinned)
                    ),
                    a.limit.to_string(),
                );
            }
            add("queuelab_stage_busy_ratio", l.clone(), n.busy.to_string());
            add(
                "queuelab_stage_blocked_ratio",
                l.clone(),
                n.blocked.to_string(),
            );
            add(
                "queuelab_stage_service_p99_seconds",
                l.clone(),
                (n.service.p99_us as f64 / 1e6).to_string(),
            );
            if let Some(e) = &n.edge {
                for (kind, v) in [
                    ("depth", e.depth),
                    ("pending", e.pending),
                    ("in_flight", e.in_flight),
                ] {
                    add(
                        "queuelab_edge_messages",
                        format!("{l},kind=\"{kind}\""),
                        v.to_string(),
                    );
                }
                add(
                    "queuelab_edge_items",
                    format!("{l},kind=\"depth\""),
                    e.depth_items.to_string(),
                );
                add(
                    "queuelab_edge_published_messages_total",
                    l.clone(),
                    e.messages_published.to_string(),
                );
                add(
                    "queuelab_edge_published_items_total",
                    l.clone(),
                    e.items_published.to_string(),
                );
                add(
                    "queuelab_edge_redeliveries_total",
                    l.clone(),
                    e.redeliveries.to_string(),
                );
                add(
                    "queuelab_edge_oldest_pending_seconds",
                    l.clone(),
                    (e.oldest_pending_ms as f64 / 1e3).to_string(),
                );
                add(
                    "queuelab_edge_publish_refusals_total",
                    l.clone(),
                    e.publish_refusals.to_string(),
                );
                add("queuelab_edge_workers", l, e.workers_attached.to_string());
            }
        }
    }
    let mut out = String::new();
    for (name, kind, help) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for line in samples.get(name).into_iter().flatten() {
            let _ = writeln!(out, "{line}");
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(label("x\ny"), "x\\ny");
    }
}
