//! One job's page: pipeline nodes, tuning, charts, drain and abort, and the report.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use shared::api::{JobDetail, StopMode};
use shared::metrics::{
    EventKind, JobEvent, JobReport, JobSnapshot, NodeSnapshot, NodeState, TuneRequest,
};

use super::charts::{CHART_POINTS, Chart, MAX_DRAWN, Plot, Series};
use super::lessons::{LessonBanner, focuses_chart, focuses_node};
use super::records::{Kind, Records};
use super::{rate, stop_job, tr};
use crate::api;
use crate::format::{count, duration_ms};
use crate::i18n::{Lang, t};
use crate::live::LiveLink;

/// How full a queue's bar is drawn, in percent: its share of the capacity,
/// or for an unbounded queue (which has no "full") the order of magnitude
/// of its depth, a million items filling the bar: the article's memory
/// pitfall should show as a bar that keeps growing, not as an empty one.
pub fn queue_fill(depth: u64, capacity: Option<shared::spec::Capacity>) -> f64 {
    match capacity {
        Some(shared::spec::Capacity::Bounded(c)) if c > 0 => {
            (depth as f64 / c as f64 * 100.0).min(100.0)
        }
        Some(shared::spec::Capacity::Unbounded) => {
            ((depth as f64 + 1.0).log10() / 6.0 * 100.0).min(100.0)
        }
        _ => 0.0,
    }
}

/// A queue's capacity as a node shows it: `1,000`, `∞` (unbounded), or
/// `—` when unknown.
fn capacity_label(capacity: Option<shared::spec::Capacity>) -> String {
    match capacity {
        Some(shared::spec::Capacity::Bounded(c)) => count(c),
        Some(shared::spec::Capacity::Unbounded) => "∞".into(),
        None => "—".into(),
    }
}

/// One pipeline node: coloured by its state (the bottleneck hot,
/// backpressured by how blocked it is, idle grey), with its queue against
/// its capacity, its busy and blocked shares, its workers, and for an async
/// stage its share of the event loop, flagged when it blocks the loop.
#[component]
fn NodeCard(
    node: NodeSnapshot,
    state: NodeState,
    /// Named by the lag probe as blocking the event loop.
    blocking: bool,
    /// Outlined: the lesson running says to watch it.
    focus: bool,
) -> impl IntoView {
    let fill = queue_fill(node.depth, node.capacity);
    let unbounded = node.capacity == Some(shared::spec::Capacity::Unbounded);
    let testid = format!("node-{}", node.name);
    let capacity = capacity_label(node.capacity);
    // Backpressured nodes are shaded by how blocked they are.
    let style = if state == NodeState::Backpressured {
        format!("--blocked: {:.2}", node.blocked)
    } else {
        String::new()
    };
    let is_bridge = node.kind == Some(shared::metrics::NodeKind::Bridge);
    let hot = node.blocked >= shared::metrics::BACKPRESSURED;
    let mut classes = format!("node node-{}", state.as_str());
    for (on, class) in [
        (is_bridge, " bridge"),
        (focus, " focus"),
        (blocking, " blocking"),
    ] {
        if on {
            classes.push_str(class);
        }
    }
    view! {
        <div class=classes style=style data-testid=testid data-state=state.as_str()>
            <div class="node-name">{node.name.clone()}
                <span class="node-state" data-testid="node-state">{tr(state.as_str())}</span>
            </div>
            {blocking.then(|| view! { <div class="node-flag" data-testid="blocking-loop" role="status">{tr("blocking the event loop")}</div> })}
            <div class="node-meta">
                {node.runtime.map(|r| r.to_string()).unwrap_or_default()}" ×"
                <span data-testid="workers">{node.workers}</span>
                {node.concurrency.map(|c| view! { " · ≤"<span data-testid="concurrency">{c}</span>" "{tr("in flight")} })}
            </div>
            {node.rate_limit.map(|r| view! { <div class="node-meta">{tr("limit")}" "<span data-testid="rate-limit">{rate(r)}</span></div> })}
            // Over a broker, the limits are the job's: each host runs with
            // its share, by its share of the workers.
            {(node.edge.is_some() && (node.rate_limit.is_some() || node.concurrency.is_some())).then(|| view! {
                <div class="node-meta" data-testid="limits-split">{tr("job-wide, split over hosts by their workers")}</div>
            })}
            <div class="bar" class:unbounded=unbounded title=if unbounded { "queue depth (unbounded: log scale, a million fills it)" } else { "queue depth against capacity" }>
                <div class="fill" style=format!("width: {fill:.0}%")></div>
            </div>
            <div class="node-meta" data-testid="depth">{tr("queue")}" "{count(node.depth)}" / "{capacity}</div>
            <div class="node-meta" data-testid="shares">
                {tr("busy")}" "{format!("{:.0}%", node.busy * 100.0)}" · "
                <span class:hot=hot>{tr("blocked")}" "<span data-testid="blocked">{format!("{:.0}%", node.blocked * 100.0)}</span></span>
            </div>
            {node.loop_share.map(|x| view! { <div class="node-meta" data-testid="loop-share">{tr("event loop")}" "{format!("{:.0}%", x * 100.0)}</div> })}
            {node.cpu.map(|c| view! { <div class="node-meta" data-testid="cpu" title="CPU time of this node's threads, 100% = one core">"CPU "{format!("{:.0}%", c * 100.0)}</div> })}
            <div class="node-meta">{tr("out")}" "{rate(node.out_rate)}</div>
            // Where an item's time goes here: waiting in the queue, then
            // being worked on (P50 / P99 over the last interval).
            <div class="node-meta" data-testid="latencies" title="queue wait and service time, P50 / P99">
                {tr("wait")}" "{lat(&node.queue_wait)}" · "{tr("service")}" "{lat(&node.service)}
            </div>
            {(node.duplicates > 0).then(|| view! { <div class="node-flag" data-testid="duplicates">{tr("duplicate rows")}" "{node.duplicates}</div> })}
            {node.edge.clone().map(|e| view! { <EdgeFigures edge=e redelivered=node.redelivered /> })}
        </div>
    }
}

