//! The live job table: filters, a throughput sparkline per job, and inline
//! drain and abort.

use leptos::prelude::*;
use shared::api::StopMode;

use super::charts::Sparkline;
use super::{rate, stop_job, tr};
use crate::format::{count, duration_ms, local_time};
use crate::live::LiveLink;

/// Which jobs the state filter lets through.
fn state_matches(filter: &str, state: shared::metrics::JobState) -> bool {
    match filter {
        "active" => !state.is_finished(),
        "finished" => state.is_finished(),
        "" | "all" => true,
        one => state.as_str() == one,
    }
}

/// The state filter's choices.
const STATES: [&str; 10] = [
    "all",
    "active",
    "finished",
    "running",
    "draining",
    "completed",
    "stopped",
    "aborted",
    "failed",
    "interrupted",
];

/// A column the job table sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// When it started (the default, newest first).
    Started,
    /// Its name.
    Name,
    /// Its state.
    State,
    /// Items sunk per second.
    Throughput,
    /// End-to-end P99.
    P99,
    /// How long it has run.
    Elapsed,
}

impl SortBy {
    /// Every column, in the order `?sort=` names them.
    const ALL: [SortBy; 6] = [
        SortBy::Started,
        SortBy::Name,
        SortBy::State,
        SortBy::Throughput,
        SortBy::P99,
        SortBy::Elapsed,
    ];

    /// The column's name in the address (`?sort=throughput`).
    pub fn as_str(self) -> &'static str {
        match self {
            SortBy::Started => "started",
            SortBy::Name => "name",
            SortBy::State => "state",
            SortBy::Throughput => "throughput",
            SortBy::P99 => "p99",
            SortBy::Elapsed => "elapsed",
        }
    }

    /// The column an address names, if any.
    pub fn parse(text: &str) -> Option<SortBy> {
        Self::ALL.into_iter().find(|b| b.as_str() == text)
    }

    /// Whether a first click sorts this column descending (figures and
    /// times: largest first; names and states: A to Z).
    fn descending_first(self) -> bool {
        !matches!(self, SortBy::Name | SortBy::State)
    }
}

/// The table's order: active jobs pinned on top, then by the chosen
/// column (descending when `desc`), newest first among equals.
pub fn compare_jobs(
    a: &shared::api::JobSummary,
    b: &shared::api::JobSummary,
    by: SortBy,
    desc: bool,
) -> std::cmp::Ordering {
    let pinned = a.state.is_finished().cmp(&b.state.is_finished());
    let column = match by {
        SortBy::Started => a.created_at_ms.cmp(&b.created_at_ms),
        SortBy::Name => a.name.cmp(&b.name),
        SortBy::State => a.state.as_str().cmp(b.state.as_str()),
        SortBy::Throughput => a.throughput.total_cmp(&b.throughput),
        SortBy::P99 => a.p99_us.cmp(&b.p99_us),
        SortBy::Elapsed => a.elapsed_ms.cmp(&b.elapsed_ms),
    };
    let column = if desc { column.reverse() } else { column };
    pinned
        .then(column)
        .then(b.created_at_ms.cmp(&a.created_at_ms))
}

