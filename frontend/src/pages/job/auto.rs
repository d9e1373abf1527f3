//! Stages whose limit the engine chooses (`workers = "auto"` on threads,
//! `concurrency = "auto"` on tasks): what the stage card says about its
//! controller, the limit over time for the chart, the controller's changes
//! as chart markers, and the job's events as rows of its timeline.

use leptos::prelude::*;
use shared::metrics::{AutoSnapshot, EventKind, JobEvent};

use super::series::{History, drawn};
use crate::pages::charts::{Series, clock};
use crate::pages::tr;

/// Rows a job's timeline shows at most (the newest).
const TIMELINE_ROWS: usize = 200;

/// An automatic limit's range as the card shows it: `1–32`.
pub fn range_label(a: &AutoSnapshot) -> String {
    format!("{}–{}", a.min, a.max)
}

/// What the controller last measured: the service time over its baseline
/// (`2.1×`, `—` before a reading) and the baseline (`1.2ms`); `None` before
/// it has a baseline.
pub fn measured_label(a: &AutoSnapshot) -> Option<(String, String)> {
    let base = crate::format::micros(a.baseline_us?);
    let ratio = match a.latency_ratio {
        Some(r) if r.is_finite() => format!("{r:.1}×"),
        _ => "—".to_owned(),
    };
    Some((ratio, base))
}

/// One line per stage with an automatic limit: the limit its controller
/// chose at each drawn snapshot from `from` on, labelled with the stage and
/// the field it drives (`io workers`).
pub(super) fn limit_series(h: &History, from: u64) -> Vec<Series> {
    let Some(last) = h.back() else {
        return Vec::new();
    };
    last.nodes
        .iter()
        .filter_map(|node| {
            let name = node.name.as_str();
            let points: Vec<(u64, f64)> = drawn(h, from)
                .filter_map(|s| {
                    let a = s.nodes.iter().find(|n| n.name == name)?.auto.as_ref()?;
                    Some((s.elapsed_ms, f64::from(a.limit)))
                })
                .collect();
            if points.is_empty() {
                return None;
            }
            let field = h
                .iter()
                .rev()
                .find_map(|s| s.nodes.iter().find(|n| n.name == name)?.auto.as_ref())
                .map_or("", |a| a.field.as_str());
            Some(Series {
                label: format!("{name} {field}").trim_end().to_owned(),
                points,
            })
        })
        .collect()
}

/// A controller's change (or a pin, or auto turned back on) of one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoChange<'a> {
    /// Time since the job started.
    pub at_ms: u64,
    /// Stage name.
    pub stage: &'a str,
    /// `workers` or `concurrency`.
    pub field: &'a str,
    /// Value before.
    pub from: f64,
    /// Value after (`from` when only the mode changed).
    pub to: f64,
    /// Why, in words.
    pub reason: &'a str,
}

/// The automatic limits' events of a job, oldest first.
pub fn auto_changes(events: &[JobEvent]) -> impl Iterator<Item = AutoChange<'_>> {
    events.iter().filter_map(|e| match &e.kind {
        EventKind::Auto {
            stage,
            field,
            from,
            to,
            reason,
        } => Some(AutoChange {
            at_ms: e.elapsed_ms,
            stage,
            field,
            from: *from,
            to: *to,
            reason,
        }),
        EventKind::State { .. } | EventKind::Tuned { .. } => None,
    })
}

/// Chart markers for the controllers' events, labelled with the reason —
/// and the stage first when more than one stage has events, so two
/// controllers' changes are told apart.
pub fn auto_markers(events: &[JobEvent]) -> Vec<(u64, String)> {
    let changes: Vec<AutoChange> = auto_changes(events).collect();
    let one_stage = changes.windows(2).all(|w| w[0].stage == w[1].stage);
    changes
        .into_iter()
        .map(|c| {
            let label = if one_stage {
                c.reason.to_owned()
            } else {
                format!("{}: {}", c.stage, c.reason)
            };
            (c.at_ms, label)
        })
        .collect()
}

/// One row of a job's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Time since the job started.
    pub at_ms: u64,
    /// `state`, `tune` or `auto` (an interface word, translated by the page).
    pub kind: &'static str,
    /// What happened: `io workers 4 → 3`, `running`.
    pub what: String,
    /// A state change's state, which the page shows translated.
    pub state: Option<&'static str>,
    /// Why, when the event says: the controller's reason, a state's reason.
    pub why: Option<String>,
}