/// A broker stage's stream, as the broker reports it, and where its
/// workers run.
#[component]
fn EdgeFigures(edge: shared::metrics::EdgeSnapshot, redelivered: u64) -> impl IntoView {
    let placed: Vec<String> = edge
        .placement
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(w, n)| format!("{w} ×{n}"))
        .collect();
    view! {
        <div class="edge" data-testid="edge" title=edge.stream.clone()>
            <div class="node-meta">"NATS · "{tr("stream")}" "<span data-testid="edge-depth-items">{count(edge.depth_items)}</span>" "{tr("items")}" · "
                <span data-testid="edge-depth">{count(edge.depth)}</span>" "{tr("messages")}</div>
            <div class="node-meta" data-testid="edge-batching" title="items published over broker messages published">
                {count(edge.items_published)}" "{tr("items")}" / "{count(edge.messages_published)}" "{tr("messages")}
                {(edge.messages_published > 0).then(|| view! {
                    " · "<span data-testid="edge-per-message">{format!("{:.1}", edge.items_published as f64 / edge.messages_published as f64)}</span>" "{tr("per message")}
                })}
            </div>
            <div class="node-meta">{tr("pending")}" "{count(edge.pending)}" · "{tr("in flight")}" "<span data-testid="edge-in-flight">{count(edge.in_flight)}</span></div>
            <div class="node-meta">{tr("redelivered")}" "<span data-testid="edge-redelivered">{redelivered}</span>" · "{tr("refused")}" "{count(edge.publish_refusals)}</div>
            <div class="node-meta">{tr("oldest")}" "{format!("{:.1} s", edge.oldest_pending_ms as f64 / 1000.0)}</div>
            <div class="node-meta" data-testid="edge-workers">{tr("on")}" "{if placed.is_empty() { "—".to_owned() } else { placed.join(", ") }}</div>
        </div>
    }
}

/// A bridge, drawn as a badge on the edge between two worlds (threads and
/// tasks): the hand-over queue against its capacity and how blocked the
/// bridge is, so a slow writer behind async fetchers shows as a full,
/// blocked edge.
#[component]
fn BridgeBadge(
    node: NodeSnapshot,
    state: NodeState,
    /// The runtime of the stage before it and of the one after (`None`:
    /// the source before it, the sink after it).
    from: Option<shared::spec::Runtime>,
    to: Option<shared::spec::Runtime>,
) -> impl IntoView {
    let world = |r: Option<shared::spec::Runtime>, end: &'static str| match r {
        Some(shared::spec::Runtime::Async) => "tasks",
        Some(shared::spec::Runtime::Thread) => "threads",
        None => end,
    };
    let (from, to) = (world(from, "source"), world(to, "sink"));
    let capacity = capacity_label(node.capacity);
    let fill = queue_fill(node.depth, node.capacity);
    view! {
        <div class=format!("edge bridge-edge node-{}", state.as_str()) data-testid="bridge" data-name=node.name.clone() data-state=state.as_str()
            title="a bridge hands items from one world to the other">
            <span class="arrow" aria-hidden="true">"→"</span>
            <div class="edge-badge">
                <div class="edge-kind">"⇄ "{tr("bridge")}</div>
                <div class="edge-worlds">{tr(from)}" → "{tr(to)}</div>
                <div class="bar slim"><div class="fill" style=format!("width: {fill:.0}%")></div></div>
                <div data-testid="bridge-depth">{count(node.depth)}" / "{capacity}</div>
                <div>{tr("blocked")}" "<span data-testid="bridge-blocked">{format!("{:.0}%", node.blocked * 100.0)}</span></div>
            </div>
            <span class="arrow" aria-hidden="true">"→"</span>
        </div>
    }
}

/// P50 / P99 of a latency, `—` when nothing was timed.
fn lat(l: &shared::metrics::Latency) -> String {
    if l.count == 0 {
        return "—".into();
    }
    format!("{} / {}", us(l.p50_us), us(l.p99_us))
}

/// Microseconds, in the unit that reads best.
fn us(v: u64) -> String {
    match v {
        0..1_000 => format!("{v}µs"),
        1_000..1_000_000 => format!("{:.1}ms", v as f64 / 1e3),
        _ => format!("{:.2}s", v as f64 / 1e6),
    }
}

/// What the node colours mean.
#[component]
fn Legend() -> impl IntoView {
    view! {
        <ul class="node-legend" data-testid="node-legend">
            {[NodeState::Bottleneck, NodeState::Backpressured, NodeState::Busy, NodeState::Idle].map(|s| view! {
                <li><span class=format!("key node-{}", s.as_str())></span>{tr(s.as_str())}</li>
            }).collect_view()}
            <li class="hint">{tr("bottleneck: busy, holding up the stages before it · backpressured: waiting for room downstream")}</li>
        </ul>
    }
}

