//! The tuning lab: start a sweep (or a capacity search) or a soak from
//! any template, watch its points arrive on throughput-vs-knob and
//! P99-vs-knob charts with the knee and the USL curve, read the verdict,
//! open each run's job, reopen saved sweeps and compare two.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use shared::api::TemplateInfo;
use shared::lab::{
    KneeRule, LabDetail, LabKind, LabState, LabSummary, Slo, SoakReport, SweepReport, Tunable,
};

use super::charts::{Chart, Plot, Series};
use super::knob_chart::{Curve, KnobChart};
use super::{rate, tr};
use crate::api;
use crate::format::{count, local_time};
use crate::i18n::{Lang, t};

fn lang_now() -> Lang {
    use_context::<RwSignal<Lang>>().map_or(Lang::En, |l| l.get())
}

fn state_label(s: LabState) -> &'static str {
    match s {
        LabState::Running => "measuring",
        LabState::Done => "done",
        LabState::Stopped => "stopped",
        LabState::Failed => "failed",
        LabState::Interrupted => "interrupted",
    }
}

/// A verdict in the page's language (the server words both).
fn said<'a>(en: &'a [String], zh: &'a [String]) -> &'a [String] {
    if lang_now() == Lang::Zh && !zh.is_empty() {
        zh
    } else {
        en
    }
}

fn ms(us: u64) -> String {
    if us == 0 {
        "—".into()
    } else {
        format!("{:.1} ms", us as f64 / 1000.0)
    }
}

fn value(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        count(x as i64)
    } else {
        format!("{x:.2}")
    }
}

