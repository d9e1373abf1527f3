//! Finished runs: reopened, and compared two at a time (overlaid charts, a
//! table of the figures that differ, and the settings that differ).

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use shared::api::JobDetail;
use shared::metrics::{JobEvent, JobSnapshot};

use super::charts::{Chart, Plot, Series};
use super::{rate, tr};
use crate::api;
use crate::format::{count, duration_ms, local_time};

/// Finished runs, newest first; each opens its page with its report, and
/// any two can be compared.
#[component]
pub fn HistoryPage() -> impl IntoView {
    let lang = expect_context::<RwSignal<crate::i18n::Lang>>();
    super::page_title(move || crate::i18n::t(lang.get(), "History").to_owned());
    // Page and search live in the address (`?q=…&page=2`), so a reload or a
    // shared link shows the same runs.
    let query = leptos_router::hooks::use_query_map();
    let initial = query.get_untracked();
    let text = RwSignal::new(initial.get("q").unwrap_or_default());
    let page = RwSignal::new(
        initial
            .get("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .max(1),
    );
    super::keep_in_url(move || {
        vec![
            ("q", text.get()),
            (
                "page",
                Some(page.get())
                    .filter(|p| *p > 1)
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            ),
        ]
    });
    // Live: a run that finishes (or is deleted elsewhere) changes the set of
    // finished jobs the socket reports, and the page is fetched again.
    let link = expect_context::<crate::live::LiveLink>();
    link.watch_jobs();
    let finished_ids = Memo::new(move |_| {
        link.jobs
            .get()
            .into_iter()
            .filter(|j| j.state.is_finished())
            .map(|j| j.id)
            .collect::<Vec<_>>()
    });
    let runs = LocalResource::new(move || {
        finished_ids.track();
        let path = format!(
            "/api/v1/jobs?finished=true&limit={PAGE}&offset={}&q={}",
            (page.get() - 1) * PAGE,
            js_sys::encode_uri_component(text.get().trim())
        );
        async move { api::get::<shared::api::JobPage>(&path).await }
    });
    let total = move || runs.get().and_then(|r| r.ok()).map(|p| p.total);
    // The runs ticked for comparison, oldest tick first (at most two).
    let picked = RwSignal::new(Vec::<String>::new());
    let toggle = move |id: String, on: bool| {
        picked.update(|p| {
            p.retain(|x| *x != id);
            if on {
                p.push(id);
                if p.len() > 2 {
                    p.remove(0);
                }
            }
        })
    };
    let message = RwSignal::new(String::new());
    let lang = expect_context::<RwSignal<crate::i18n::Lang>>();
    // Deletes a run and its stored records, after asking.
    let delete = move |id: String, name: String| {
        let question = format!(
            "{} {name} ({id})?",
            crate::i18n::t(
                lang.get_untracked(),
                "Delete the run and its stored records:"
            )
        );
        let sure = window().confirm_with_message(&question).unwrap_or(false);
        if !sure {
            return;
        }
        leptos::task::spawn_local(async move {
            match api::delete(&format!("/api/v1/jobs/{id}")).await {
                Ok(()) => {
                    picked.try_update(|p| p.retain(|x| *x != id));
                    message.try_set(String::new());
                    runs.refetch();
                }
                Err(e) => {
                    message.try_set(e);
                }
            }
        });
    };
    let rows = move || {
        runs.get().map(|r| match r {
            Ok(page) => page
                .jobs
                .into_iter()
                .map(|j| {
                    let href = format!("/jobs/{}", j.id);
                    let state = j.state.as_str();
                    let id = j.id.clone();
                    let id2 = j.id.clone();
                    let (id3, name3) = (j.id.clone(), j.name.clone());
                    view! {
                        <tr data-testid="run-row">
                            <td>
                                <input type="checkbox" data-testid="pick" aria-label=format!("Compare {} ({})", j.name, j.id)
                                    prop:checked=move || picked.get().contains(&id2)
                                    on:change=move |ev| toggle(id.clone(), event_target_checked(&ev)) />
                            </td>
                            // Runs with the same name told apart: id and start.
                            <td><a href=href>{j.name.clone()}</a><span class="run-id" data-testid="run-id">{j.id.clone()}</span></td>
                            <td class="num" data-testid="run-started">{local_time(j.created_at_ms)}</td>
                            <td><span class=format!("state state-{state}")>{state}</span></td>
                            <td class="num">{count(j.accounting.produced)}</td>
                            <td class="num">{count(j.accounting.sunk)}</td>
                            <td class="num">{count(j.accounting.dead_lettered)}</td>
                            <td class="num">{count(j.accounting.leftovers)}</td>
                            <td class="num">{rate(j.throughput)}</td>
                            <td class="num">{duration_ms(j.p99_us / 1000)}</td>
                            <td class="row-actions">
                                <button class="secondary" data-testid="delete-run" aria-label=format!("Delete {} ({})", j.name, j.id)
                                    on:click=move |_| delete(id3.clone(), name3.clone())>{tr("Delete")}</button>
                            </td>
                        </tr>
                    }
                })
                .collect_view()
                .into_any(),
            Err(e) => view! { <tr><td class="error">{e}</td></tr> }.into_any(),
        })
    };
    let compare_href = move || match picked.get().as_slice() {
        [a, b] => Some(format!("/compare/{a}/{b}")),
        _ => None,
    };
    view! {
        <section class="card" data-testid="page-history">
            <h1>{tr("History")}</h1>
            <div class="filters">
                <label>{tr("Search")}" "
                    <input type="search" data-testid="history-search" placeholder="name or id"
                        prop:value=move || text.get()
                        on:input=move |ev| { text.set(event_target_value(&ev)); page.set(1); } />
                </label>
                {move || match compare_href() {
                    Some(href) => view! { <a class="button" href=href data-testid="compare">{tr("Compare the two")}</a> }.into_any(),
                    None => view! { <span class="hint">{tr("Tick two runs to compare them.")}</span> }.into_any(),
                }}
                <span class="error" role="status" data-testid="history-message">{move || message.get()}</span>
            </div>
            <table class="jobs">
                <thead><tr><th><span class="sr-only">{tr("Compare")}</span></th><th>{tr("Name")}</th><th>{tr("Started")}</th><th>{tr("State")}</th><th>{tr("Produced")}</th><th>{tr("Sunk")}</th><th>{tr("Dead letters")}</th><th>{tr("Leftovers")}</th><th>{tr("Throughput")}</th><th>"P99"</th><th><span class="sr-only">{tr("Actions")}</span></th></tr></thead>
                <tbody><Suspense fallback=|| ()>{rows}</Suspense></tbody>
            </table>
            <Pager page total />
        </section>
    }
}

/// Runs per History page.
const PAGE: usize = 50;

/// Which runs a page shows, as "51–100 of 123".
pub fn page_range(page: usize, total: usize) -> (usize, usize) {
    let first = (page.max(1) - 1) * PAGE;
    if first >= total {
        return (0, 0);
    }
    (first + 1, (first + PAGE).min(total))
}

/// Pages through the finished runs, with their total.
#[component]
fn Pager(
    page: RwSignal<usize>,
    total: impl Fn() -> Option<usize> + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let pages = move || total().map(|t| t.div_ceil(PAGE).max(1)).unwrap_or(1);
    let shown = move || match total() {
        Some(t) => {
            let (a, b) = page_range(page.get(), t);
            format!("{a}–{b} / {t}")
        }
        None => "—".into(),
    };
    view! {
        <nav class="pager" aria-label=tr("pages")>
            <button type="button" class="secondary" data-testid="page-prev"
                disabled=move || { page.get() <= 1 }
                on:click=move |_| page.update(|p| *p = p.saturating_sub(1).max(1))>{tr("Newer")}</button>
            <span data-testid="page-range">{tr("Runs")}" "{shown}</span>
            <button type="button" class="secondary" data-testid="page-next"
                disabled=move || { page.get() >= pages() }
                on:click=move |_| page.update(|p| *p += 1)>{tr("Older")}</button>
        </nav>
    }
}

/// Every leaf of a JSON value by its path (`stages[0].workers`), for
/// listing the settings in which two specs differ.
pub fn flatten(v: &serde_json::Value) -> BTreeMap<String, String> {
    fn walk(v: &serde_json::Value, at: String, out: &mut BTreeMap<String, String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let p = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    walk(x, p, out);
                }
            }
            serde_json::Value::Array(a) if a.iter().any(|x| x.is_object()) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{at}[{i}]"), out);
                }
            }
            leaf => {
                out.insert(at, crate::form::path::display(Some(leaf)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(v, String::new(), &mut out);
    out
}

/// The settings that differ: `(path, in a, in b)`, a missing one as `—`.
pub fn spec_differences(
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Vec<(String, String, String)> {
    let (fa, fb) = (flatten(a), flatten(b));
    let mut keys: Vec<&String> = fa.keys().chain(fb.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !k.starts_with("description"))
        .filter_map(|k| {
            let (x, y) = (fa.get(k), fb.get(k));
            (x != y).then(|| {
                let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "—".into());
                (k.clone(), show(x), show(y))
            })
        })
        .collect()
}

/// `b` against `a` as a signed percentage, when `a` is not zero.
pub fn change(a: f64, b: f64) -> String {
    if a == 0.0 {
        return if b == 0.0 { "=".into() } else { "new".into() };
    }
    let pct = (b - a) / a * 100.0;
    if pct.abs() < 0.05 {
        "=".into()
    } else {
        format!("{pct:+.1}%")
    }
}

/// One run's detail and stored metric history.
async fn load_run(id: String) -> Result<Run, String> {
    let detail = api::get::<JobDetail>(&format!("/api/v1/jobs/{id}")).await?;
    let history =
        api::get::<Vec<JobSnapshot>>(&format!("/api/v1/jobs/{id}/metrics?step_ms=250")).await?;
    let events = api::get::<Vec<JobEvent>>(&format!("/api/v1/jobs/{id}/events")).await?;
    Ok((detail, history, events))
}

/// One run as the comparison reads it: detail, metric history, events.
type Run = (JobDetail, Vec<JobSnapshot>, Vec<JobEvent>);

/// Whether a bigger value of a figure is better (`Some(true)`), worse
/// (`Some(false)`), or neither (`None`: what was produced, filtered).
pub fn higher_is_better(figure: &str) -> Option<bool> {
    match figure {
        "sunk" | "throughput" => Some(true),
        "dead-lettered" | "dropped by policy" | "leftovers" | "p50" | "p95" | "p99" | "elapsed" => {
            Some(false)
        }
        _ => None,
    }
}

/// `better`, `worse` or `same` for a change from `a` to `b` of `figure`.
pub fn verdict(figure: &str, a: f64, b: f64) -> &'static str {
    match higher_is_better(figure) {
        _ if (b - a).abs() <= a.abs() * 0.0005 => "same",
        Some(up) if (b > a) == up => "better",
        Some(_) => "worse",
        None => "same",
    }
}

/// The live tunes of a run, as rows of the settings table: what changed,
/// when, from what to what.
pub fn tune_rows(events: &[JobEvent]) -> Vec<(String, String)> {
    super::job::tunes(events)
        .map(|(at, stage, field, from, to)| {
            (
                format!("{stage}.{field} (tuned at {})", super::charts::clock(at)),
                format!("{from} → {to}"),
            )
        })
        .collect()
}

/// Two runs side by side: overlaid charts and tables of what differs.
#[component]
pub fn ComparePage() -> impl IntoView {
    let lang = expect_context::<RwSignal<crate::i18n::Lang>>();
    super::page_title(move || crate::i18n::t(lang.get(), "Compare runs").to_owned());
    let params = use_params_map();
    let ids = move || {
        let p = params.read();
        (
            p.get("a").unwrap_or_default(),
            p.get("b").unwrap_or_default(),
        )
    };
    let runs = LocalResource::new(move || {
        let (a, b) = ids();
        async move { Ok::<_, String>((load_run(a).await?, load_run(b).await?)) }
    });
    let body = move || {
        runs.get().map(|r| match r {
            Ok(((da, ha, ea), (db, hb, eb))) => compare_view((da, ha, ea), (db, hb, eb)).into_any(),
            Err(e) => view! { <p class="error" data-testid="compare-error">{e}</p> }.into_any(),
        })
    };
    view! {
        <section data-testid="page-compare">
            <h1>{tr("Compare runs")}</h1>
            <Suspense fallback=|| view! { <p>"…"</p> }>{body}</Suspense>
        </section>
    }
}

/// A figure of both runs: name, in A, in B, and how to print it.
type Figure = (&'static str, f64, f64, fn(f64) -> String);

fn compare_view((da, ha, ea): Run, (db, hb, eb): Run) -> impl IntoView {
    let label = |d: &JobDetail, tag: &str| format!("{tag}: {}", d.spec.name);
    let (la, lb) = (label(&da, "A"), label(&db, "B"));
    // Both runs' tunes, marked on every overlaid chart.
    let markers: Vec<(u64, String)> = super::job::tune_markers(&ea)
        .into_iter()
        .map(|(t, l)| (t, format!("A: {l}")))
        .chain(
            super::job::tune_markers(&eb)
                .into_iter()
                .map(|(t, l)| (t, format!("B: {l}"))),
        )
        .collect();
    let overlay = |f: fn(&JobSnapshot) -> f64| {
        let series = vec![
            Series {
                label: la.clone(),
                points: ha.iter().map(|s| (s.elapsed_ms, f(s))).collect(),
            },
            Series {
                label: lb.clone(),
                points: hb.iter().map(|s| (s.elapsed_ms, f(s))).collect(),
            },
        ];
        let markers = markers.clone();
        Signal::derive(move || Plot {
            series: series.clone(),
            markers: markers.clone(),
        })
    };
    let throughput = overlay(|s| s.throughput);
    let depth = overlay(|s| s.nodes.iter().map(|n| n.depth as f64).sum());
    let p99 = overlay(|s| s.end_to_end.p99_us as f64);
    let rss = overlay(|s| s.process.rss_bytes as f64);

    let (sa, sb) = (&da.summary, &db.summary);
    let (ra, rb) = (da.report.as_ref(), db.report.as_ref());
    let lat = |r: Option<&shared::metrics::JobReport>, f: fn(&shared::metrics::Latency) -> u64| {
        r.map_or(0.0, |r| f(&r.end_to_end) as f64)
    };
    let count = |name, f: fn(&shared::metrics::Accounting) -> u64| -> Figure {
        (
            name,
            f(&sa.accounting) as f64,
            f(&sb.accounting) as f64,
            |x| format!("{x:.0}"),
        )
    };
    let figures: Vec<Figure> = vec![
        count("produced", |a| a.produced),
        count("sunk", |a| a.sunk),
        count("filtered", |a| a.filtered),
        count("dead-lettered", |a| a.dead_lettered),
        count("dropped by policy", |a| a.dropped_by_policy),
        count("leftovers", |a| a.leftovers),
        ("throughput", sa.throughput, sb.throughput, rate),
        ("p50", lat(ra, |l| l.p50_us), lat(rb, |l| l.p50_us), |x| {
            duration_ms(x as u64 / 1000)
        }),
        ("p95", lat(ra, |l| l.p95_us), lat(rb, |l| l.p95_us), |x| {
            duration_ms(x as u64 / 1000)
        }),
        ("p99", lat(ra, |l| l.p99_us), lat(rb, |l| l.p99_us), |x| {
            duration_ms(x as u64 / 1000)
        }),
        ("elapsed", sa.elapsed_ms as f64, sb.elapsed_ms as f64, |x| {
            duration_ms(x as u64)
        }),
    ];
    let spec_a = serde_json::to_value(&da.spec).unwrap_or_default();
    let spec_b = serde_json::to_value(&db.spec).unwrap_or_default();
    let mut settings = spec_differences(&spec_a, &spec_b);
    // Live tunes are settings that differed too, for part of a run.
    for (path, change) in tune_rows(&ea) {
        settings.push((path, change, "—".into()));
    }
    for (path, change) in tune_rows(&eb) {
        settings.push((path, "—".into(), change));
    }
    let (href_a, href_b) = (format!("/jobs/{}", sa.id), format!("/jobs/{}", sb.id));
    view! {
        <p class="job-meta">
            <a href=href_a data-testid="compare-a">{la.clone()}</a>" · "{sa.state.as_str()}
            " vs " <a href=href_b data-testid="compare-b">{lb.clone()}</a>" · "{sb.state.as_str()}
        </p>
        <div class="charts">
            <Chart title=tr("throughput") testid="compare-throughput" plot=throughput unit=rate />
            <Chart title=tr("items queued") testid="compare-depth" plot=depth unit=|x| format!("{x:.0}") />
            <Chart title=tr("end-to-end p99") testid="compare-p99" plot=p99 unit=|x| duration_ms(x as u64 / 1000) />
            <Chart title=tr("memory (RSS)") testid="compare-rss" plot=rss unit=|x| format!("{:.0} MiB", x / 1048576.0) />
        </div>
        <section class="card report">
            <h2>{tr("Figures")}</h2>
            <table class="jobs" data-testid="compare-figures">
                <thead><tr><th></th><th class="num">"A"</th><th class="num">"B"</th><th class="num">"B vs A"</th></tr></thead>
                <tbody>
                    {figures.into_iter().map(|(name, a, b, show)| view! {
                        <tr data-testid="figure-row" data-figure=name>
                            <td>{name}</td><td class="num">{show(a)}</td><td class="num">{show(b)}</td>
                            <td class=format!("num change-{}", verdict(name, a, b)) data-testid="figure-change"
                                data-verdict=verdict(name, a, b)>{change(a, b)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <h2>{tr("Settings that differ")}</h2>
            {if settings.is_empty() {
                view! { <p data-testid="no-setting-differs">{tr("The two specs are the same.")}</p> }.into_any()
            } else {
                view! {
                    <table class="jobs" data-testid="compare-settings">
                        <thead><tr><th>{tr("Setting")}</th><th>"A"</th><th>"B"</th></tr></thead>
                        <tbody>
                            {settings.into_iter().map(|(path, a, b)| view! {
                                <tr data-testid="setting-row"><td><code>{path}</code></td><td>{a}</td><td>{b}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::metrics::EventKind;

    #[test]
    fn spec_differences_name_each_setting_that_changed() {
        let a = json!({"name": "a", "stages": [{"name": "io", "workers": 8, "queue": {"capacity": 1000}}],
            "description": "x"});
        let b = json!({"name": "a", "stages": [{"name": "io", "workers": 2, "queue": {"capacity": 1000}},
            {"name": "more"}], "description": "y"});
        assert_eq!(
            spec_differences(&a, &b),
            vec![
                ("stages[0].workers".into(), "8".into(), "2".into()),
                ("stages[1].name".into(), "—".into(), "more".into()),
            ]
        );
        assert!(spec_differences(&a, &a).is_empty());
    }

    #[test]
    fn changes_are_judged_better_or_worse_by_the_figure() {
        assert_eq!(verdict("throughput", 100.0, 150.0), "better");
        assert_eq!(verdict("p99", 100.0, 150.0), "worse");
        assert_eq!(verdict("leftovers", 10.0, 0.0), "better");
        assert_eq!(verdict("produced", 10.0, 20.0), "same");
        assert_eq!(verdict("sunk", 10.0, 10.0), "same");
    }

    #[test]
    fn live_tunes_become_setting_rows() {
        let events = vec![JobEvent {
            at_ms: 0,
            elapsed_ms: 75_000,
            kind: EventKind::Tuned {
                stage: "io".into(),
                field: "workers".into(),
                from: 8.0,
                to: 2.0,
            },
        }];
        assert_eq!(
            tune_rows(&events),
            vec![("io.workers (tuned at 1:15)".to_owned(), "8 → 2".to_owned())]
        );
    }

    #[test]
    fn changes_read_as_signed_percentages() {
        assert_eq!(change(100.0, 150.0), "+50.0%");
        assert_eq!(change(200.0, 100.0), "-50.0%");
        assert_eq!(change(5.0, 5.0), "=");
        assert_eq!(change(0.0, 3.0), "new");
        assert_eq!(change(0.0, 0.0), "=");
    }
}