/// Live knobs of a running job: one stage's workers, concurrency and rate
/// limit, or the sink's batching. Kept apart from the node cards, which are
/// redrawn with every snapshot, so what one types is not reset.
#[component]
fn TunePanel(
    job: String,
    spec: shared::spec::PipelineSpec,
    /// The newest snapshot, for showing each knob's current value.
    current: Signal<Option<JobSnapshot>>,
) -> impl IntoView {
    let stages: Vec<(String, bool)> = spec
        .stages
        .iter()
        .map(|s| (s.name.clone(), s.runtime == shared::spec::Runtime::Async))
        .collect();
    let batches = spec.sink.batch().is_some();
    let first = stages.first().map(|s| s.0.clone()).unwrap_or_default();
    let stage = RwSignal::new(first);
    let lang = expect_context::<RwSignal<Lang>>();
    let workers = RwSignal::new(String::new());
    let concurrency = RwSignal::new(String::new());
    let rate_limit = RwSignal::new(String::new());
    let batch = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let is_async = {
        let stages = stages.clone();
        move || stages.iter().any(|(n, a)| *a && *n == stage.get())
    };
    // The selected node's live settings, shown as placeholders.
    let now = move |f: fn(&NodeSnapshot) -> Option<String>| {
        let st = stage.get();
        current
            .get()
            .and_then(|s| s.nodes.iter().find(|n| n.name == st).and_then(f))
            .unwrap_or_default()
    };
    let sink_batch = spec
        .sink
        .batch()
        .map(|b| b.size.to_string())
        .unwrap_or_default();
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let job = job.clone();
        let num = |s: RwSignal<String>| -> Result<Option<f64>, String> {
            let v = s.get_untracked();
            if v.trim().is_empty() {
                return Ok(None);
            }
            v.trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| format!("`{v}` is not a number"))
        };
        let req = (|| -> Result<TuneRequest, String> {
            let st = stage.get_untracked();
            if st == "sink" {
                return Ok(TuneRequest {
                    stage: st,
                    batch_size: num(batch)?.map(|x| x as u32),
                    ..Default::default()
                });
            }
            Ok(TuneRequest {
                stage: st,
                workers: num(workers)?.map(|x| x as u32),
                concurrency: num(concurrency)?.map(|x| x as u32),
                rate_limit: num(rate_limit)?,
                ..Default::default()
            })
        })();
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                message.set(e);
                return;
            }
        };
        leptos::task::spawn_local(async move {
            match api::send::<_, serde::de::IgnoredAny>(
                "PATCH",
                &format!("/api/v1/jobs/{job}"),
                &req,
            )
            .await
            {
                Ok(_) => {
                    message.try_set(t(lang.get_untracked(), "applied").into());
                }
                Err(e) => {
                    message.try_set(e);
                }
            }
        });
    };
    let options = stages
        .iter()
        .map(|(n, _)| view! { <option value=n.clone()>{n.clone()}</option> })
        .collect_view();
    view! {
        <form class="tune" data-testid="tune" novalidate=true on:submit=apply>
            <fieldset>
                <legend>{tr("Tune")}</legend>
                <label>{tr("stage")}" "
                    <select data-testid="tune-stage" on:change=move |ev| {
                        // What was typed for one stage must not go to another.
                        for field in [workers, concurrency, rate_limit, batch] {
                            field.set(String::new());
                        }
                        message.set(String::new());
                        stage.set(event_target_value(&ev));
                    }>
                        {options}
                        {batches.then(|| view! { <option value="sink">"sink"</option> })}
                    </select>
                </label>
                <Show when=move || stage.get() != "sink">
                    <label>{tr("workers")}" "<input type="number" min="1" data-testid="tune-workers" prop:value=move || workers.get()
                        placeholder=move || now(|n| Some(n.workers.to_string()))
                        on:input=move |ev| workers.set(event_target_value(&ev)) /></label>
                    <label>{tr("rate limit/s")}" "<input type="number" min="0" step="any" data-testid="tune-rate" prop:value=move || rate_limit.get()
                        placeholder=move || now(|n| n.rate_limit.map(|r| r.to_string()))
                        on:input=move |ev| rate_limit.set(event_target_value(&ev)) /></label>
                </Show>
                <Show when=is_async.clone()>
                    <label>{tr("concurrency")}" "<input type="number" min="1" data-testid="tune-concurrency" prop:value=move || concurrency.get()
                        placeholder=move || now(|n| n.concurrency.map(|c| c.to_string()))
                        on:input=move |ev| concurrency.set(event_target_value(&ev)) /></label>
                </Show>
                <Show when=move || stage.get() == "sink">
                    <label>{tr("batch size")}" "<input type="number" min="1" data-testid="tune-batch" prop:value=move || batch.get()
                        placeholder=sink_batch.clone()
                        on:input=move |ev| batch.set(event_target_value(&ev)) /></label>
                </Show>
                <button type="submit" data-testid="tune-apply">{tr("Apply")}</button>
                <span class="hint" role="status" data-testid="tune-message">{move || message.get()}</span>
            </fieldset>
        </form>
    }
}

/// Snapshots the diagnosis reads (about two seconds at the default rate).
const DIAGNOSIS_WINDOW: usize = 8;

/// A finding of the diagnosis in words.
pub fn finding_text(lang: crate::i18n::Lang, f: &shared::metrics::Finding) -> String {
    use shared::metrics::Finding;
    match f {
        Finding::Bottleneck { stage, held_up } if held_up.is_empty() => {
            t(lang, "Bottleneck: `{stage}` sets the pace of the pipeline.").replace("{stage}", stage)
        }
        Finding::Bottleneck { stage, held_up } => t(
            lang,
            "Bottleneck: `{stage}` sets the pace; it holds up {held}. Give it more workers or make its work cheaper.",
        )
        .replace("{stage}", stage)
        .replace("{held}", &held_up.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")),
        Finding::BlockingCall { stages, lag_ms } => t(
            lang,
            "Blocking call: the event loop stalls about {lag} ms at a time{inside}. Every async stage of the job waits; move the call to a thread stage or await it.",
        )
        .replace("{lag}", &crate::format::count(*lag_ms as i64))
        .replace(
            "{inside}",
            &if stages.is_empty() {
                String::new()
            } else {
                format!(" ({})", stages.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))
            },
        ),
        Finding::UnboundedGrowth { stage, grew_by } => t(
            lang,
            "Memory risk: the unbounded queue in front of `{stage}` only grows (+{n} items in the last few seconds). Bound it, with `when_full = \"block\"` to slow the producer.",
        )
        .replace("{stage}", stage)
        .replace("{n}", &crate::format::count(*grew_by as i64)),
    }
}

/// The snapshots kept for a job's charts, oldest first.
type History = std::collections::VecDeque<JobSnapshot>;

