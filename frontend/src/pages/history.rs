//! Finished runs, reopened and compared.

use leptos::prelude::*;

use super::{rate, tr};
use crate::api;
use crate::format::duration_ms;

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
