//! A job's pipeline drawn: node cards coloured by state, the broker edge's
//! figures, bridge badges and the legend.

use leptos::prelude::*;
use shared::metrics::{AutoSnapshot, NodeSnapshot, NodeState};

use super::auto::{measured_label, range_label};

use crate::format::{count, micros};
use crate::pages::{rate, tr};

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
pub(super) fn NodeCard(
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
                // A finished stage's workers have exited: say what ran.
                {node.configured_workers.filter(|c| *c != node.workers).map(|c| view! {
                    " "<span class="configured" data-testid="configured-workers" title="the workers the spec or the last tune asked for">"("{tr("of")}" "{c}")"</span>
                })}
                {node.concurrency.map(|c| view! { " · ≤"<span data-testid="concurrency">{c}</span>" "{tr("in flight")} })}
            </div>
            {node.auto.clone().map(|a| view! { <AutoFigures stage=node.name.clone() auto=a /> })}
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

/// A stage whose limit the engine chooses: the limit it chose, its range,
/// whether a manual tune pinned it, why it last changed, and the service
/// time it compares with its baseline.
#[component]
fn AutoFigures(stage: String, auto: AutoSnapshot) -> impl IntoView {
    let field = if auto.field == "concurrency" {
        "concurrency"
    } else {
        "workers"
    };
    let range = range_label(&auto);
    let measured = measured_label(&auto);
    let pinned = auto.pinned;
    let id = |what: &str| format!("auto-{what}{stage}");
    view! {
        <div class="auto" class:pinned=pinned data-testid=id("") data-pinned=pinned.to_string() data-limit=auto.limit>
            <div class="node-meta">
                <span class="auto-badge" title="the engine chooses this limit">{tr("auto")}</span>" "
                {tr(field)}" "<strong data-testid=id("limit-")>{auto.limit}</strong>" "
                <span data-testid=id("range-") title="the range the controller keeps to">"("{range}")"</span>
            </div>
            {pinned.then(|| view! { <div class="node-meta auto-pinned" data-testid=id("pinned-") role="status">{tr("pinned (manual tune)")}</div> })}
            {auto.reason.map(|r| {
                let title = r.clone();
                view! { <div class="node-meta auto-reason" data-testid=id("reason-") title=title>{r}</div> }
            })}
            {measured.map(|(ratio, base)| view! {
                <div class="node-meta" data-testid=id("measured-") title="the last service time over the controller's baseline (the lowest it saw at a comfortable load)">
                    {tr("service")}" "{ratio}" "{tr("baseline")}" ("{base}")"
                </div>
            })}
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
pub(super) fn BridgeBadge(
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
    format!("{} / {}", micros(l.p50_us), micros(l.p99_us))
}

/// What the node colours mean.
#[component]
pub(super) fn Legend() -> impl IntoView {
    view! {
        <ul class="node-legend" data-testid="node-legend">
            {[NodeState::Bottleneck, NodeState::Backpressured, NodeState::Busy, NodeState::Idle].map(|s| view! {
                <li><span class=format!("key node-{}", s.as_str())></span>{tr(s.as_str())}</li>
            }).collect_view()}
            <li class="hint">{tr("bottleneck: busy, holding up the stages before it · backpressured: waiting for room downstream")}</li>
        </ul>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