/// The snapshots a chart draws, from `from_ms` on: about one per pixel of
/// its width, so the cost of a redraw stays flat however much history is
/// kept.
///
/// The first snapshot of each time bucket is kept, with buckets a power of
/// two milliseconds wide counted from the job's start: as the window slides
/// the same snapshots stay chosen, so the lines do not shimmer.
pub fn drawn(h: &History, from_ms: u64) -> impl Iterator<Item = &JobSnapshot> {
    let first = h.iter().find(|s| s.elapsed_ms >= from_ms);
    let span = match (first, h.back()) {
        (Some(a), Some(b)) => b.elapsed_ms.saturating_sub(a.elapsed_ms),
        _ => 0,
    };
    let bucket = (span / MAX_DRAWN as u64).max(1).next_power_of_two();
    let last = h.len().saturating_sub(1);
    let mut prev = None;
    h.iter().enumerate().filter_map(move |(i, s)| {
        if s.elapsed_ms < from_ms {
            return None;
        }
        let b = s.elapsed_ms / bucket;
        let keep = prev != Some(b) || i == last;
        prev = Some(b);
        keep.then_some(s)
    })
}

/// One line per pipeline node, from `value` of each drawn snapshot.
fn per_node(h: &History, from: u64, value: fn(&NodeSnapshot) -> f64) -> Vec<Series> {
    let Some(last) = h.back() else {
        return Vec::new();
    };
    last.nodes
        .iter()
        .enumerate()
        .map(|(i, node)| Series {
            label: node.name.clone(),
            points: drawn(h, from)
                .filter_map(|s| {
                    // Nodes keep their order; match by name to be safe.
                    let n = s.nodes.get(i).filter(|n| n.name == node.name)?;
                    Some((s.elapsed_ms, value(n)))
                })
                .collect(),
        })
        .collect()
}

