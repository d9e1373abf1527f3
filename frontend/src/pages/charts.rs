//! Line charts drawn as SVG: several series over time with a time axis, y
//! ticks with units, labelled markers (tune events; labels that would
//! overlap a newer one are left out), a crosshair tooltip
//! and a legend that isolates a series; and the job table's sparklines.
//! Text (ticks, labels, the tooltip) is HTML laid over the SVG, which is
//! stretched to its box and would distort text drawn inside it.
//!
//! Charts are pure functions of their data signals; the pages keep at most
//! [`CHART_POINTS`] samples, and each series is thinned to about one point
//! per pixel before it is drawn, so ten minutes of history at the default
//! sample rate redraw cheaply and nothing grows over a long run.

use leptos::prelude::*;

/// Points kept per chart: ten minutes at the default 4 snapshots a second.
pub const CHART_POINTS: usize = 2400;

/// Drawing width in SVG units (the SVG scales to its box).
const W: f64 = 360.0;
/// Drawing height in SVG units.
const H: f64 = 110.0;
/// Most points drawn per series: about one per unit of width.
pub const MAX_DRAWN: usize = 400;

/// One line: a label and `(elapsed ms, value)` points, oldest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Shown in the legend.
    pub label: String,
    /// Time since the job started, and the value then.
    pub points: Vec<(u64, f64)>,
}

/// What a chart draws: lines, and vertical markers with a label.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plot {
    /// The lines, each in its own colour.
    pub series: Vec<Series>,
    /// `(elapsed ms, label)` of events to mark, such as a tune.
    pub markers: Vec<(u64, String)>,
}

impl Plot {
    /// The time span covered by all series.
    fn span(&self) -> Option<(u64, u64)> {
        let mut it = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0));
        let first = it.next()?;
        let (lo, hi) = it.fold((first, first), |(lo, hi), x| (lo.min(x), hi.max(x)));
        Some((lo, hi.max(lo + 1)))
    }
}

/// Keeps about `max` points, evenly spaced, always with the newest.
pub fn thin(points: &[(u64, f64)], max: usize) -> Vec<(u64, f64)> {
    if points.len() <= max || max < 2 {
        return points.to_vec();
    }
    let step = points.len() as f64 / (max - 1) as f64;
    (0..max - 1)
        .map(|i| points[(i as f64 * step) as usize])
        .chain(points.last().copied())
        .collect()
}