/// The lab's front page: the form to start one, and every saved one.
#[component]
pub fn TuningPage() -> impl IntoView {
    let lang = expect_context::<RwSignal<Lang>>();
    super::page_title(move || t(lang.get(), "Tuning").to_owned());
    let list = LocalResource::new(|| api::get::<Vec<LabSummary>>("/api/v1/sweeps"));
    // Refreshed every few seconds while one of them measures.
    let tick = RwSignal::new(0u32);
    let handle = set_interval_with_handle(
        move || {
            let running = list
                .get()
                .and_then(|l| l.ok())
                .is_some_and(|l| l.iter().any(|s| s.state.is_running()));
            if running {
                tick.update(|n| *n += 1);
            }
        },
        std::time::Duration::from_secs(2),
    );
    on_cleanup(move || {
        if let Ok(h) = handle {
            h.clear();
        }
    });
    Effect::new(move |prev: Option<u32>| {
        let n = tick.get();
        if prev.is_some_and(|p| p != n) {
            list.refetch();
        }
        n
    });
    let picked = RwSignal::new(Vec::<String>::new());
    let navigate = use_navigate();
    let compare = move |_| {
        let p = picked.get_untracked();
        if p.len() == 2 {
            navigate(
                &format!("/tuning/compare/{}/{}", p[0], p[1]),
                Default::default(),
            );
        }
    };
    let rows = move || {
        let Some(Ok(items)) = list.get() else {
            return Vec::new();
        };
        items
            .into_iter()
            .map(|s| {
                let id = s.id.clone();
                let id2 = s.id.clone();
                let is_sweep = s.kind == LabKind::Sweep;
                view! {
                    <tr data-testid="sweep-row" data-id=s.id.clone()>
                        <td>
                            <Show when=move || is_sweep>
                                <input type="checkbox" aria-label="compare" data-testid="sweep-pick"
                                    prop:checked={let id = id.clone(); move || picked.with(|p| p.contains(&id))}
                                    on:change={let id = id2.clone(); move |ev| {
                                        let on = event_target_checked(&ev);
                                        picked.update(|p| {
                                            p.retain(|x| *x != id);
                                            if on { p.push(id.clone()); if p.len() > 2 { p.remove(0); } }
                                        });
                                    }} />
                            </Show>
                        </td>
                        <td><a href=format!("/tuning/{}", s.id)>{s.pipeline.clone()}</a></td>
                        <td>{move || t(lang_now(), if is_sweep { "sweep" } else { "soak" })}</td>
                        <td><code>{s.knob.clone().unwrap_or_else(|| "—".into())}</code></td>
                        <td data-testid="sweep-state">{move || t(lang_now(), state_label(s.state))}</td>
                        <td class="num">{count(s.measured as i64)}</td>
                        <td class="num">{s.chosen.map(value).unwrap_or_else(|| "—".into())}</td>
                        <td class="headline">{move || if lang_now() == Lang::Zh { s.headline_zh.clone().or(s.headline.clone()) } else { s.headline.clone() }.unwrap_or_default()}</td>
                        <td>{local_time(s.created_at_ms)}</td>
                    </tr>
                }
            })
            .collect::<Vec<_>>()
    };
    view! {
        <section class="card">
            <h1>{tr("Tuning")}</h1>
            <p class="hint">{tr("Turn one knob at a time, watch throughput and P99, stop at the knee; or find the best value that keeps an SLO; or soak a pipeline to catch leaks.")}</p>
            <NewLabRun />
        </section>
        <section class="card">
            <h2>{tr("Saved sweeps and soaks")}</h2>
            <button type="button" data-testid="compare-sweeps" disabled=move || picked.with(|p| p.len() != 2) on:click=compare>
                {tr("Compare the two ticked")}
            </button>
            <table class="jobs" data-testid="sweeps">
                <thead><tr>
                    <th></th><th>{tr("Pipeline")}</th><th>{tr("Kind")}</th><th>{tr("Knob")}</th>
                    <th>{tr("State")}</th><th>{tr("Runs")}</th><th>{tr("Chosen")}</th><th>{tr("Verdict")}</th><th>{tr("Started")}</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}

/// Starts a sweep, a capacity search or a soak from a template.
#[component]
fn NewLabRun() -> impl IntoView {
    let templates = LocalResource::new(|| api::get::<Vec<TemplateInfo>>("/api/v1/templates"));
    let kind = RwSignal::new(LabKind::Sweep);
    let template = RwSignal::new(String::from("cpu-on-threads"));
    // The chosen template's spec, with every default filled in, as JSON
    // (sent back as it came: serialising specs in the browser would cost
    // the bundle a second copy of their serde code).
    let spec = LocalResource::new(move || {
        let name = template.get();
        let toml = templates
            .get()
            .and_then(|r| r.ok())
            .and_then(|ts| ts.into_iter().find(|t| t.name == name))
            .map(|t| t.toml);
        async move {
            match toml {
                Some(toml) => api::post_text::<serde_json::Value>("/api/v1/validate", &toml)
                    .await
                    .ok()
                    .map(|v| v["spec"].clone()),
                None => None,
            }
        }
    });
    // Its knobs, as the server lists them (decoding the spec here would
    // cost the bundle another copy of its decoder).
    let knob_list = LocalResource::new(move || {
        let spec = spec.get().flatten();
        async move {
            match spec {
                Some(spec) => api::post_spec::<Vec<Tunable>>("/api/v1/knobs", &spec)
                    .await
                    .unwrap_or_default(),
                None => Vec::new(),
            }
        }
    });
    let knobs = move || -> Vec<Tunable> { knob_list.get().unwrap_or_default() };
    let knob = RwSignal::new(String::new());
    // A knob of the chosen template: its workers when it has some.
    Effect::new(move |_| {
        let ks = knobs();
        let cur = knob.get_untracked();
        if !ks.iter().any(|k| k.path == cur) {
            let pick = ks
                .iter()
                .find(|k| k.path.ends_with(".workers"))
                .or_else(|| ks.first())
                .map(|k| k.path.clone())
                .unwrap_or_default();
            knob.set(pick);
        }
    });
    let values = RwSignal::new(String::from("1,2,4,8"));
    let warmup = RwSignal::new(String::from("1s"));
    let measure = RwSignal::new(String::from("3s"));
    let repeat = RwSignal::new(String::from("1"));
    let capacity = RwSignal::new(false);
    let slo = RwSignal::new(String::from("p99<50ms,errors<0.1%"));
    let duration = RwSignal::new(String::from("10m"));
    let interval = RwSignal::new(String::from("1m"));
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let navigate = navigate.clone();
        let Some(pipeline) = spec.get_untracked().flatten() else {
            error.set(Some(t(lang_now(), "Choose a template first.").into()));
            return;
        };
        let parse_ms = |s: RwSignal<String>| shared::lab::parse_duration_ms(&s.get_untracked());
        let made: Result<(String, serde_json::Value), String> = (|| {
            if kind.get_untracked() == LabKind::Soak {
                let body = serde_json::json!({
                    "pipeline": pipeline,
                    "duration_ms": parse_ms(duration)?,
                    "warmup_ms": parse_ms(warmup)?,
                    "interval_ms": parse_ms(interval)?,
                });
                return Ok(("/api/v1/soaks".to_string(), body));
            }
            let vals: Result<Vec<f64>, String> = values
                .get_untracked()
                .split(',')
                .filter(|v| !v.trim().is_empty())
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .map_err(|_| format!("`{}` is not a number", v.trim()))
                })
                .collect();
            let cap = capacity.get_untracked();
            let repeat: u32 = repeat
                .get_untracked()
                .trim()
                .parse()
                .map_err(|_| "repeat: a whole number".to_string())?;
            let mut body = serde_json::json!({
                "pipeline": pipeline,
                "knob": knob.get_untracked(),
                "values": vals?,
                "warmup_ms": parse_ms(warmup)?,
                "measure_ms": parse_ms(measure)?,
                "repeat": repeat,
            });
            if cap {
                // Checked here so the mistake shows before the round trip;
                // the server reads the same text.
                let slo = Slo::parse(&slo.get_untracked())?;
                body["slo"] = serde_json::Value::Array(
                    slo.0
                        .iter()
                        .map(|t| serde_json::json!({"metric": t.metric.as_str(), "max": t.max}))
                        .collect(),
                );
                body["mode"] = serde_json::json!({"kind": "capacity"});
            }
            Ok(("/api/v1/sweeps".to_string(), body))
        })();
        match made {
            Err(e) => error.set(Some(e)),
            Ok((path, body)) => {
                error.set(None);
                leptos::task::spawn_local(async move {
                    match api::post_spec::<LabDetail>(&path, &body).await {
                        Ok(d) => navigate(&format!("/tuning/{}", d.summary.id), Default::default()),
                        Err(e) => {
                            let fields: Vec<String> =
                                e.fields.iter().map(|(f, m)| format!("{f}: {m}")).collect();
                            error.try_set(Some(if fields.is_empty() {
                                e.message
                            } else {
                                fields.join("; ")
                            }));
                        }
                    }
                });
            }
        }
    };
    let template_options = move || {
        templates
            .get()
            .and_then(|r| r.ok())
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                let name = t.name.clone();
                view! { <option value=t.name.clone() selected=move || template.get() == name>{t.name.clone()}</option> }
            })
            .collect::<Vec<_>>()
    };
    let knob_options = move || {
        knobs()
            .into_iter()
            .map(|k| {
                let p = k.path.clone();
                let label = match k.current {
                    Some(c) => format!("{} ({})", k.path, value(c)),
                    None => k.path.clone(),
                };
                view! { <option value=k.path.clone() selected=move || knob.get() == p>{label}</option> }
            })
            .collect::<Vec<_>>()
    };
    let is_sweep = move || kind.get() == LabKind::Sweep;
    view! {
        <div class="tabs" role="tablist">
            <button type="button" role="tab" data-testid="tab-sweep" aria-selected=move || is_sweep().to_string()
                on:click=move |_| kind.set(LabKind::Sweep)>{tr("Sweep")}</button>
            <button type="button" role="tab" data-testid="tab-soak" aria-selected=move || (!is_sweep()).to_string()
                on:click=move |_| kind.set(LabKind::Soak)>{tr("Soak")}</button>
        </div>
        <form class="lab-form" on:submit=submit data-testid="lab-form">
            <label>{tr("Template")}
                <select data-testid="lab-template" on:change=move |ev| template.set(event_target_value(&ev))>{template_options}</select>
            </label>
            <Show when=is_sweep>
                <label>{tr("Knob")}
                    <select data-testid="lab-knob" on:change=move |ev| knob.set(event_target_value(&ev))>{knob_options}</select>
                </label>
                <label>{tr("Values")}
                    <input data-testid="lab-values" prop:value=move || values.get() on:input=move |ev| values.set(event_target_value(&ev)) />
                </label>
                <label>{tr("Measure")}
                    <input data-testid="lab-measure" prop:value=move || measure.get() on:input=move |ev| measure.set(event_target_value(&ev)) />
                </label>
                <label>{tr("Repeat")}
                    <input type="number" min="1" max="10" data-testid="lab-repeat" prop:value=move || repeat.get() on:input=move |ev| repeat.set(event_target_value(&ev)) />
                </label>
                <label class="check">
                    <input type="checkbox" data-testid="lab-capacity" prop:checked=move || capacity.get() on:change=move |ev| capacity.set(event_target_checked(&ev)) />
                    {tr("Capacity search: the best value that keeps")}
                    <input data-testid="lab-slo" aria-label="SLO" prop:value=move || slo.get() on:input=move |ev| slo.set(event_target_value(&ev)) />
                </label>
            </Show>
            <Show when=move || !is_sweep()>
                <label>{tr("Duration")}
                    <input data-testid="lab-duration" prop:value=move || duration.get() on:input=move |ev| duration.set(event_target_value(&ev)) />
                </label>
                <label>{tr("Interval")}
                    <input data-testid="lab-interval" prop:value=move || interval.get() on:input=move |ev| interval.set(event_target_value(&ev)) />
                </label>
            </Show>
            <label>{tr("Warm-up")}
                <input data-testid="lab-warmup" prop:value=move || warmup.get() on:input=move |ev| warmup.set(event_target_value(&ev)) />
            </label>
            <button type="submit" class="primary" data-testid="lab-start">{move || if is_sweep() { tr("Start sweep")() } else { tr("Start soak")() }}</button>
            <p class="error" role="alert" data-testid="lab-error">{move || error.get().unwrap_or_default()}</p>
        </form>
    }
}

