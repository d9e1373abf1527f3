//! What the job page's charts draw: the kept snapshots thinned to the
//! chart's width, lines per node, tune markers, what is left per node.

use shared::metrics::{EventKind, JobEvent, JobSnapshot, NodeSnapshot};

use crate::pages::charts::{MAX_DRAWN, Series};

/// The snapshots kept for a job's charts, oldest first.
pub(super) type History = std::collections::VecDeque<JobSnapshot>;

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
pub(super) fn per_node(h: &History, from: u64, value: fn(&NodeSnapshot) -> f64) -> Vec<Series> {
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
pub(super) fn lines(h: &History, from: u64, values: &[Line]) -> Vec<Series> {
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
        EventKind::State { .. } | EventKind::Auto { .. } => None,
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