/// A labelled figure read off each snapshot.
type Line = (&'static str, fn(&JobSnapshot) -> f64);

/// One line per `(label, value)` of each drawn snapshot.
fn lines(h: &History, from: u64, values: &[Line]) -> Vec<Series> {
    values
        .iter()
        .map(|(label, f)| Series {
            label: (*label).to_owned(),
            points: drawn(h, from).map(|s| (s.elapsed_ms, f(s))).collect(),
        })
        .collect()
}

/// The tune events of a job: when (elapsed), the stage, the field, from
/// what, to what.
pub fn tunes(events: &[JobEvent]) -> impl Iterator<Item = (u64, &str, &str, f64, f64)> {
    events.iter().filter_map(|e| match &e.kind {
        EventKind::Tuned {
            stage,
            field,
            from,
            to,
        } => Some((e.elapsed_ms, stage.as_str(), field.as_str(), *from, *to)),
        EventKind::State { .. } => None,
    })
}

/// Chart markers for tune events: when, and what changed.
pub fn tune_markers(events: &[JobEvent]) -> Vec<(u64, String)> {
    tunes(events)
        .map(|(at, stage, field, from, to)| (at, format!("{stage} {field} {from} → {to}")))
        .collect()
}

/// Items still to settle at each node while a job drains: its queue, and
/// what its workers hold.
pub fn left_per_node(nodes: &[NodeSnapshot]) -> Vec<(String, u64)> {
    nodes
        .iter()
        .map(|n| {
            let done = n.items_out + n.filtered + n.dropped + n.dead_lettered + n.leftovers;
            let held = n.items_in.saturating_sub(done);
            (n.name.clone(), n.depth.max(held))
        })
        .collect()
}

/// One job: its pipeline, live; tuning; drain and abort; the final report.
#[component]
pub fn JobPage() -> impl IntoView {
    let lang = expect_context::<RwSignal<Lang>>();
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let link = expect_context::<LiveLink>();
    Effect::new(move |_| link.watch_job(&id()));
    let live = move || -> Option<JobSnapshot> { link.snapshots.get().get(&id()).cloned() };
    // A memo, so the detail fetch reacts to the job finishing, not to
    // every snapshot.
    let live_finished = Memo::new(move |_| {
        live()
            .and_then(|s| s.state)
            .is_some_and(|s| s.is_finished())
    });
    // Fetched again once the job finishes, for its report; `None` for an
    // id the server does not know.
    let detail = LocalResource::new(move || {
        let id = id();
        let _ = live_finished.get();
        async move { api::get_optional::<JobDetail>(&format!("/api/v1/jobs/{id}")).await }
    });
    // Only this page's job: moving from one job to another (the same
    // route) must not show the previous job's detail while the new one
    // loads.
    let found = move || {
        detail
            .get()
            .and_then(|d| d.ok().flatten())
            .filter(|d| d.summary.id == id())
    };
    let not_found = move || detail.get().is_some_and(|d| matches!(d, Ok(None)));
    // The newest snapshot: live, or for a finished run reopened later (from
    // memory or the store) the last one the server kept.
    let snapshot = move || -> Option<JobSnapshot> {
        live().or_else(|| found().map(|d| d.snapshot).filter(|s| !s.nodes.is_empty()))
    };
    // Finished as the live feed says, or as the server said when asked:
    // live controls are hidden for a finished run.
    let finished = Memo::new(move |_| {
        live_finished.get() || found().is_some_and(|d| d.summary.state.is_finished())
    });
    super::page_title(move || {
        found()
            .map(|d| format!("{} ({})", d.spec.name, d.summary.id))
            .unwrap_or_else(id)
    });
    let lesson = Memo::new(move |_| {
        found()
            .and_then(|d| d.spec.lesson)
            .and_then(|l| shared::lessons::get(&l))
    });
    // The last minutes of snapshots, for the charts: what the store kept
    // (a reopened run, or a page opened mid-run), then live ones.
    let history = RwSignal::new(History::new());
    Effect::new(move |_| {
        let id = id();
        // Another job on the same page (a variant, a replay): its history
        // starts afresh.
        history.update_untracked(|h| h.clear());
        leptos::task::spawn_local(async move {
            if let Ok(events) =
                api::get::<Vec<JobEvent>>(&format!("/api/v1/jobs/{id}/events")).await
            {
                link.add_events(&id, events);
            }
            let path = format!("/api/v1/jobs/{id}/metrics?step_ms=250");
            if let Ok(points) = api::get::<Vec<JobSnapshot>>(&path).await {
                // `try_`: the page may have been left meanwhile.
                history.try_update(|h| {
                    let live: Vec<JobSnapshot> = h.drain(..).collect();
                    h.extend(points);
                    // Live snapshots that came meanwhile are newer.
                    for s in live {
                        if h.back().is_none_or(|last| last.elapsed_ms < s.elapsed_ms) {
                            h.push_back(s);
                        }
                    }
                    while h.len() > CHART_POINTS {
                        h.pop_front();
                    }
                });
            }
        });
    });
    Effect::new(move |_| {
        if let Some(s) = link.snapshots.get().get(&id()).cloned() {
            history.update(|h| {
                if h.back().is_none_or(|last| last.elapsed_ms < s.elapsed_ms) {
                    h.push_back(s);
                    if h.len() > CHART_POINTS {
                        h.pop_front();
                    }
                }
            });
        }
    });
    let markers = Memo::new(move |_| {
        link.events
            .with(|m| m.get(&id()).map(|e| tune_markers(e)).unwrap_or_default())
    });
    // The charts' window: the last 1, 5 or 10 minutes of live history, or
    // the whole run at a coarser step from the store (0); and a pause that
    // freezes what they draw while the job goes on.
    let range_s = RwSignal::new(600_u64);
    let paused = RwSignal::new(false);
    let whole = RwSignal::new(None::<History>);
    Effect::new(move |_| {
        if range_s.get() != 0 {
            return;
        }
        let id = id();
        let elapsed = snapshot().map_or(0, |s| s.elapsed_ms);
        // About 600 points over the run, never finer than the live step.
        let step = (elapsed / 600).max(250);
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/jobs/{id}/metrics?step_ms={step}");
            if let Ok(points) = api::get::<Vec<JobSnapshot>>(&path).await {
                whole.try_set(Some(points.into_iter().collect()));
            }
        });
    });
    let plot = move |series: fn(&History, u64) -> Vec<Series>| {
        // A memo: each chart reads its plot several times per redraw.
        Memo::new(move |prev: Option<&Plot>| {
            if paused.get()
                && let Some(p) = prev
            {
                return p.clone();
            }
            let range = range_s.get() * 1000;
            let window = |h: &History| {
                let from = match h.back() {
                    Some(last) if range > 0 => last.elapsed_ms.saturating_sub(range),
                    _ => 0,
                };
                series(h, from)
            };
            let series = if range == 0 {
                whole
                    .with(|w| w.as_ref().map(window))
                    .unwrap_or_else(|| history.with(window))
            } else {
                history.with(window)
            };
            Plot {
                series,
                markers: markers.get(),
            }
        })
    };
    let throughput = plot(|h, from| per_node(h, from, |n| n.out_rate));
    let depth = plot(|h, from| per_node(h, from, |n| n.depth as f64));
    let latency = plot(|h, from| {
        lines(
            h,
            from,
            &[
                ("p50", |s| s.end_to_end.p50_us as f64),
                ("p95", |s| s.end_to_end.p95_us as f64),
                ("p99", |s| s.end_to_end.p99_us as f64),
            ],
        )
    });
    let troubles = plot(|h, from| {
        fn sum(s: &JobSnapshot, f: fn(&NodeSnapshot) -> u64) -> f64 {
            s.nodes.iter().map(f).sum::<u64>() as f64
        }
        lines(
            h,
            from,
            &[
                ("errors", |s| sum(s, |n| n.errors)),
                ("retries", |s| sum(s, |n| n.retries)),
                ("drops", |s| sum(s, |n| n.dropped)),
                ("timeouts", |s| sum(s, |n| n.timeouts)),
            ],
        )
    });
    let rss = plot(|h, from| lines(h, from, &[("RSS", |s| s.process.rss_bytes as f64)]));
    let threads = plot(|h, from| {
        lines(
            h,
            from,
            &[
                ("threads", |s| s.process.threads as f64),
                ("FDs", |s| s.process.open_fds as f64),
            ],
        )
    });
    let lag = plot(|h, from| {
        lines(
            h,
            from,
            &[("lag", |s| s.event_loop.as_ref().map_or(0.0, |l| l.lag_ms))],
        )
    });

    let message = RwSignal::new(String::new());
    let stop = move |mode: StopMode| {
        let in_flight = snapshot().map_or(0, |s| s.accounting.in_flight().max(0) as u64);
        stop_job(id(), mode, in_flight, message);
    };
    let draining =
        move || snapshot().and_then(|s| s.state) == Some(shared::metrics::JobState::Draining);
    // Items in flight when the drain was first seen, for its progress bar.
    let drain_from = RwSignal::new(0_i64);
    Effect::new(move |_| {
        if draining() && drain_from.get_untracked() == 0 {
            drain_from.set(snapshot().map_or(0, |s| s.accounting.in_flight()).max(1));
        }
    });
    let source_kind = move || {
        found()
            .map(|d| d.spec.source.kind().to_owned())
            .unwrap_or_default()
    };
    let states = move || snapshot().map(|s| s.node_states()).unwrap_or_default();
    let blocking = move || {
        snapshot()
            .and_then(|s| s.event_loop)
            .map(|l| l.blocking_stages)
            .unwrap_or_default()
    };
    view! {
        <Show when=move || !not_found() fallback=move || view! {
            <section class="card" data-testid="job-not-found">
                <h1>{tr("Job not found")}</h1>
                <p>{tr("No job has this id, here or in the store:")}" "<code>{id}</code></p>
                <p><a href="/jobs">{tr("Jobs")}</a>" · "<a href="/history">{tr("History")}</a></p>
            </section>
        }>
        <section data-testid="page-job">
            <h1>{move || found().map(|d| d.spec.name.clone()).unwrap_or_else(id)}</h1>
            {move || detail.get().and_then(|d| d.err()).map(|e| view! {
                <p class="card error" role="alert" data-testid="job-error">{e}</p>
            })}
            <p class="job-meta">
                <span data-testid="job-state" class=move || snapshot().and_then(|s| s.state).map(|s| format!("state state-{}", s.as_str())).unwrap_or_default()>
                    {move || snapshot().and_then(|s| s.state).or(found().map(|d| d.summary.state)).map(|s| t(lang.get(), s.as_str()).to_owned()).unwrap_or_else(|| "—".into())}
                </span>
                " · " <span data-testid="throughput">{move || snapshot().map(|s| rate(s.throughput)).unwrap_or_else(|| "—".into())}</span>
                " · p99 " {move || snapshot().map(|s| duration_ms(s.end_to_end.p99_us / 1000)).unwrap_or_else(|| "—".into())}
                " · " {move || snapshot().map(|s| duration_ms(s.elapsed_ms)).unwrap_or_else(|| "—".into())}
                " · " <span data-testid="event-loop">{move || match snapshot().and_then(|s| s.event_loop) {
                    None => String::new(),
                    Some(l) if l.blocking_stages.is_empty() => format!("event-loop lag {:.1} ms", l.lag_ms),
                    Some(l) => format!("event-loop lag {:.1} ms — blocked by {}", l.lag_ms, l.blocking_stages.join(", ")),
                }}</span>
            </p>
            {move || lesson.get().map(|l| view! { <LessonBanner lesson=l finished=finished /> })}
            {move || {
                let findings = history.with(|h| {
                    let recent: Vec<&JobSnapshot> = h.iter().skip(h.len().saturating_sub(DIAGNOSIS_WINDOW)).collect();
                    shared::metrics::diagnose(&recent)
                });
                (!findings.is_empty()).then(|| view! {
                    <div class="card diagnosis" data-testid="diagnosis" role="status">
                        <h2>{tr("Diagnosis")}</h2>
                        <ul>{findings.into_iter().map(|f| view! { <li data-testid="finding">{super::prose(&finding_text(lang.get(), &f))}</li> }).collect_view()}</ul>
                    </div>
                })
            }}
            <Show when=move || !finished.get()>
                <div class="actions">
                    <button data-testid="drain" on:click=move |_| stop(StopMode::Drain)>{tr("Drain")}</button>
                    <button data-testid="abort" class="danger" on:click=move |_| stop(StopMode::Abort)>{tr("Abort")}</button>
                    <span class="hint" role="status">{move || message.get()}</span>
                </div>
            </Show>
            <Show when=draining>
                <div class="card drain" data-testid="drain-progress" role="status">
                    {move || {
                        let left = snapshot().map_or(0, |s| s.accounting.in_flight().max(0));
                        let from = drain_from.get().max(left).max(1);
                        let done = 100.0 - left as f64 / from as f64 * 100.0;
                        view! {
                            <strong>{tr("Draining")}": "<span data-testid="drain-left">{left}</span>" "{tr("items left")}</strong>
                            <div class="bar"><div class="fill" style=format!("width: {done:.0}%")></div></div>
                        }
                    }}
                    <ul class="left-per-stage">
                        {move || snapshot().map(|s| left_per_node(&s.nodes).into_iter().map(|(name, left)| view! {
                            <li data-testid="drain-stage">{name}": "{left}</li>
                        }).collect_view())}
                    </ul>
                </div>
            </Show>
            <Show when=move || !finished.get()>
                {move || found().map(|d| view! { <TunePanel job=id() spec=d.spec current=Signal::derive(snapshot) /> })}
            </Show>
            <div class="pipeline" data-testid="pipeline">
                <div class=move || {
                        let mut c = String::from("node node-source");
                        if snapshot().is_some_and(|s| s.source.blocked >= shared::metrics::BACKPRESSURED) {
                            c += " node-backpressured";
                        }
                        if focuses_node("source", lesson.get()) {
                            c += " focus";
                        }
                        c
                    } data-testid="node-source">
                    <div class="node-name">{tr("source")}</div>
                    <div class="node-meta">{source_kind}</div>
                    <div class="node-meta">{move || snapshot().map(|s| format!("produced {}", count(s.accounting.produced))).unwrap_or_default()}</div>
                    // Where the source's own time goes: busy making items,
                    // blocked on a full first queue, or idle waiting for input.
                    <div class="node-meta" data-testid="source-time">{move || snapshot().map(|s| {
                        let t = &s.source;
                        format!("{} · busy {:.0}% · blocked {:.0}% · idle {:.0}%", rate(t.rate), t.busy * 100.0, t.blocked * 100.0, t.idle * 100.0)
                    }).unwrap_or_default()}</div>
                </div>
                {move || snapshot().map(|s| {
                    let states = states();
                    let blocking = blocking();
                    let lesson = lesson.get();
                    let worlds: Vec<Option<shared::spec::Runtime>> = s.nodes.iter().map(|n| n.runtime).collect();
                    let mut after_bridge = false;
                    s.nodes.into_iter().zip(states).enumerate().map(|(i, (n, state))| {
                        if n.kind == Some(shared::metrics::NodeKind::Bridge) {
                            // A bridge is where the edge changes worlds:
                            // drawn on the edge, not as a stage.
                            after_bridge = true;
                            let from = i.checked_sub(1).and_then(|j| worlds[j]);
                            let to = worlds.get(i + 1).copied().flatten();
                            return view! { <BridgeBadge node=n state=state from to /> }.into_any();
                        }
                        let arrow = (!std::mem::take(&mut after_bridge)).then(|| view! { <span class="arrow" aria-hidden="true">"→"</span> });
                        let focus = focuses_node(&n.name, lesson);
                        let blocks = blocking.contains(&n.name);
                        view! { {arrow}<NodeCard node=n state=state blocking=blocks focus=focus /> }.into_any()
                    }).collect_view()
                })}
            </div>
            <Legend />
            <div class="chart-controls" data-testid="chart-controls">
                <label>{tr("Show")}" "
                    <select data-testid="chart-range" on:change=move |ev| {
                        range_s.set(event_target_value(&ev).parse().unwrap_or(600));
                    }>
                        <option value="60">{tr("last minute")}</option>
                        <option value="300">{tr("last 5 minutes")}</option>
                        <option value="600" selected=true>{tr("last 10 minutes")}</option>
                        <option value="0">{tr("whole run")}</option>
                    </select>
                </label>
                <button type="button" class="secondary" data-testid="chart-pause" aria-pressed=move || paused.get().to_string()
                    on:click=move |_| paused.update(|p| *p = !*p)>
                    {move || if paused.get() { tr("Resume")() } else { tr("Pause")() }}
                </button>
            </div>
            <div class="charts" data-history=move || history.with(|h| h.len())>
                <Chart title=tr("throughput per stage") testid="chart-throughput" plot=throughput unit=rate focus=Signal::derive(move || focuses_chart("chart-throughput", lesson.get())) />
                <Chart title=tr("queue depth") testid="chart-depth" plot=depth unit=crate::format::figure focus=Signal::derive(move || focuses_chart("chart-depth", lesson.get())) />
                <Chart title=tr("end-to-end latency") testid="chart-latency" plot=latency unit=|x| duration_ms(x as u64 / 1000) focus=Signal::derive(move || focuses_chart("chart-latency", lesson.get())) />
                <Chart title=tr("errors · retries · drops · timeouts") testid="chart-troubles" plot=troubles unit=crate::format::figure focus=Signal::derive(move || focuses_chart("chart-troubles", lesson.get())) />
                <Show when=move || snapshot().is_some_and(|s| s.event_loop.is_some())>
                    <Chart title=tr("event-loop lag (this job's runtime)") testid="chart-lag" plot=lag unit=|x| format!("{x:.1} ms") focus=Signal::derive(move || focuses_chart("chart-lag", lesson.get())) />
                </Show>
                <Chart title=tr("server memory (RSS, whole process)") testid="chart-rss" plot=rss unit=|x| format!("{:.0} MiB", x / 1048576.0) focus=Signal::derive(move || focuses_chart("chart-rss", lesson.get())) />
                <Chart title=tr("server threads · open files (whole process)") testid="chart-threads" plot=threads unit=|x| format!("{x:.0}") />
            </div>
            <p class="accounting" data-testid="accounting">
                {move || snapshot().map(|s| {
                    let a = s.accounting;
                    if s.state.is_some_and(|st| st.is_finished()) {
                        a.to_string()
                    } else {
                        format!(
                            "produced {} · sunk {} · filtered {} · dead-lettered {} · dropped {} · {} in flight",
                            a.produced, a.sunk, a.filtered, a.dead_lettered, a.dropped_by_policy, a.in_flight()
                        )
                    }
                }).unwrap_or_default()}
            </p>
            {move || found().and_then(|d| d.report).map(|r| view! { <Report report=r /> })}
        </section>
        </Show>
    }
}