/// Follows one sweep or soak: REST for its state now, the WebSocket for
/// every change after.
fn follow(id: String) -> Signal<Option<LabDetail>> {
    let link = expect_context::<crate::live::LiveLink>();
    link.watch_sweep(&id);
    // Read again whenever the socket says it changed.
    let fetched = LocalResource::new(move || {
        let id = id.clone();
        let _version = link.sweeps.with(|m| m.get(&id).copied());
        async move {
            api::get::<LabDetail>(&format!("/api/v1/sweeps/{id}"))
                .await
                .ok()
        }
    });
    // The last one read stays shown while the next is on its way.
    let last = RwSignal::new(None::<LabDetail>);
    Effect::new(move |_| {
        if let Some(Some(d)) = fetched.get() {
            last.set(Some(d));
        }
    });
    last.into()
}

/// One sweep or soak.
#[component]
pub fn SweepPage() -> impl IntoView {
    let params = use_params_map();
    let id = params.get_untracked().get("id").unwrap_or_default();
    let detail = follow(id.clone());
    super::page_title(move || {
        detail
            .get()
            .map(|d| format!("{} · {}", d.summary.pipeline, t(lang_now(), "Tuning")))
            .unwrap_or_else(|| t(lang_now(), "Tuning").into())
    });
    let message = RwSignal::new(String::new());
    let sweep_id = StoredValue::new(id.clone());
    let stop = move |_| {
        let id = sweep_id.get_value();
        leptos::task::spawn_local(async move {
            if let Err(e) = api::send::<_, LabDetail>(
                "POST",
                &format!("/api/v1/sweeps/{id}/stop"),
                &serde_json::json!({}),
            )
            .await
            {
                message.try_set(e);
            }
        });
    };
    let body = move || {
        let Some(d) = detail.get() else {
            return view! { <p data-testid="sweep-missing">{tr("Loading, or no such sweep.")}</p> }
                .into_any();
        };
        let running = d.summary.state.is_running();
        let head = view! {
            <h1>{d.summary.pipeline.clone()}" · "<code>{d.summary.knob.clone().unwrap_or_else(|| t(lang_now(), "soak").into())}</code></h1>
            <p>
                <span class="badge" data-testid="sweep-state">{t(lang_now(), state_label(d.summary.state))}</span>
                " "{d.current_job.clone().map(|j| view! { <a href=format!("/jobs/{j}") data-testid="current-job">{tr("measuring now")}</a> })}
                {running.then(|| view! { <button type="button" data-testid="sweep-stop" on:click=stop>{tr("Stop")}</button> })}
            </p>
            <p class="error" role="alert">{d.error.clone().unwrap_or_default()}{move || message.get()}</p>
        };
        let content = if let Some(r) = d.sweep_report.clone() {
            view! { <SweepView report=r /> }.into_any()
        } else if let Some(r) = d.soak_report.clone() {
            view! { <SoakView report=r /> }.into_any()
        } else {
            view! { <p data-testid="sweep-waiting">{tr("The first run is measuring…")}</p> }
                .into_any()
        };
        view! { {head} {content} }.into_any()
    };
    view! { <section class="card" data-testid="sweep-page">{body}</section> }
}