/// The SVG `points` attribute of one series within `span` and `max`.
pub fn polyline(points: &[(u64, f64)], span: (u64, u64), max: f64) -> String {
    let (lo, hi) = span;
    thin(points, MAX_DRAWN)
        .iter()
        .map(|(x, y)| {
            let px = (x.saturating_sub(lo)) as f64 / (hi - lo) as f64 * W;
            let py = H - y / max * (H - 6.0) - 3.0;
            format!("{px:.1},{py:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Colours per chart: enough that a chart's series never share one (a
/// pipeline has at most a dozen nodes on screen; beyond, they repeat).
pub const PALETTE: usize = 12;

/// A "nice" upper bound for a y axis: 1, 2, 2.5 or 5 times a power of ten,
/// at least `max`.
pub fn nice_ceil(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= max * (1.0 - 1e-9) {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Time ticks over `span` (elapsed ms): a round step giving at most five.
pub fn time_ticks(span: (u64, u64)) -> Vec<u64> {
    const STEPS: [u64; 14] = [
        1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
        1_800_000, 3_600_000, 7_200_000,
    ];
    let (lo, hi) = span;
    let width = hi.saturating_sub(lo).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| width / s <= 4)
        .unwrap_or(width.div_ceil(4));
    let first = lo.div_ceil(step) * step;
    (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= hi)
        .collect()
}

/// An elapsed time as `m:ss` (or `h:mm:ss`), for the time axis.
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Which markers' labels a chart shows, for markers at `pcts` (percent of
/// the width, oldest first): the newest, then each older one at least
/// `gap` percent from the last label shown, so labels never pile up over
/// one another. A marker without a label still has its line and tooltip.
pub fn labelled(pcts: &[f64], gap: f64) -> Vec<bool> {
    let mut shown = vec![false; pcts.len()];
    let mut last: Option<f64> = None;
    for (i, p) in pcts.iter().enumerate().rev() {
        if last.is_none_or(|l| (l - p).abs() >= gap) {
            shown[i] = true;
            last = Some(*p);
        }
    }
    shown
}

/// Marker labels closer than this (percent of the chart's width) to a
/// newer one are left out.
const LABEL_GAP: f64 = 22.0;

/// The value of `points` nearest to time `t` (points in time order).
pub fn value_at(points: &[(u64, f64)], t: u64) -> Option<(u64, f64)> {
    let i = points.partition_point(|p| p.0 < t);
    let after = points.get(i);
    let before = i.checked_sub(1).and_then(|j| points.get(j));
    match (before, after) {
        (Some(b), Some(a)) => Some(if t - b.0 <= a.0 - t { *b } else { *a }),
        (Some(p), None) | (None, Some(p)) => Some(*p),
        (None, None) => None,
    }
}

/// A chart of one or more series over time: a time axis, y ticks with
/// units, labelled tune markers, a crosshair listing every series' value
/// under the pointer, and a legend whose entries isolate their series.
#[component]
pub fn Chart(
    /// What it shows (translated).
    #[prop(into)]
    title: Signal<&'static str>,
    /// For browser tests.
    testid: &'static str,
    /// The data.
    #[prop(into)]
    plot: Signal<Plot>,
    /// How to print a value.
    unit: fn(f64) -> String,
    /// Outlined: the running lesson says to watch it.
    #[prop(optional, into)]
    focus: Signal<bool>,
) -> impl IntoView {
    // The series shown alone, after a click on its legend entry.
    let isolated = RwSignal::new(None::<String>);
    // Where the pointer is, as a share of the drawing's width.
    let hover = RwSignal::new(None::<f64>);
    let shown = move |label: &str| isolated.with(|i| i.as_deref().is_none_or(|x| x == label));
    let top = move || {
        let p = plot.get();
        let max = p
            .series
            .iter()
            .filter(|s| shown(&s.label))
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max);
        nice_ceil(max)
    };
    let lines = move || {
        let p = plot.get();
        let Some(span) = p.span() else {
            return Vec::new();
        };
        let max = top();
        p.series
            .iter()
            .enumerate()
            .filter(|(_, s)| shown(&s.label))
            .map(|(i, s)| {
                let points = polyline(&s.points, span, max);
                view! { <polyline class=format!("line s{}", i % PALETTE) data-series=s.label.clone() points=points /> }
            })
            .collect::<Vec<_>>()
    };
    let grid = move || {
        [0.5, 1.0]
            .map(|f| {
                let y = format!("{:.1}", H - f * (H - 6.0) - 3.0);
                view! { <line class="grid" x1="0" x2=W.to_string() y1=y.clone() y2=y /> }
            })
            .to_vec()
    };
    let y_labels = move || {
        let max = top();
        [1.0, 0.5, 0.0]
            .map(|f| {
                let pct = (1.0 - f) * 100.0;
                view! { <span class="ytick" style=format!("top: calc({pct:.0}% - .5em)")>{unit(max * f)}</span> }
            })
            .to_vec()
    };
    let x_labels = move || {
        let Some((lo, hi)) = plot.get().span() else {
            return Vec::new();
        };
        time_ticks((lo, hi))
            .into_iter()
            .map(|t| {
                let pct = (t - lo) as f64 / (hi - lo) as f64 * 100.0;
                view! { <span class="xtick" style=format!("left: {pct:.1}%")>{clock(t)}</span> }
            })
            .collect::<Vec<_>>()
    };
    let markers = move || {
        let p = plot.get();
        let Some((lo, hi)) = p.span() else {
            return (Vec::new(), Vec::new());
        };
        let within: Vec<(f64, &String)> = p
            .markers
            .iter()
            .filter(|(x, _)| (lo..=hi).contains(x))
            .map(|(x, label)| ((x - lo) as f64 / (hi - lo) as f64 * 100.0, label))
            .collect();
        let pcts: Vec<f64> = within.iter().map(|m| m.0).collect();
        let shown = labelled(&pcts, LABEL_GAP);
        within
            .into_iter()
            .zip(shown)
            .map(|((pct, label), shown)| {
                let px = format!("{:.1}", pct / 100.0 * W);
                (
                    view! {
                        <line class="marker" data-testid="marker" x1=px.clone() x2=px y1="0" y2=H.to_string()>
                            <title>{label.clone()}</title>
                        </line>
                    },
                    // Anchored by as much of its width as the marker is
                    // across the chart, so a label at either end stays
                    // inside it.
                    shown.then(|| view! { <span class="marker-label" data-testid="marker-label" style=format!("left: {pct:.1}%; transform: translateX(-{pct:.1}%)") title=label.clone()>{label.clone()}</span> }),
                )
            })
            .unzip::<_, _, Vec<_>, Vec<_>>()
    };
    let crosshair = move || {
        let f = hover.get()?;
        let p = plot.get();
        let (lo, hi) = p.span()?;
        let t = lo + ((hi - lo) as f64 * f) as u64;
        let rows = p
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| shown(&s.label))
            .filter_map(|(i, s)| {
                let (_, v) = value_at(&s.points, t)?;
                Some(view! {
                    <li><span class=format!("swatch s{}", i % PALETTE) aria-hidden="true"></span>{s.label.clone()}" "<strong>{unit(v)}</strong></li>
                })
            })
            .collect::<Vec<_>>();
        let pct = f * 100.0;
        // The tooltip sits on the side with more room.
        let side = if f > 0.5 {
            format!("right: {:.1}%", 100.0 - pct)
        } else {
            format!("left: {pct:.1}%")
        };
        Some(view! {
            <div class="crosshair" style=format!("left: {pct:.1}%")></div>
            <div class="tooltip" data-testid="chart-tooltip" style=side>
                <div class="tooltip-time">{clock(t)}</div>
                <ul>{rows}</ul>
            </div>
        })
    };
    let on_move = move |ev: leptos::ev::MouseEvent| {
        let Some(el) = ev
            .current_target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
        else {
            return;
        };
        let width = f64::from(el.client_width()).max(1.0);
        hover.set(Some((f64::from(ev.offset_x()) / width).clamp(0.0, 1.0)));
    };
    let legend = move || {
        plot.get()
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let last = s.points.last().map(|p| unit(p.1)).unwrap_or_else(|| "—".into());
                let label = s.label.clone();
                let on = shown(&s.label);
                let alone = isolated.with(|x| x.as_deref() == Some(s.label.as_str()));
                view! {
                    <li class:off=!on>
                        <button type="button" class="legend-item" data-testid="legend-item" aria-pressed=alone.to_string()
                            title="show this series alone (click again for all)"
                            on:click=move |_| isolated.update(|x| {
                                *x = if x.as_deref() == Some(label.as_str()) { None } else { Some(label.clone()) };
                            })>
                            <span class=format!("swatch s{}", i % PALETTE) aria-hidden="true"></span>
                            {s.label.clone()}" "<strong>{last}</strong>
                        </button>
                    </li>
                }
            })
            .collect::<Vec<_>>()
    };
    view! {
        <figure class="chart" class:focus=move || focus.get() data-testid=testid
            data-samples=move || plot.with(|p| p.series.iter().map(|s| s.points.len()).max().unwrap_or(0))>
            <figcaption>{move || title.get()}</figcaption>
            <div class="plot-area">
                <div class="yaxis" aria-hidden="true">{y_labels}</div>
                <div class="plot" on:mousemove=on_move on:mouseleave=move |_| hover.set(None)>
                    <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-label=move || title.get()>
                        {grid}
                        {move || markers().0}
                        {lines}
                    </svg>
                    {move || markers().1}
                    {crosshair}
                    <div class="xaxis" aria-hidden="true">{x_labels}</div>
                </div>
            </div>
            <ul class="legend">{legend}</ul>
        </figure>
    }
}

/// A tiny line of recent values, for table cells.
#[component]
pub fn Sparkline(values: Signal<Vec<f64>>) -> impl IntoView {
    let points = move || {
        let v: Vec<(u64, f64)> = values
            .get()
            .into_iter()
            .enumerate()
            .map(|(i, y)| (i as u64, y))
            .collect();
        let max = v.iter().map(|p| p.1).fold(0.0_f64, f64::max).max(1e-9);
        let span = (0, v.len().max(2) as u64 - 1);
        polyline(&v, span, max)
    };
    view! {
        <svg class="spark" data-testid="sparkline" viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" aria-hidden="true">
            <polyline class="line s0" points=points />
        </svg>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_ends_and_the_budget() {
        let pts: Vec<(u64, f64)> = (0..2400).map(|i| (i, i as f64)).collect();
        let t = thin(&pts, 400);
        assert_eq!(t.len(), 400);
        assert_eq!(t.first(), Some(&(0, 0.0)));
        assert_eq!(t.last(), Some(&(2399, 2399.0)));
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "still in time order");
        assert_eq!(thin(&pts[..10], 400).len(), 10);
    }

    #[test]
    fn polylines_span_the_width_and_stay_inside_the_height() {
        let pts = [(1000, 0.0), (2000, 5.0), (3000, 10.0)];
        let s = polyline(&pts, (1000, 3000), 10.0);
        let coords: Vec<(f64, f64)> = s
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse().unwrap(), y.parse().unwrap())
            })
            .collect();
        assert_eq!(coords[0].0, 0.0);
        assert_eq!(coords[2].0, W);
        assert!(coords.iter().all(|(_, y)| (0.0..=H).contains(y)));
        assert!(coords[2].1 < coords[0].1, "bigger values draw higher");
    }

    #[test]
    fn axes_get_round_ticks() {
        assert_eq!(nice_ceil(7.0), 10.0);
        assert_eq!(nice_ceil(1474.0), 2000.0);
        assert_eq!(nice_ceil(2300.0), 2500.0);
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(nice_ceil(0.04), 0.05);
        assert_eq!(
            time_ticks((0, 60_000)),
            vec![0, 15_000, 30_000, 45_000, 60_000]
        );
        assert_eq!(time_ticks((1_200, 9_800)), vec![2_000, 4_000, 6_000, 8_000]);
        assert!(time_ticks((0, 600_000)).len() <= 5);
        assert_eq!(clock(75_000), "1:15");
        assert_eq!(clock(3_725_000), "1:02:05");
    }

    #[test]
    fn marker_labels_that_would_overlap_a_newer_one_are_left_out() {
        assert_eq!(labelled(&[], 22.0), Vec::<bool>::new());
        assert_eq!(labelled(&[50.0], 22.0), vec![true]);
        // The newest wins; older ones too close to it are left out.
        assert_eq!(
            labelled(&[10.0, 60.0, 70.0, 90.0], 22.0),
            vec![true, true, false, true]
        );
        assert_eq!(
            labelled(&[10.0, 10.0, 10.0], 22.0),
            vec![false, false, true]
        );
        assert_eq!(labelled(&[0.0, 30.0, 60.0, 90.0], 22.0), vec![true; 4]);
    }

    #[test]
    fn the_crosshair_reads_the_nearest_point() {
        let pts = [(0, 1.0), (1000, 2.0), (2000, 3.0)];
        assert_eq!(value_at(&pts, 400), Some((0, 1.0)));
        assert_eq!(value_at(&pts, 600), Some((1000, 2.0)));
        assert_eq!(value_at(&pts, 5000), Some((2000, 3.0)));
        assert_eq!(value_at(&[], 5), None);
    }

    #[test]
    fn the_span_covers_every_series() {
        let plot = Plot {
            series: vec![
                Series {
                    label: "a".into(),
                    points: vec![(500, 1.0), (900, 2.0)],
                },
                Series {
                    label: "b".into(),
                    points: vec![(100, 7.0)],
                },
            ],
            markers: vec![],
        };
        assert_eq!(plot.span(), Some((100, 900)));
        assert_eq!(Plot::default().span(), None);
    }
}