/// Starts a new job over a finished job's leftovers, then opens it.
#[component]
fn ReplayButton(job: String) -> impl IntoView {
    let navigate = leptos_router::hooks::use_navigate();
    let message = RwSignal::new(String::new());
    let replay = move |_| {
        let (job, navigate) = (job.clone(), navigate.clone());
        leptos::task::spawn_local(async move {
            let body = shared::api::ReplayRequest::default();
            match api::send::<_, api::Created>("POST", &format!("/api/v1/jobs/{job}/replay"), &body)
                .await
            {
                Ok(d) => navigate(&format!("/jobs/{}", d.id), Default::default()),
                Err(e) => {
                    message.try_set(e);
                }
            }
        });
    };
    view! {
        <div class="actions">
            <button data-testid="replay-leftovers" on:click=replay>{tr("Replay leftovers")}</button>
            <span class="hint error" role="status">{move || message.get()}</span>
        </div>
    }
}

/// A finished job's report: the accounting buckets, latencies, each node's
/// counts, why items were dropped, and where dead letters and leftovers are.
#[component]
pub fn Report(report: JobReport) -> impl IntoView {
    let a = report.accounting;
    let buckets = [
        ("sunk", a.sunk),
        ("filtered", a.filtered),
        ("dead-lettered", a.dead_lettered),
        ("dropped by policy", a.dropped_by_policy),
        ("leftovers", a.leftovers),
    ];
    let sum: u64 = buckets.iter().map(|b| b.1).sum();
    let e = report.end_to_end;
    view! {
        <section class="card report" data-testid="report">
            <h2>{tr("Final report")}</h2>
            <p>
                <span class=format!("state state-{}", report.state.as_str())>{report.state.as_str()}</span>
                " · " {format!("{:.1} s", report.elapsed_s)} " · " {rate(report.throughput)}
                " · p50 " {duration_ms(e.p50_us / 1000)} " · p95 " {duration_ms(e.p95_us / 1000)} " · p99 " {duration_ms(e.p99_us / 1000)}
            </p>
            {report.error.map(|err| view! { <p class="error" data-testid="report-error">{err}</p> })}
            <table class="jobs buckets">
                <tbody>
                    <tr><th>{tr("Produced")}</th><td class="num" data-testid="report-produced">{count(a.produced)}</td></tr>
                    {buckets.into_iter().enumerate().map(|(i, (name, n))| view! {
                        <tr data-testid="bucket"><td>{if i == 0 { "= " } else { "+ " }}{name}</td><td class="num" data-bucket=name>{count(n)}</td></tr>
                    }).collect_view()}
                    <tr class="total"><th>{tr("Sum of buckets")}</th><td class="num" data-testid="report-sum">{count(sum)}</td></tr>
                </tbody>
            </table>
            <p data-testid="report-balanced" class=if report.balanced { "ok" } else { "error" }>
                {tr(if report.balanced { "Every produced item is accounted for." } else { "The buckets do not add up to what was produced." })}
            </p>
            {(report.skipped_lines > 0).then(|| view! {
                <p>{tr("Blank lines the source skipped (not items)")}": "<span class="num" data-testid="report-skipped-lines">{report.skipped_lines}</span></p>
            })}
            <table class="jobs nodes">
                <thead><tr><th>{tr("Node")}</th><th>{tr("in")}</th><th>{tr("out")}</th><th>{tr("filtered")}</th><th>{tr("dropped")}</th><th>{tr("errors")}</th><th>{tr("dead")}</th><th>{tr("retries")}</th><th>{tr("timeouts")}</th><th>{tr("leftovers")}</th><th>{tr("duplicate rows")}</th></tr></thead>
                <tbody>
                    {report.nodes.into_iter().map(|n| view! {
                        <tr><td>{n.name}</td><td class="num">{count(n.items_in)}</td><td class="num">{count(n.items_out)}</td><td class="num">{count(n.filtered)}</td>
                        <td class="num">{count(n.dropped)}</td><td class="num">{count(n.errors)}</td><td class="num">{count(n.dead_lettered)}</td>
                        <td class="num">{count(n.retries)}</td><td class="num">{count(n.timeouts)}</td><td class="num">{count(n.leftovers)}</td>
                        <td class="num" data-testid="report-duplicates">{count(n.duplicates)}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
            {(!report.drop_reasons.is_empty()).then(|| view! {
                <h3>{tr("Why items were dropped")}</h3>
                <ul>{report.drop_reasons.into_iter().map(|(why, n)| view! { <li>{why}": "{n}</li> }).collect_view()}</ul>
            })}
            {report.dead_letters_file.map(|f| view! {
                <p>{tr("Dead letters")}": "<code>{f}</code></p>
                <Records job=report.job.clone() kind=Kind::DeadLetters />
            })}
            {(report.accounting.leftovers > 0).then(|| view! { <ReplayButton job=report.job.clone() /> })}
            {report.leftovers_file.map(|f| view! {
                <p>{tr("Leftovers")}": "<code data-testid="leftovers-file">{f}</code></p>
                <Records job=report.job.clone() kind=Kind::Leftovers />
            })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tune_events_become_labelled_markers() {
        let events = vec![
            JobEvent {
                at_ms: 1,
                elapsed_ms: 1500,
                kind: EventKind::Tuned {
                    stage: "io".into(),
                    field: "workers".into(),
                    from: 4.0,
                    to: 2.0,
                },
            },
            JobEvent {
                at_ms: 2,
                elapsed_ms: 1600,
                kind: EventKind::State {
                    state: shared::metrics::JobState::Draining,
                    reason: None,
                },
            },
        ];
        assert_eq!(
            tune_markers(&events),
            vec![(1500, "io workers 4 → 2".to_owned())]
        );
    }

    #[test]
    fn drawn_snapshots_are_few_and_stay_chosen_as_the_window_slides() {
        let snap = |ms: u64| JobSnapshot {
            elapsed_ms: ms,
            ..Default::default()
        };
        // 2400 samples at 4 Hz, then the window slides by one sample.
        let a: History = (0..2400).map(|i| snap(1000 + i * 250)).collect();
        let b: History = (1..2401).map(|i| snap(1000 + i * 250)).collect();
        let pick = |h: &History| drawn(h, 0).map(|s| s.elapsed_ms).collect::<Vec<_>>();
        let (pa, pb) = (pick(&a), pick(&b));
        assert!(pa.len() <= MAX_DRAWN + 1, "{}", pa.len());
        assert!(pa.len() >= MAX_DRAWN / 2, "{}", pa.len());
        assert_eq!(
            pa.last(),
            Some(&a.back().unwrap().elapsed_ms),
            "the newest is drawn"
        );
        // Apart from the ends, the same instants are drawn in both.
        let inner = |p: &[u64]| p[1..p.len() - 1].to_vec();
        let shared = inner(&pa).iter().filter(|x| pb.contains(x)).count();
        assert!(shared + 2 >= inner(&pa).len(), "{shared} of {}", pa.len());
        let few: History = (0..10).map(|i| snap(i * 250)).collect();
        assert_eq!(pick(&few).len(), 10, "short histories are drawn whole");
    }

    #[test]
    fn queue_bars_show_share_of_capacity_or_growth_when_unbounded() {
        use shared::spec::Capacity::{Bounded, Unbounded};
        assert_eq!(queue_fill(500, Some(Bounded(1000))), 50.0);
        assert_eq!(queue_fill(5000, Some(Bounded(1000))), 100.0);
        assert_eq!(queue_fill(0, Some(Unbounded)), 0.0);
        let (small, big) = (
            queue_fill(100, Some(Unbounded)),
            queue_fill(60_000, Some(Unbounded)),
        );
        assert!(0.0 < small && small < big && big < 100.0, "{small} {big}");
        assert_eq!(queue_fill(5_000_000, Some(Unbounded)), 100.0);
        assert_eq!(queue_fill(7, None), 0.0, "bridges without a queue");
    }

    #[test]
    fn what_is_left_counts_the_queue_or_what_workers_hold() {
        let node = |depth, items_in, items_out| NodeSnapshot {
            name: "n".into(),
            depth,
            items_in,
            items_out,
            ..Default::default()
        };
        assert_eq!(left_per_node(&[node(5, 10, 8)]), vec![("n".into(), 5)]);
        assert_eq!(left_per_node(&[node(0, 10, 7)]), vec![("n".into(), 3)]);
    }
}