fn knee_rule(r: KneeRule) -> &'static str {
    match r {
        KneeRule::Kneedle => "Kneedle: throughput flattens",
        KneeRule::LatencyClimb => "P99 climbs",
        KneeRule::ErrorClimb => "errors climb",
    }
}

fn curves(r: &SweepReport, label: &str, p99: bool) -> Curve {
    // P99 in milliseconds, or throughput.
    let read = |f: &shared::lab::PointFigures| {
        if p99 {
            f.latency.p99_us as f64 / 1000.0
        } else {
            f.throughput
        }
    };
    Curve {
        label: label.to_string(),
        points: r
            .points
            .iter()
            .map(|p| (p.value, read(&p.median)))
            .collect(),
        dots: r.runs.iter().map(|u| (u.value, read(&u.figures))).collect(),
        dashed: false,
    }
}

fn usl_curve(r: &SweepReport) -> Option<Curve> {
    let u = r.usl.as_ref()?;
    let (lo, hi) = (r.points.first()?.value, r.points.last()?.value);
    let points = (0..=60)
        .map(|i| {
            let f = i as f64 / 60.0;
            // Evenly spaced on the axis, linear or log.
            let n = if lo > 0.0 && hi / lo >= 16.0 {
                lo * (hi / lo).powf(f)
            } else {
                lo + (hi - lo) * f
            };
            (
                n,
                u.lambda * n / (1.0 + u.sigma * (n - 1.0) + u.kappa * n * (n - 1.0)),
            )
        })
        .collect();
    Some(Curve {
        label: "USL".into(),
        points,
        dots: Vec::new(),
        dashed: true,
    })
}

