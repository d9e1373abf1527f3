//! The dashboard's pages: the live job table, the template gallery, and a
//! job's page with its nodes, tuning, drain and abort, and final report.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use shared::api::{JobDetail, StopMode, StopRequest, TemplateInfo};
use shared::metrics::{JobSnapshot, NodeSnapshot, TuneRequest};

use crate::api;
use crate::format::duration_ms;
use crate::i18n::{Lang, t};
use crate::live::LiveLink;

/// A reactive translation of `key` in the chosen language.
fn tr(key: &'static str) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
    let lang = expect_context::<RwSignal<Lang>>();
    move || t(lang.get(), key)
}

fn rate(x: f64) -> String {
    if x >= 10_000.0 {
        format!("{:.1}k/s", x / 1000.0)
    } else {
        format!("{x:.0}/s")
    }
}

/// Running and recent jobs, live.
#[component]
pub fn JobsPage() -> impl IntoView {
    let link = expect_context::<LiveLink>();
    link.watch_jobs();
    let rows = move || {
        link.jobs
            .get()
            .into_iter()
            .map(|j| {
                let href = format!("/jobs/{}", j.id);
                let state = j.state.as_str();
                view! {
                    <tr data-testid="job-row">
                        <td><a href=href>{j.name.clone()}</a></td>
                        <td>{j.template.clone().unwrap_or_default()}</td>
                        <td><span class=format!("state state-{state}") data-testid="job-state">{state}</span></td>
                        <td class="num">{j.accounting.sunk}" / "{j.accounting.produced}</td>
                        <td class="num">{rate(j.throughput)}</td>
                        <td class="num">{duration_ms(j.p99_us / 1000)}</td>
                        <td class="num">{duration_ms(j.elapsed_ms)}</td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <section class="card" data-testid="page-jobs">
            <h1>{tr("Jobs")}</h1>
            <Show
                when=move || !link.jobs.get().is_empty()
                fallback=|| view! { <p>"No jobs yet. Start one from " <a href="/new">"New job"</a> "."</p> }
            >
                <table class="jobs">
                    <thead><tr><th>{tr("Name")}</th><th>{tr("Template")}</th><th>{tr("State")}</th><th>{tr("Sunk / produced")}</th><th>{tr("Throughput")}</th><th>"P99"</th><th>{tr("Elapsed")}</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </Show>
        </section>
    }
}

/// The article's scenarios, each startable with one click.
#[component]
pub fn NewJobPage() -> impl IntoView {
    let templates = LocalResource::new(|| api::get::<Vec<TemplateInfo>>("/api/v1/templates"));
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let start = move |name: String| {
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let body = serde_json::json!({"template": name});
            match api::send::<_, JobDetail>("POST", "/api/v1/jobs", &body).await {
                Ok(d) => navigate(&format!("/jobs/{}", d.summary.id), Default::default()),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let editor = RwSignal::new(String::from(
        "name = \"my-pipeline\"\nsource = { kind = \"synthetic\", count = 10000 }\n\n[[stages]]\nname = \"work\"\nruntime = \"thread\"\nworkers = 4\nop = { kind = \"sleep\", latency = { dist = \"uniform\", min_ms = 1.0, max_ms = 5.0 } }\n",
    ));
    let problems = RwSignal::new(Vec::<(String, String)>::new());
    let verdict = RwSignal::new(String::new());
    let navigate2 = use_navigate();
    let check = move |start_it: bool| {
        let navigate = navigate2.clone();
        let toml = editor.get_untracked();
        leptos::task::spawn_local(async move {
            let path = if start_it {
                "/api/v1/jobs"
            } else {
                "/api/v1/validate"
            };
            if start_it {
                match api::post_toml::<JobDetail>(path, &toml).await {
                    Ok(d) => navigate(&format!("/jobs/{}", d.summary.id), Default::default()),
                    Err(e) => {
                        verdict.set(e.message.clone());
                        problems.set(e.fields);
                    }
                }
            } else {
                match api::post_toml::<serde_json::Value>(path, &toml).await {
                    Ok(_) => {
                        problems.set(Vec::new());
                        verdict.set("valid".into());
                    }
                    Err(e) => {
                        verdict.set(format!("{} problem(s)", e.fields.len().max(1)));
                        problems.set(e.fields);
                    }
                }
            }
        });
    };
    let check2 = check.clone();
    view! {
        <section data-testid="page-new">
            <h1>{tr("New job")}</h1>
            <details class="card editor" data-testid="editor">
                <summary>{tr("Write a spec (TOML)")}</summary>
                <label for="spec">"Spec"</label>
                <textarea id="spec" rows="12" data-testid="spec" prop:value=move || editor.get()
                    on:input=move |ev| editor.set(event_target_value(&ev))></textarea>
                <div class="actions">
                    <button data-testid="validate" on:click=move |_| check(false)>{tr("Validate")}</button>
                    <button data-testid="start-spec" on:click=move |_| check2(true)>{tr("Start")}</button>
                    <span class="hint" data-testid="verdict">{move || verdict.get()}</span>
                </div>
                <ul class="problems">
                    {move || problems.get().into_iter().map(|(path, message)| view! {
                        <li data-testid="problem"><code data-testid="problem-path">{path}</code>": "{message}</li>
                    }).collect_view()}
                </ul>
            </details>
            <Show when=move || error.get().is_some()>
                <p class="error" data-testid="error">{move || error.get()}</p>
            </Show>
            <Suspense fallback=|| view! { <p>"Loading templates…"</p> }>
                <div class="gallery">
                    {move || templates.get().map(|r| match r {
                        Ok(list) => list.into_iter().map(|t| {
                            let name = t.name.clone();
                            let start = start.clone();
                            view! {
                                <article class="card template" data-testid=format!("template-{}", t.name)>
                                    <h2>{t.name.clone()}</h2>
                                    <p>{t.description.clone()}</p>
                                    <button data-testid="start" on:click=move |_| start(name.clone())>{tr("Start")}</button>
                                </article>
                            }
                        }).collect_view().into_any(),
                        Err(e) => view! { <p class="error">{e}</p> }.into_any(),
                    })}
                </div>
            </Suspense>
        </section>
    }
}

/// A node's status: the colour of its card.
fn status(n: &NodeSnapshot) -> &'static str {
    if n.blocked > 0.3 {
        "backpressured"
    } else if n.busy > 0.5 {
        "busy"
    } else {
        "idle"
    }
}

#[component]
fn NodeCard(node: NodeSnapshot) -> impl IntoView {
    let fill = match node.capacity {
        Some(shared::spec::Capacity::Bounded(c)) if c > 0 => {
            (node.depth as f64 / c as f64 * 100.0).min(100.0)
        }
        _ => 0.0,
    };
    let testid = format!("node-{}", node.name);
    view! {
        <div class=format!("node node-{}", status(&node)) data-testid=testid>
            <div class="node-name">{node.name.clone()}</div>
            <div class="node-meta">
                {node.runtime.map(|r| r.to_string()).unwrap_or_default()}" ×"
                <span data-testid="workers">{node.workers}</span>
            </div>
            <div class="bar" title="queue depth"><div class="fill" style=format!("width: {fill:.0}%")></div></div>
            <div class="node-meta" data-testid="depth">"queue "{node.depth}</div>
            <div class="node-meta">"out "{rate(node.out_rate)}" · busy "{format!("{:.0}%", node.busy * 100.0)}</div>
        </div>
    }
}

/// Live knobs of a running job: one stage's workers, concurrency and rate
/// limit, or the sink's batching. Kept apart from the node cards, which are
/// redrawn with every snapshot, so what one types is not reset.
#[component]
fn TunePanel(job: String, spec: shared::spec::PipelineSpec) -> impl IntoView {
    let stages: Vec<(String, bool)> = spec
        .stages
        .iter()
        .map(|s| (s.name.clone(), s.runtime == shared::spec::Runtime::Async))
        .collect();
    let batches = spec.sink.batch().is_some();
    let first = stages.first().map(|s| s.0.clone()).unwrap_or_default();
    let stage = RwSignal::new(first);
    let workers = RwSignal::new(String::new());
    let concurrency = RwSignal::new(String::new());
    let rate_limit = RwSignal::new(String::new());
    let batch = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let is_async = {
        let stages = stages.clone();
        move || stages.iter().any(|(n, a)| *a && *n == stage.get())
    };
    let apply = move |_| {
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
            match api::send::<_, JobDetail>("PATCH", &format!("/api/v1/jobs/{job}"), &req).await {
                Ok(_) => message.set("applied".into()),
                Err(e) => message.set(e),
            }
        });
    };
    let options = stages
        .iter()
        .map(|(n, _)| view! { <option value=n.clone()>{n.clone()}</option> })
        .collect_view();
    view! {
        <fieldset class="tune" data-testid="tune">
            <legend>"Tune"</legend>
            <label>"stage "
                <select data-testid="tune-stage" on:change=move |ev| stage.set(event_target_value(&ev))>
                    {options}
                    {batches.then(|| view! { <option value="sink">"sink"</option> })}
                </select>
            </label>
            <Show when=move || stage.get() != "sink">
                <label>"workers "<input type="number" min="1" data-testid="tune-workers" prop:value=move || workers.get()
                    on:input=move |ev| workers.set(event_target_value(&ev)) /></label>
                <label>"rate limit/s "<input type="number" min="0" data-testid="tune-rate" prop:value=move || rate_limit.get()
                    on:input=move |ev| rate_limit.set(event_target_value(&ev)) /></label>
            </Show>
            <Show when=is_async.clone()>
                <label>"concurrency "<input type="number" min="1" data-testid="tune-concurrency" prop:value=move || concurrency.get()
                    on:input=move |ev| concurrency.set(event_target_value(&ev)) /></label>
            </Show>
            <Show when=move || stage.get() == "sink">
                <label>"batch size "<input type="number" min="1" data-testid="tune-batch" prop:value=move || batch.get()
                    on:input=move |ev| batch.set(event_target_value(&ev)) /></label>
            </Show>
            <button data-testid="tune-apply" on:click=apply>{tr("Apply")}</button>
            <span class="hint" data-testid="tune-message">{move || message.get()}</span>
        </fieldset>
    }
}

/// Points kept per chart: ten minutes at the default 4 snapshots a second.
const CHART_POINTS: usize = 2400;

/// A line chart drawn as SVG, scaled to its largest value.
#[component]
fn Chart(
    /// What it shows (translated).
    #[prop(into)]
    title: Signal<&'static str>,
    /// For browser tests.
    testid: &'static str,
    /// The values, oldest first.
    values: Signal<Vec<f64>>,
    /// How to print the newest value.
    unit: fn(f64) -> String,
) -> impl IntoView {
    const W: f64 = 360.0;
    const H: f64 = 90.0;
    let points = move || {
        let v = values.get();
        let max = v.iter().copied().fold(0.0_f64, f64::max).max(1e-9);
        let n = v.len().max(2) as f64 - 1.0;
        v.iter()
            .enumerate()
            .map(|(i, y)| {
                format!(
                    "{:.1},{:.1}",
                    i as f64 / n * W,
                    H - y / max * (H - 4.0) - 2.0
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let last = move || values.get().last().map(|x| unit(*x)).unwrap_or_default();
    view! {
        <figure class="chart" data-testid=testid>
            <figcaption>{move || title.get()}" "<strong>{last}</strong></figcaption>
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-label=move || title.get()>
                <polyline fill="none" stroke="currentColor" stroke-width="1.5" points=points />
            </svg>
        </figure>
    }
}

/// One job: its pipeline, live; tuning; drain and abort; the final report.
#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let link = expect_context::<LiveLink>();
    Effect::new(move |_| link.watch_job(&id()));
    let detail = LocalResource::new(move || {
        let id = id();
        async move { api::get::<JobDetail>(&format!("/api/v1/jobs/{id}")).await }
    });
    let snapshot = move || -> Option<JobSnapshot> { link.snapshots.get().get(&id()).cloned() };
    let finished = move || {
        snapshot()
            .and_then(|s| s.state)
            .is_some_and(|s| s.is_finished())
    };
    // The last minutes of snapshots, for the charts: what the store kept
    // (a reopened run, or a page opened mid-run), then live ones.
    let history = RwSignal::new(std::collections::VecDeque::<JobSnapshot>::new());
    Effect::new(move |_| {
        let id = id();
        leptos::task::spawn_local(async move {
            let path = format!("/api/v1/jobs/{id}/metrics?step_ms=250");
            if let Ok(points) = api::get::<Vec<JobSnapshot>>(&path).await {
                history.update(|h| {
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
    let throughput = Signal::derive(move || history.get().iter().map(|s| s.throughput).collect());
    let depth = Signal::derive(move || {
        history
            .get()
            .iter()
            .map(|s| s.nodes.iter().map(|n| n.depth as f64).sum())
            .collect()
    });
    let p99 = Signal::derive(move || {
        history
            .get()
            .iter()
            .map(|s| s.end_to_end.p99_us as f64)
            .collect()
    });
    let rss = Signal::derive(move || {
        history
            .get()
            .iter()
            .map(|s| s.process.rss_bytes as f64)
            .collect()
    });

    let message = RwSignal::new(String::new());
    let stop = move |mode: StopMode| {
        let id = id();
        if mode == StopMode::Abort {
            let in_flight = snapshot().map_or(0, |s| s.accounting.in_flight());
            let ok = web_sys::window()
                .and_then(|w| w.confirm_with_message(&format!("Abort? {in_flight} queued or in-flight items will go to the leftovers file.")).ok())
                .unwrap_or(false);
            if !ok {
                return;
            }
        }
        leptos::task::spawn_local(async move {
            let req = StopRequest {
                mode,
                deadline_ms: None,
            };
            if let Err(e) =
                api::send::<_, JobDetail>("POST", &format!("/api/v1/jobs/{id}/stop"), &req).await
            {
                message.set(e);
            }
        });
    };
    view! {
        <section data-testid="page-job">
            <h1>{move || detail.get().and_then(|d| d.ok()).map(|d| d.spec.name.clone()).unwrap_or_else(id)}</h1>
            <p class="job-meta">
                <span data-testid="job-state">{move || snapshot().and_then(|s| s.state).map(|s| s.to_string()).unwrap_or_default()}</span>
                " · " <span data-testid="throughput">{move || snapshot().map(|s| rate(s.throughput)).unwrap_or_default()}</span>
                " · p99 " {move || snapshot().map(|s| duration_ms(s.end_to_end.p99_us / 1000)).unwrap_or_default()}
                " · " {move || snapshot().map(|s| duration_ms(s.elapsed_ms)).unwrap_or_default()}
            </p>
            <div class="actions">
                <button data-testid="drain" disabled=finished on:click=move |_| stop(StopMode::Drain)>{tr("Drain")}</button>
                <button data-testid="abort" class="danger" disabled=finished on:click=move |_| stop(StopMode::Abort)>{tr("Abort")}</button>
                <span class="hint">{move || message.get()}</span>
            </div>
            <Show when=move || !finished()>
                {move || detail.get().and_then(|d| d.ok()).map(|d| view! { <TunePanel job=id() spec=d.spec /> })}
            </Show>
            <div class="pipeline" data-testid="pipeline">
                {move || snapshot().map(|s| {
                    let running = !s.state.is_some_and(|st| st.is_finished());
                    let _ = running;
                    s.nodes.into_iter().map(|n| view! { <NodeCard node=n /> }).collect_view()
                })}
            </div>
            <div class="charts">
                <Chart title=tr("throughput") testid="chart-throughput" values=throughput unit=rate />
                <Chart title=tr("items queued") testid="chart-depth" values=depth unit=|x| format!("{x:.0}") />
                <Chart title=tr("end-to-end p99") testid="chart-p99" values=p99 unit=|x| duration_ms(x as u64 / 1000) />
                <Chart title=tr("memory (RSS)") testid="chart-rss" values=rss unit=|x| format!("{:.0} MiB", x / 1048576.0) />
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
        </section>
    }
}

/// The API token this browser sends (kept in `localStorage`).
#[component]
pub fn SettingsPage() -> impl IntoView {
    let lang = expect_context::<RwSignal<Lang>>();
    let token = RwSignal::new(api::token().unwrap_or_default());
    let saved = RwSignal::new(false);
    let save = move |_| {
        if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
            let t = token.get_untracked();
            let _ = if t.is_empty() {
                storage.remove_item(api::TOKEN_KEY)
            } else {
                storage.set_item(api::TOKEN_KEY, &t)
            };
            saved.set(true);
        }
    };
    view! {
        <section class="card" data-testid="page-settings">
            <h1>{tr("Settings")}</h1>
            <label for="token">{tr("API token")}</label>
            <p class="hint">"Needed when the server asks for tokens (queuelab token create). Kept in this browser only."</p>
            <input id="token" type="password" data-testid="token" prop:value=move || token.get()
                on:input=move |ev| { saved.set(false); token.set(event_target_value(&ev)); } />
            <button data-testid="save-token" on:click=save>{tr("Save")}</button>
            <Show when=move || saved.get()><span class="hint" data-testid="saved">"Saved."</span></Show>
            <p>
                <label for="lang">{tr("Language")}" "</label>
                <select id="lang" data-testid="lang"
                    on:change=move |ev| {
                        let l = if event_target_value(&ev) == "zh" { Lang::Zh } else { Lang::En };
                        l.store();
                        lang.set(l);
                    }>
                    <option value="en" selected=move || lang.get() == Lang::En>"English"</option>
                    <option value="zh" selected=move || lang.get() == Lang::Zh>"中文"</option>
                </select>
            </p>
        </section>
    }
}

/// Finished runs, newest first; each opens its page with its report.
#[component]
pub fn HistoryPage() -> impl IntoView {
    let runs = LocalResource::new(|| api::get::<shared::api::JobPage>("/api/v1/jobs?limit=200"));
    let rows = move || {
        runs.get().map(|r| match r {
            Ok(page) => page
                .jobs
                .into_iter()
                .filter(|j| j.state.is_finished())
                .map(|j| {
                    let href = format!("/jobs/{}", j.id);
                    let state = j.state.as_str();
                    view! {
                        <tr data-testid="run-row">
                            <td><a href=href>{j.name.clone()}</a></td>
                            <td><span class=format!("state state-{state}")>{state}</span></td>
                            <td class="num">{j.accounting.produced}</td>
                            <td class="num">{j.accounting.sunk}</td>
                            <td class="num">{j.accounting.dead_lettered}</td>
                            <td class="num">{j.accounting.leftovers}</td>
                            <td class="num">{rate(j.throughput)}</td>
                            <td class="num">{duration_ms(j.p99_us / 1000)}</td>
                        </tr>
                    }
                })
                .collect_view()
                .into_any(),
            Err(e) => view! { <tr><td class="error">{e}</td></tr> }.into_any(),
        })
    };
    view! {
        <section class="card" data-testid="page-history">
            <h1>{tr("History")}</h1>
            <table class="jobs">
                <thead><tr><th>{tr("Name")}</th><th>{tr("State")}</th><th>{tr("Produced")}</th><th>{tr("Sunk")}</th><th>{tr("Dead letters")}</th><th>{tr("Leftovers")}</th><th>{tr("Throughput")}</th><th>"P99"</th></tr></thead>
                <tbody><Suspense fallback=|| ()>{rows}</Suspense></tbody>
            </table>
        </section>
    }
}
