//! A finished job's report, and the replay of its leftovers.

use leptos::prelude::*;
use shared::metrics::JobReport;

use crate::api;
use crate::format::{count, duration_ms};
use crate::pages::records::{Kind, Records};
use crate::pages::{rate, tr};

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