/// A knob's value as events print it: `4`, `2.5`.
fn value(x: f64) -> String {
    format!("{x}")
}

/// A job's events as its timeline lists them, newest first: state changes,
/// tunes and the automatic limits' changes, each with what changed (`io
/// workers 4 → 3`; a pin or a switch back to auto, which keeps the value,
/// reads `io workers 4`, or `io workers` when the event gives none) and
/// why.
pub fn event_rows(events: &[JobEvent]) -> Vec<EventRow> {
    events
        .iter()
        .rev()
        .map(|e| match &e.kind {
            EventKind::State { state, reason } => EventRow {
                at_ms: e.elapsed_ms,
                kind: "state",
                what: state.as_str().to_owned(),
                state: Some(state.as_str()),
                why: reason.clone(),
            },
            EventKind::Tuned {
                stage,
                field,
                from,
                to,
            } => EventRow {
                at_ms: e.elapsed_ms,
                kind: "tune",
                what: format!("{stage} {field} {} → {}", value(*from), value(*to)),
                state: None,
                why: None,
            },
            EventKind::Auto {
                stage,
                field,
                from,
                to,
                reason,
            } => EventRow {
                at_ms: e.elapsed_ms,
                kind: "auto",
                what: if from == to && *to <= 0.0 {
                    // A pin or a switch back to auto, which says no value.
                    format!("{stage} {field}")
                } else if from == to {
                    format!("{stage} {field} {}", value(*to))
                } else {
                    format!("{stage} {field} {} → {}", value(*from), value(*to))
                },
                state: None,
                why: (!reason.is_empty()).then(|| reason.clone()),
            },
        })
        .collect()
}