/// Running and recent jobs, live.
#[component]
pub fn JobsPage() -> impl IntoView {
    let link = expect_context::<LiveLink>();
    link.watch_jobs();
    let lang = expect_context::<RwSignal<crate::i18n::Lang>>();
    super::page_title(move || crate::i18n::t(lang.get(), "Jobs").to_owned());
    // The filters and the order live in the address (`?state=active&q=io
    // &sort=p99&dir=asc`): a lesson started side by side links here with
    // `?q=`, and a reload keeps what was chosen.
    let query = leptos_router::hooks::use_query_map().get_untracked();
    let state_filter = RwSignal::new(
        query
            .get("state")
            .filter(|s| STATES.contains(&s.as_str()))
            .unwrap_or_else(|| "all".into()),
    );
    let text_filter = RwSignal::new(query.get("q").unwrap_or_default());
    let message = RwSignal::new(String::new());
    // Newest first until a header is clicked; a second click reverses.
    let sort = RwSignal::new(match query.get("sort").and_then(|s| SortBy::parse(&s)) {
        Some(by) => (
            by,
            match query.get("dir").as_deref() {
                Some("asc") => false,
                Some("desc") => true,
                _ => by.descending_first(),
            },
        ),
        None => (SortBy::Started, true),
    });
    super::keep_in_url(move || {
        let (by, desc) = sort.get();
        let default_order = by == SortBy::Started && desc;
        let state = state_filter.get();
        vec![
            ("state", if state == "all" { String::new() } else { state }),
            ("q", text_filter.get()),
            (
                "sort",
                if default_order {
                    String::new()
                } else {
                    by.as_str().into()
                },
            ),
            (
                "dir",
                if default_order || desc == by.descending_first() {
                    String::new()
                } else if desc {
                    "desc".into()
                } else {
                    "asc".into()
                },
            ),
        ]
    });
    let header = move |by: SortBy, label: &'static str, testid: &'static str| {
        let arrow = move || match sort.get() {
            (b, true) if b == by => " ↓",
            (b, false) if b == by => " ↑",
            _ => "",
        };
        let aria = move || match sort.get() {
            (b, true) if b == by => "descending",
            (b, false) if b == by => "ascending",
            _ => "none",
        };
        view! {
            <th aria-sort=aria>
                <button type="button" class="sort" data-testid=testid
                    on:click=move |_| sort.update(|(b, d)| {
                        if *b == by { *d = !*d } else { *b = by; *d = by.descending_first(); }
                    })>
                    {tr(label)}{arrow}
                </button>
            </th>
        }
    };
    let rows = move || {
        let wanted = state_filter.get();
        let needle = text_filter.get().trim().to_lowercase();
        let mut jobs = link.jobs.get();
        let (by, desc) = sort.get();
        jobs.sort_by(|a, b| compare_jobs(a, b, by, desc));
        jobs.into_iter()
            .filter(|j| state_matches(&wanted, j.state))
            .filter(|j| {
                needle.is_empty()
                    || j.name.to_lowercase().contains(&needle)
                    || j.template.as_deref().unwrap_or("").contains(&needle)
                    || j.id.contains(&needle)
            })
            .map(|j| {
                let href = format!("/jobs/{}", j.id);
                let state = j.state.as_str();
                let a = j.accounting;
                let settled = if a.produced == 0 {
                    0.0
                } else {
                    (a.produced as i64 - a.in_flight().max(0)) as f64 / a.produced as f64 * 100.0
                };
                let id = j.id.clone();
                let trail = Signal::derive(move || {
                    link.trails
                        .get()
                        .get(&id)
                        .map(|t| t.iter().copied().collect())
                        .unwrap_or_default()
                });
                let running = !j.state.is_finished();
                let (id_drain, id_abort) = (j.id.clone(), j.id.clone());
                let in_flight = a.in_flight().max(0) as u64;
                view! {
                    <tr data-testid="job-row">
                        <td><a href=href>{j.name.clone()}</a></td>
                        <td>{j.template.clone().unwrap_or_else(|| "—".into())}</td>
                        <td class="num" data-testid="started-at" title=j.id.clone()>{local_time(j.created_at_ms)}</td>
                        <td><span class=format!("state state-{state}") data-testid="job-state">{tr(state)}</span></td>
                        <td class="num">
                            <span data-testid="progress">{count(a.sunk)}" / "{count(a.produced)}</span>
                            <div class="bar slim" title="settled share of produced items">
                                <div class="fill" style=format!("width: {settled:.0}%")></div>
                            </div>
                        </td>
                        <td class="num" data-testid="dropped">{count(a.dropped_by_policy)}</td>
                        <td class="num">{rate(j.throughput)}<Sparkline values=trail /></td>
                        <td class="num">{duration_ms(j.p99_us / 1000)}</td>
                        <td class="num">{duration_ms(j.elapsed_ms)}</td>
                        <td class="row-actions">
                            <Show when=move || running>
                                <button data-testid="row-drain" aria-label=format!("Drain {}", j.name)
                                    on:click={let id = id_drain.clone(); move |_| stop_job(id.clone(), StopMode::Drain, 0, message)}>
                                    {tr("Drain")}
                                </button>
                                <button class="danger" data-testid="row-abort" aria-label=format!("Abort {}", j.name)
                                    on:click={let id = id_abort.clone(); move |_| stop_job(id.clone(), StopMode::Abort, in_flight, message)}>
                                    {tr("Abort")}
                                </button>
                            </Show>
                        </td>
                    </tr>
                }
            })
            .collect_view()
    };
    let states = STATES;
    view! {
        <section class="card" data-testid="page-jobs">
            <h1>{tr("Jobs")}</h1>
            <Show
                when=move || !link.jobs.get().is_empty()
                fallback=move || view! { <p>{tr("No jobs yet.")}" "<a href="/new">{tr("New job")}</a></p> }
            >
                <div class="filters">
                    <label>{tr("State")}" "
                        <select data-testid="filter-state" prop:value=move || state_filter.get() on:change=move |ev| state_filter.set(event_target_value(&ev))>
                            {states.map(|s| view! { <option value=s selected=move || state_filter.get_untracked() == s>{tr(s)}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>{tr("Search")}" "
                        <input type="search" data-testid="filter-text" placeholder="name, template or id"
                            prop:value=move || text_filter.get()
                            on:input=move |ev| text_filter.set(event_target_value(&ev)) />
                    </label>
                    <span class="hint" role="status" data-testid="jobs-message">{move || message.get()}</span>
                </div>
                <table class="jobs">
                    <thead><tr>
                        {header(SortBy::Name, "Name", "sort-name")}<th>{tr("Template")}</th>
                        {header(SortBy::Started, "Started", "sort-started")}{header(SortBy::State, "State", "sort-state")}
                        <th>{tr("Sunk / produced")}</th><th>{tr("Dropped")}</th>
                        {header(SortBy::Throughput, "Throughput", "sort-throughput")}{header(SortBy::P99, "P99", "sort-p99")}
                        {header(SortBy::Elapsed, "Elapsed", "sort-elapsed")}<th><span class="sr-only">{tr("Actions")}</span></th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </Show>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::metrics::JobState;

    #[test]
    fn active_jobs_stay_on_top_whatever_the_column() {
        let job = |name: &str, state, created_at_ms, throughput| shared::api::JobSummary {
            id: name.into(),
            name: name.into(),
            template: None,
            state,
            created_at_ms,
            elapsed_ms: 0,
            accounting: Default::default(),
            throughput,
            p99_us: 0,
        };
        let mut jobs = vec![
            job("b", JobState::Completed, 3, 900.0),
            job("a", JobState::Running, 1, 10.0),
            job("c", JobState::Aborted, 2, 50.0),
            job("d", JobState::Running, 4, 20.0),
        ];
        let order = |jobs: &[shared::api::JobSummary]| {
            jobs.iter()
                .map(|j| j.name.as_str())
                .collect::<Vec<_>>()
                .join("")
        };
        jobs.sort_by(|a, b| compare_jobs(a, b, SortBy::Started, true));
        assert_eq!(order(&jobs), "dabc", "active first, newest first");
        jobs.sort_by(|a, b| compare_jobs(a, b, SortBy::Throughput, true));
        assert_eq!(order(&jobs), "dabc");
        jobs.sort_by(|a, b| compare_jobs(a, b, SortBy::Name, false));
        assert_eq!(order(&jobs), "adbc");
    }

    #[test]
    fn the_state_filter_groups_active_and_finished_jobs() {
        assert!(state_matches("all", JobState::Aborted));
        assert!(state_matches("active", JobState::Draining));
        assert!(!state_matches("active", JobState::Completed));
        assert!(state_matches("finished", JobState::Failed));
        assert!(state_matches("stopped", JobState::Stopped));
        assert!(!state_matches("stopped", JobState::Running));
    }

    #[test]
    fn every_sort_column_round_trips_through_the_address() {
        for by in SortBy::ALL {
            assert_eq!(SortBy::parse(by.as_str()), Some(by));
        }
        assert_eq!(SortBy::parse("nonsense"), None);
    }
}
