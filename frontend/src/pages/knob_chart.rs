//! A chart against a knob rather than time: every run as a dot, the
//! medians joined, an optional dashed curve (the USL fit), a vertical mark
//! at the knee or the capacity found, x ticks at the values run, y ticks
//! with units, and a legend.

use leptos::prelude::*;

use super::charts::nice_ceil;

const W: f64 = 600.0;
const H: f64 = 220.0;
/// Colours a chart cycles through (as `.s0`…`.s11` in the stylesheet).
const PALETTE: usize = 12;

/// One line of a knob chart.
///
/// Why: a sweep's medians, another sweep's for a comparison, or a fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Shown in the legend.
    pub label: String,
    /// Knob value and median, in knob order.
    pub points: Vec<(f64, f64)>,
    /// Every run, drawn faintly.
    pub dots: Vec<(f64, f64)>,
    /// Drawn dashed (a fitted curve).
    pub dashed: bool,
}

/// The x scale over every curve's values.
pub fn x_span(curves: &[Curve]) -> Option<(f64, f64)> {
    let xs = curves.iter().flat_map(|c| c.points.iter().map(|p| p.0));
    let lo = xs.clone().fold(f64::INFINITY, f64::min);
    let hi = xs.fold(f64::NEG_INFINITY, f64::max);
    (lo.is_finite() && hi.is_finite()).then_some((lo, if hi > lo { hi } else { lo + 1.0 }))
}

/// Where `x` falls across the width, 0..1: on a log scale when the values
/// span a wide positive range (doubling worker counts), else linear.
pub fn x_share(x: f64, (lo, hi): (f64, f64)) -> f64 {
    if lo > 0.0 && hi / lo >= 16.0 && x > 0.0 {
        ((x.log2() - lo.log2()) / (hi.log2() - lo.log2())).clamp(0.0, 1.0)
    } else {
        ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    }
}

/// A chart of curves against a knob.
#[component]
pub fn KnobChart(
    /// What it shows (translated).
    #[prop(into)]
    title: String,
    /// For browser tests.
    testid: &'static str,
    /// The knob's path, under the x axis.
    knob: String,
    /// The lines.
    curves: Vec<Curve>,
    /// A vertical mark: knob value and its label.
    mark: Option<(f64, String)>,
    /// How to print a value.
    unit: fn(f64) -> String,
) -> impl IntoView {
    let Some(span) = x_span(&curves) else {
        return view! { <figure class="chart" data-testid=testid><figcaption>{title}</figcaption><p>"—"</p></figure> }.into_any();
    };
    let ymax = nice_ceil(
        curves
            .iter()
            .flat_map(|c| c.points.iter().chain(c.dots.iter()).map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let sx = move |x: f64| x_share(x, span) * (W - 12.0) + 6.0;
    let sy = move |y: f64| H - 6.0 - (y / ymax).clamp(0.0, 1.0) * (H - 12.0);
    let mut xs: Vec<f64> = curves
        .iter()
        .filter(|c| !c.dashed)
        .flat_map(|c| c.points.iter().map(|p| p.0))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let lines = curves
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let d: Vec<String> = c
                .points
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
                .collect();
            let dots = c
                .dots
                .iter()
                .map(|(x, y)| {
                    // A zero-length line with round caps: a round dot even
                    // though the drawing stretches to the card's width.
                    let (px, py) = (format!("{:.1}", sx(*x)), format!("{:.1}", sy(*y)));
                    view! { <line class=format!("dot s{}", i % PALETTE) data-testid="run-dot" x1=px.clone() x2=px y1=py.clone() y2=py /> }
                })
                .collect::<Vec<_>>();
            let medians = c
                .points
                .iter()
                .filter(|_| !c.dashed)
                .map(|(x, y)| {
                    let (px, py) = (format!("{:.1}", sx(*x)), format!("{:.1}", sy(*y)));
                    view! { <line class=format!("median s{}", i % PALETTE) data-testid="median-dot" x1=px.clone() x2=px y1=py.clone() y2=py /> }
                })
                .collect::<Vec<_>>();
            view! {
                <polyline class=format!("line s{}", i % PALETTE) class:dashed=c.dashed data-series=c.label.clone() points=d.join(" ") />
                {dots}
                {medians}
            }
        })
        .collect::<Vec<_>>();
    let mark_view = mark.clone().map(|(x, label)| {
        let px = format!("{:.1}", sx(x));
        view! {
            <line class="knee" data-testid="knee-mark" x1=px.clone() x2=px y1="0" y2=H.to_string()>
                <title>{label.clone()}</title>
            </line>
        }
    });
    let mark_label = mark.map(|(x, label)| {
        let pct = sx(x) / W * 100.0;
        view! { <span class="marker-label knee-label" data-testid="knee-label" style=format!("left: {pct:.1}%")>{label}</span> }
    });
    let x_labels = xs
        .iter()
        .map(|x| {
            let pct = sx(*x) / W * 100.0;
            let text = if x.fract() == 0.0 {
                format!("{}", *x as i64)
            } else {
                format!("{x:.2}")
            };
            view! { <span class="xtick" style=format!("left: {pct:.1}%")>{text}</span> }
        })
        .collect::<Vec<_>>();
    let y_labels = [1.0, 0.5, 0.0]
        .map(|f| {
            let pct = (1.0 - f) * 100.0;
            view! { <span class="ytick" style=format!("top: calc({pct:.0}% - .5em)")>{unit(ymax * f)}</span> }
        })
        .to_vec();
    let legend = curves
        .iter()
        .enumerate()
        .map(|(i, c)| {
            view! { <li><span class=format!("swatch s{}", i % PALETTE) class:dashed=c.dashed aria-hidden="true"></span>{c.label.clone()}</li> }
        })
        .collect::<Vec<_>>();
    let points = curves
        .iter()
        .filter(|c| !c.dashed)
        .map(|c| c.points.len())
        .max()
        .unwrap_or(0);
    view! {
        <figure class="chart knob-chart" data-testid=testid data-points=points.to_string()>
            <figcaption>{title.clone()}</figcaption>
            <div class="plot-area">
                <div class="yaxis" aria-hidden="true">{y_labels}</div>
                <div class="plot">
                    <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-label=title>
                        <line class="grid" x1="0" x2=W.to_string() y1=format!("{:.1}", sy(ymax / 2.0)) y2=format!("{:.1}", sy(ymax / 2.0)) />
                        {mark_view}
                        {lines}
                    </svg>
                    {mark_label}
                    <div class="xaxis" aria-hidden="true">{x_labels}</div>
                </div>
            </div>
            <p class="xname"><code>{knob}</code></p>
            <ul class="legend">{legend}</ul>
        </figure>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_x_scale_spans_every_value_run() {
        let c = |pts: &[(f64, f64)]| Curve {
            label: "a".into(),
            points: pts.to_vec(),
            dots: Vec::new(),
            dashed: false,
        };
        let span = x_span(&[c(&[(1.0, 5.0), (8.0, 9.0)]), c(&[(2.0, 1.0), (16.0, 2.0)])]).unwrap();
        assert_eq!(span, (1.0, 16.0));
        assert_eq!(x_share(1.0, span), 0.0);
        assert_eq!(x_share(16.0, span), 1.0);
        // 1 … 16 is wide enough for a log scale: 4 sits halfway.
        assert!((x_share(4.0, span) - 0.5).abs() < 1e-12);
        assert_eq!(
            x_span(&[c(&[(4.0, 1.0)])]),
            Some((4.0, 5.0)),
            "one value still has a width"
        );
        assert_eq!(x_span(&[]), None);
    }
}