/// A job's timeline: its events, newest first — state changes, tunes and
/// the automatic limits' changes with the controller's reason.
#[component]
pub(super) fn EventList(rows: Memo<Vec<EventRow>>) -> impl IntoView {
    let lang = expect_context::<RwSignal<crate::i18n::Lang>>();
    let shown = move || {
        rows.get()
            .into_iter()
            .take(TIMELINE_ROWS)
            .map(|r| {
                let kind = r.kind;
                let what = match r.state {
                    Some(s) => crate::i18n::t(lang.get(), s).to_owned(),
                    None => r.what,
                };
                view! {
                    <li data-testid="event-row" data-kind=kind class=format!("event event-{kind}")>
                        <span class="event-at">{clock(r.at_ms)}</span>
                        <span class="event-kind">{tr(kind)}</span>
                        <span class="event-what" data-testid="event-what">{what}</span>
                        {r.why.map(|w| view! { <span class="event-why" data-testid="event-why">{w}</span> })}
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <section class="card events" data-testid="events">
            <h2>{tr("Events")}</h2>
            <ol class="timeline">{shown}</ol>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::metrics::{JobSnapshot, JobState, NodeSnapshot};

    fn auto(limit: u32, pinned: bool) -> AutoSnapshot {
        AutoSnapshot {
            field: "workers".into(),
            limit,
            min: 1,
            max: 32,
            pinned,
            baseline_us: Some(1200),
            latency_ratio: Some(2.14),
            reason: Some("latency 2.1× baseline → −25%".into()),
        }
    }

    fn event(elapsed_ms: u64, kind: EventKind) -> JobEvent {
        JobEvent {
            at_ms: 0,
            elapsed_ms,
            kind,
        }
    }

    fn change(at: u64, stage: &str, from: f64, to: f64, reason: &str) -> JobEvent {
        event(
            at,
            EventKind::Auto {
                stage: stage.into(),
                field: "workers".into(),
                from,
                to,
                reason: reason.into(),
            },
        )
    }

    #[test]
    fn the_card_reads_the_range_and_what_was_measured() {
        let a = auto(8, false);
        assert_eq!(range_label(&a), "1–32");
        let pair = |r: &str, b: &str| Some((r.to_owned(), b.to_owned()));
        assert_eq!(measured_label(&a), pair("2.1×", "1.2ms"));
        let fresh = AutoSnapshot {
            baseline_us: None,
            ..a.clone()
        };
        assert_eq!(measured_label(&fresh), None, "no baseline yet");
        let no_ratio = AutoSnapshot {
            latency_ratio: None,
            ..a
        };
        assert_eq!(measured_label(&no_ratio), pair("—", "1.2ms"));
    }

    #[test]
    fn the_limit_chart_has_a_line_per_auto_stage_only() {
        let snap = |ms: u64, limit: Option<u32>| JobSnapshot {
            elapsed_ms: ms,
            nodes: vec![
                NodeSnapshot {
                    name: "parse".into(),
                    workers: 2,
                    ..Default::default()
                },
                NodeSnapshot {
                    name: "io".into(),
                    auto: limit.map(|l| auto(l, false)),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let h: History = [
            snap(0, None),
            snap(250, Some(1)),
            snap(500, Some(2)),
            snap(750, Some(4)),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            limit_series(&h, 0),
            vec![Series {
                label: "io workers".into(),
                points: vec![(250, 1.0), (500, 2.0), (750, 4.0)],
            }]
        );
        assert_eq!(limit_series(&h, 600)[0].points, vec![(750, 4.0)]);
        let fixed: History = [snap(0, None)].into_iter().collect();
        assert!(limit_series(&fixed, 0).is_empty(), "no auto stage, no line");
        assert!(limit_series(&History::new(), 0).is_empty());
    }

    #[test]
    fn controller_events_become_markers_labelled_with_their_reason() {
        let events = vec![
            change(1000, "io", 1.0, 2.0, "latency 1.0× baseline → +100%"),
            event(
                1500,
                EventKind::Tuned {
                    stage: "io".into(),
                    field: "workers".into(),
                    from: 2.0,
                    to: 6.0,
                },
            ),
            change(1500, "io", 2.0, 6.0, "pinned by a manual tune"),
        ];
        assert_eq!(
            auto_markers(&events),
            vec![
                (1000, "latency 1.0× baseline → +100%".to_owned()),
                (1500, "pinned by a manual tune".to_owned()),
            ]
        );
        // Two controllers: the stage tells them apart.
        let two = vec![
            change(1000, "io", 1.0, 2.0, "climbing"),
            change(2000, "fetch", 8.0, 6.0, "latency 2.1× baseline → −25%"),
        ];
        assert_eq!(
            auto_markers(&two),
            vec![
                (1000, "io: climbing".to_owned()),
                (2000, "fetch: latency 2.1× baseline → −25%".to_owned()),
            ]
        );
        // Tune markers stay tunes only.
        assert_eq!(
            super::super::tune_markers(&events),
            vec![(1500, "io workers 2 → 6".to_owned())]
        );
    }

    #[test]
    fn the_timeline_lists_states_tunes_and_auto_changes_newest_first() {
        let events = vec![
            event(
                0,
                EventKind::State {
                    state: JobState::Running,
                    reason: None,
                },
            ),
            change(1000, "io", 1.0, 2.0, "latency 1.0× baseline → +100%"),
            event(
                1500,
                EventKind::Tuned {
                    stage: "fetch".into(),
                    field: "rate_limit".into(),
                    from: 0.0,
                    to: 2.5,
                },
            ),
            change(2000, "io", 2.0, 2.0, "pinned by a manual tune"),
            change(3000, "io", 2.0, 2.0, ""),
            change(4000, "io", 0.0, 0.0, "auto turned back on"),
        ];
        let rows = event_rows(&events);
        let brief: Vec<(u64, &str, &str, Option<&str>)> = rows
            .iter()
            .map(|r| (r.at_ms, r.kind, r.what.as_str(), r.why.as_deref()))
            .collect();
        assert_eq!(
            brief,
            vec![
                (4000, "auto", "io workers", Some("auto turned back on")),
                (3000, "auto", "io workers 2", None),
                (
                    2000,
                    "auto",
                    "io workers 2",
                    Some("pinned by a manual tune")
                ),
                (1500, "tune", "fetch rate_limit 0 → 2.5", None),
                (
                    1000,
                    "auto",
                    "io workers 1 → 2",
                    Some("latency 1.0× baseline → +100%")
                ),
                (0, "state", "running", None),
            ]
        );
        assert_eq!(auto_changes(&events).count(), 4);
    }
}
