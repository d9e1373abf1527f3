//! The Workers view: the `queuelab worker` processes of the server, with
//! their state, last heartbeat, labels, what each runs and its counts.
//! The WebSocket says when one joins, leaves or is lost; the list itself
//! is read over REST then, and every two seconds for the heartbeat ages.

use leptos::prelude::*;
use shared::workers::{WorkerInfo, WorkerState};

use super::tr;
use crate::api;
use crate::format::count;
use crate::i18n::{Lang, t};
use crate::live::LiveLink;

/// `/workers`.
#[component]
pub fn WorkersPage() -> impl IntoView {
    let lang = expect_context::<RwSignal<Lang>>();
    super::page_title(move || t(lang.get(), "Workers").to_owned());
    let link = expect_context::<LiveLink>();
    link.watch_workers();
    let list = LocalResource::new(|| api::get::<Vec<WorkerInfo>>("/api/v1/workers"));
    let handle =
        set_interval_with_handle(move || list.refetch(), std::time::Duration::from_secs(2));
    on_cleanup(move || {
        if let Ok(h) = handle {
            h.clear();
        }
    });
    // A join, a leave or a lost lease: read the list at once.
    Effect::new(move |prev: Option<Option<u64>>| {
        let version = link.workers.get().map(|c| c.0);
        if prev.is_some_and(|p| p != version) {
            list.refetch();
        }
        version
    });
    let census = move || {
        link.workers
            .get()
            .map(|(_, active, lost)| {
                format!(
                    "{active} {} · {lost} {}",
                    t(lang.get(), "active"),
                    t(lang.get(), "lost")
                )
            })
            .unwrap_or_default()
    };
    let rows = move || {
        let Some(Ok(mut items)) = list.get() else {
            return Vec::new();
        };
        items.sort_by(|a, b| a.name.cmp(&b.name));
        items
            .into_iter()
            .map(|w| {
                let state = match w.state {
                    WorkerState::Active => "active",
                    WorkerState::Lost => "lost",
                };
                let runs: Vec<String> = w
                    .assignments
                    .iter()
                    .map(|r| format!("{} · {} ×{}", r.names.job, r.names.stage, r.workers))
                    .collect();
                view! {
                    <tr data-testid="worker-row" data-name=w.name.clone() data-state=state>
                        <td>{w.name.clone()}</td>
                        <td>{w.host.clone()}</td>
                        <td>{w.version.clone()}</td>
                        <td class=format!("worker-{state}")>{tr(state)}</td>
                        <td>{format!("{:.1} s", w.last_heartbeat_ms_ago as f64 / 1000.0)}</td>
                        <td>{w.labels.join(", ")}</td>
                        <td data-testid="worker-runs">{if runs.is_empty() { "—".to_owned() } else { runs.join("; ") }}</td>
                        <td class="num" data-testid="worker-processed">{count(w.counts.processed)}</td>
                        <td class="num">{count(w.counts.redelivered)}</td>
                    </tr>
                }
            })
            .collect::<Vec<_>>()
    };
    view! {
        <h1>{tr("Workers")}</h1>
        <p class="hint" data-testid="worker-census" role="status">{census}</p>
        <Show
            when=move || list.get().is_some_and(|l| l.is_ok_and(|l| !l.is_empty()))
            fallback=move || view! { <p class="hint" data-testid="no-workers">{tr("No worker processes. Start one with `queuelab worker --server URL --token T`; broker stages run on the server meanwhile.")}</p> }
        >
            <table class="jobs" data-testid="workers">
                <thead><tr>
                    <th>{tr("Name")}</th><th>{tr("Host")}</th><th>{tr("Version")}</th><th>{tr("State")}</th>
                    <th>{tr("Last heartbeat")}</th><th>{tr("Labels")}</th><th>{tr("Runs")}</th>
                    <th>{tr("Processed")}</th><th>{tr("Redelivered")}</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </Show>
    }
}