/// A sweep's charts, verdict and table.
#[component]
fn SweepView(report: SweepReport) -> impl IntoView {
    let knee = report.knee.as_ref().map(|k| {
        (
            k.value,
            format!(
                "{} {} ({})",
                t(lang_now(), "knee"),
                value(k.value),
                t(lang_now(), knee_rule(k.rule))
            ),
        )
    });
    let chosen = report
        .capacity
        .as_ref()
        .and(report.chosen)
        .map(|c| (c, format!("{} {}", t(lang_now(), "capacity"), value(c))));
    let mark = knee.or(chosen);
    let mut tp = vec![curves(&report, t(lang_now(), "throughput"), false)];
    tp.extend(usl_curve(&report));
    let p99 = vec![curves(&report, "P99", true)];
    let verdict = said(&report.verdict, &report.verdict_zh)
        .iter()
        .map(|v| view! { <li>{super::prose(v)}</li> })
        .collect::<Vec<_>>();
    let rows = report
        .points
        .iter()
        .map(|p| {
            let is_knee = mark.as_ref().is_some_and(|(v, _)| *v == p.value);
            let jobs = report
                .runs
                .iter()
                .filter(|u| u.value == p.value)
                .map(|u| view! { <a href=format!("/jobs/{}", u.job) data-testid="point-job">{format!("#{}", u.repeat + 1)}</a>" " })
                .collect::<Vec<_>>();
            view! {
                <tr data-testid="point-row" class:knee=is_knee data-value=p.value.to_string()>
                    <td class="num">{value(p.value)}{is_knee.then_some(" ◀")}</td>
                    <td class="num">{rate(p.median.throughput)}</td>
                    <td class="num">{ms(p.median.latency.p50_us)}</td>
                    <td class="num">{ms(p.median.latency.p99_us)}</td>
                    <td class="num">{format!("{:.2}%", p.median.error_rate * 100.0)}</td>
                    <td>{p.busiest.clone().unwrap_or_else(|| "—".into())}</td>
                    <td>{p.backpressured.join(", ")}</td>
                    <td>{p.busiest_cpu.map(|c| format!("{c:.2}")).unwrap_or_else(|| "—".into())}</td>
                    <td>{jobs}</td>
                </tr>
            }
        })
        .collect::<Vec<_>>();
    let knob = report.knob.clone();
    view! {
        <ul class="verdict" data-testid="sweep-verdict">{verdict}</ul>
        <div class="charts">
            <KnobChart title=t(lang_now(), "Throughput (items/s) vs the knob") testid="tp-chart" knob=knob.clone() curves=tp mark=mark.clone() unit=|x| crate::format::figure(x) />
            <KnobChart title=t(lang_now(), "P99 (ms) vs the knob") testid="p99-chart" knob=knob curves=p99 mark=mark unit=|x| format!("{x:.0} ms") />
        </div>
        <table class="jobs" data-testid="points">
            <thead><tr>
                <th>{tr("Value")}</th><th>{tr("Throughput")}</th><th>"P50"</th><th>"P99"</th><th>{tr("Errors")}</th>
                <th>{tr("Busiest")}</th><th>{tr("Backpressured")}</th><th>{tr("CPU (cores)")}</th><th>{tr("Runs")}</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

/// A soak's four trend charts, jitter and verdict.
#[component]
fn SoakView(report: SoakReport) -> impl IntoView {
    let series = |label: &str, f: fn(&shared::lab::SoakInterval) -> f64| Plot {
        series: vec![Series {
            label: label.to_string(),
            points: report
                .intervals
                .iter()
                .map(|i| (i.elapsed_ms, f(i)))
                .collect(),
        }],
        markers: Vec::new(),
    };
    let leak = |figure: &str| report.trends.iter().any(|t| t.figure == figure && t.leak);
    let verdict = said(&report.verdict, &report.verdict_zh)
        .iter()
        .map(|v| view! { <li>{v.clone()}</li> })
        .collect::<Vec<_>>();
    let trends = report
        .trends
        .iter()
        .map(|tr| {
            let leak = tr.leak;
            view! {
                <tr data-testid="trend-row" data-figure=tr.figure.clone() class:leak=tr.leak>
                    <td>{tr.figure.clone()}</td>
                    <td class="num">{tr.slope_per_interval.map(crate::format::figure).unwrap_or_else(|| "—".into())}</td>
                    <td class="num">{tr.p_value.map(|p| format!("{p:.3}")).unwrap_or_else(|| "—".into())}</td>
                    <td class="num">{tr.projected.map(crate::format::figure).unwrap_or_else(|| "—".into())}</td>
                    <td class="num">{crate::format::figure(tr.budget)}</td>
                    <td data-testid="trend-verdict">{move || t(lang_now(), if leak { "leak" } else { "ok" })}</td>
                </tr>
            }
        })
        .collect::<Vec<_>>();
    view! {
        <ul class="verdict" data-testid="soak-verdict">{verdict}</ul>
        <div class="charts">
            <Chart title=Signal::derive(move || t(lang_now(), "Resident memory")) testid="soak-rss" plot=series("RSS", |i| i.rss_bytes) unit=|x| format!("{:.0} MiB", x / 1048576.0) focus=leak("rss_bytes") />
            <Chart title=Signal::derive(move || t(lang_now(), "Open files")) testid="soak-fds" plot=series("FDs", |i| i.open_fds) unit=|x| format!("{x:.0}") focus=leak("open_fds") />
            <Chart title=Signal::derive(move || t(lang_now(), "Threads")) testid="soak-threads" plot=series("threads", |i| i.threads) unit=|x| format!("{x:.0}") focus=leak("threads") />
            <Chart title=Signal::derive(move || t(lang_now(), "Total queue depth")) testid="soak-depth" plot=series("depth", |i| i.queue_depth) unit=crate::format::figure focus=leak("queue_depth") />
        </div>
        <table class="jobs" data-testid="trends">
            <thead><tr><th>{tr("Figure")}</th><th>{tr("Slope per interval")}</th><th>"p"</th><th>{tr("Projected")}</th><th>{tr("Budget")}</th><th>{tr("Verdict")}</th></tr></thead>
            <tbody>{trends}</tbody>
        </table>
        <p><a href=format!("/jobs/{}", report.job)>{tr("The soak's job")}</a></p>
    }
}

/// Two sweeps' curves overlaid.
#[component]
pub fn SweepComparePage() -> impl IntoView {
    let params = use_params_map();
    let a = params.get_untracked().get("a").unwrap_or_default();
    let b = params.get_untracked().get("b").unwrap_or_default();
    super::page_title(move || t(lang_now(), "Compare sweeps").to_owned());
    let both = LocalResource::new(move || {
        let (a, b) = (a.clone(), b.clone());
        async move {
            let x = api::get::<LabDetail>(&format!("/api/v1/sweeps/{a}"))
                .await
                .ok()?;
            let y = api::get::<LabDetail>(&format!("/api/v1/sweeps/{b}"))
                .await
                .ok()?;
            Some((x, y))
        }
    });
    let body = move || {
        let Some(Some((x, y))) = both.get() else {
            return view! { <p>{tr("Loading, or no such sweep.")}</p> }.into_any();
        };
        let (Some(rx), Some(ry)) = (x.sweep_report.clone(), y.sweep_report.clone()) else {
            return view! { <p>{tr("Only sweeps can be compared.")}</p> }.into_any();
        };
        let name = |d: &LabDetail| {
            format!(
                "{} {}",
                d.summary.pipeline,
                local_time(d.summary.created_at_ms)
            )
        };
        let (nx, ny) = (name(&x), name(&y));
        let knob = rx.knob.clone();
        let tp = vec![curves(&rx, &nx, false), curves(&ry, &ny, false)];
        let p99 = vec![curves(&rx, &nx, true), curves(&ry, &ny, true)];
        let verdicts = [(nx.clone(), said(&rx.verdict, &rx.verdict_zh).to_vec()), (ny.clone(), said(&ry.verdict, &ry.verdict_zh).to_vec())]
            .into_iter()
            .map(|(n, v)| view! { <li><strong>{n}</strong>": "{v.first().cloned().unwrap_or_default()}</li> })
            .collect::<Vec<_>>();
        view! {
            <h1>{tr("Compare sweeps")}</h1>
            <ul class="verdict">{verdicts}</ul>
            <div class="charts">
                <KnobChart title=t(lang_now(), "Throughput (items/s) vs the knob") testid="cmp-tp-chart" knob=knob.clone() curves=tp mark=None unit=|x| crate::format::figure(x) />
                <KnobChart title=t(lang_now(), "P99 (ms) vs the knob") testid="cmp-p99-chart" knob=knob curves=p99 mark=None unit=|x| format!("{x:.0} ms") />
            </div>
        }
        .into_any()
    };
    view! { <section class="card" data-testid="sweep-compare">{body}</section> }
}
