//! One job's page: pipeline nodes, tuning, charts, drain and abort, and the report.
//!
//! The page itself is here; what it draws is below it: [`nodes`] (node
//! cards, the broker edge, bridge badges, the legend), [`tune`] (the live
//! knobs), [`series`] (what the charts draw from the kept snapshots),
//! [`auto`] (stages whose limit the engine chooses: their limit over time,
//! the controller's changes, and the job's timeline of events),
//! [`diagnosis`] (the findings in words) and [`report`] (a finished job's
//! report and the replay of its leftovers).

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use shared::api::{JobDetail, StopMode};
use shared::metrics::{JobEvent, JobSnapshot, NodeSnapshot};

use super::charts::{CHART_POINTS, Chart, Plot, Series};
use super::lessons::{LessonBanner, focuses_chart, focuses_node};
use super::{rate, stop_job, tr};
use crate::api;
use crate::format::{count, duration_ms};
use crate::i18n::{Lang, t};
use crate::live::LiveLink;

mod auto;
mod diagnosis;
mod nodes;
mod report;
mod series;
mod tune;

pub use auto::{auto_markers, event_rows};
pub use report::Report;
pub use series::{left_per_node, tune_markers, tunes};

use auto::limit_series;

use auto::EventList;
use diagnosis::{DIAGNOSIS_WINDOW, finding_text};
use nodes::{BridgeBadge, Legend, NodeCard};
use series::{History, lines, per_node};
use tune::TunePanel;

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
    // The limit chart's markers: the controllers' changes, with their
    // reasons.
    let auto_marks = Memo::new(move |_| {
        link.events
            .with(|m| m.get(&id()).map(|e| auto_markers(e)).unwrap_or_default())
    });
    let timeline = Memo::new(move |_| {
        link.events
            .with(|m| m.get(&id()).map(|e| event_rows(e)).unwrap_or_default())
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
    let plot_marked = move |series: fn(&History, u64) -> Vec<Series>,
                            markers: Memo<Vec<(u64, String)>>| {
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
    let plot = move |series: fn(&History, u64) -> Vec<Series>| plot_marked(series, markers);
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
    let limit = plot_marked(limit_series, auto_marks);
    // A job with a stage whose limit the engine chooses, as the spec says
    // or as the snapshots show.
    let has_auto = Memo::new(move |_| {
        found().is_some_and(|d| d.spec.stages.iter().any(|s| s.auto_range().is_some()))
            || snapshot().is_some_and(|s| s.nodes.iter().any(|n| n.auto.is_some()))
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
                // First and across the row: for an auto stage, what the
                // engine chose and why is what the page is about.
                <Show when=move || has_auto.get()>
                    <Chart title=tr("limit the engine chose (auto stages)") testid="chart-limit" plot=limit unit=crate::format::figure focus=Signal::derive(move || focuses_chart("chart-limit", lesson.get())) />
                </Show>
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
            <Show when=move || timeline.with(|t| !t.is_empty())>
                <EventList rows=timeline />
            </Show>
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
