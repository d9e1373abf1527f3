//! Line charts drawn as SVG: several series over time with markers (tune
//! events), and the job table's sparklines.
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

    /// The largest value of all series (at least a tiny positive number).
    fn max(&self) -> f64 {
        self.series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max)
            .max(1e-9)
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

/// A chart of one or more series over time, with markers.
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
    let lines = move || {
        let p = plot.get();
        let Some(span) = p.span() else {
            return Vec::new();
        };
        let max = p.max();
        p.series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let points = polyline(&s.points, span, max);
                view! { <polyline class=format!("line s{}", i % 6) data-series=s.label.clone() points=points /> }
            })
            .collect::<Vec<_>>()
    };
    let markers = move || {
        let p = plot.get();
        let Some((lo, hi)) = p.span() else {
            return Vec::new();
        };
        p.markers
            .iter()
            .filter(|(x, _)| (lo..=hi).contains(x))
            .map(|(x, label)| {
                let px = format!("{:.1}", (x - lo) as f64 / (hi - lo) as f64 * W);
                view! {
                    <line class="marker" data-testid="marker" x1=px.clone() x2=px y1="0" y2=H.to_string()>
                        <title>{label.clone()}</title>
                    </line>
                }
            })
            .collect::<Vec<_>>()
    };
    let legend = move || {
        plot.get()
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let last = s.points.last().map(|p| unit(p.1)).unwrap_or_default();
                view! {
                    <li><span class=format!("swatch s{}", i % 6) aria-hidden="true"></span>
                        {s.label.clone()}" "<strong>{last}</strong></li>
                }
            })
            .collect::<Vec<_>>()
    };
    let peak = move || unit(plot.get().max());
    view! {
        <figure class="chart" class:focus=move || focus.get() data-testid=testid
            data-samples=move || plot.with(|p| p.series.iter().map(|s| s.points.len()).max().unwrap_or(0))>
            <figcaption>{move || title.get()}<span class="peak">"max "{peak}</span></figcaption>
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-label=move || title.get()>
                {markers}
                {lines}
            </svg>
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
        assert_eq!(plot.max(), 7.0);
        assert_eq!(Plot::default().span(), None);
    }
}
