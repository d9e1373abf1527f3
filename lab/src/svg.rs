//! A sweep drawn as a standalone SVG: throughput and P99 against the knob,
//! every run as a dot, the medians joined, the knee marked with the rule
//! that found it, and the USL curve overlaid when there is a fit.

use std::fmt::Write;

use shared::lab::{KneeRule, SweepReport};

use crate::verdict::num;

const W: f64 = 640.0;
const H: f64 = 260.0;
const PAD_L: f64 = 64.0;
const PAD_R: f64 = 16.0;
const PAD_T: f64 = 28.0;
const PAD_B: f64 = 40.0;

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Ticks from 0 to about `max`: 5 round steps.
fn ticks(max: f64) -> Vec<f64> {
    if max.is_nan() || max <= 0.0 {
        return vec![0.0, 1.0];
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (0..=((max / step).ceil() as usize))
        .map(|i| i as f64 * step)
        .collect()
}

/// Whether knob values from `lo` to `hi` are drawn on a log scale.
pub fn log_scale(lo: f64, hi: f64) -> bool {
    lo > 0.0 && hi / lo >= 16.0
}

/// One panel: `series` of (x, y) medians, `dots` of every run, an
/// optional curve, and the knee's x.
#[allow(clippy::too_many_arguments)]
fn panel(
    out: &mut String,
    top: f64,
    title: &str,
    unit: &str,
    xs: &[f64],
    medians: &[f64],
    dots: &[(f64, f64)],
    curve: Option<&dyn Fn(f64) -> f64>,
    knee: Option<(f64, &str)>,
    colour: &str,
) {
    let (x0, x1) = (
        xs.first().copied().unwrap_or(0.0),
        xs.last().copied().unwrap_or(1.0),
    );
    // Doubling values (1, 2, 4 … 128) crowd a linear axis: a wide range of
    // positive values is drawn on a log scale.
    let log = log_scale(x0, x1);
    let t = |x: f64| if log { x.log2() } else { x };
    let (t0, t1) = (t(x0), t(x1));
    let span = if t1 > t0 { t1 - t0 } else { 1.0 };
    let ymax = medians
        .iter()
        .chain(dots.iter().map(|d| &d.1))
        .copied()
        .fold(0.0, f64::max);
    let yt = ticks(ymax);
    let ytop = *yt.last().unwrap_or(&1.0);
    let sx = |x: f64| PAD_L + (t(x) - t0) / span * (W - PAD_L - PAD_R);
    let sy = |y: f64| top + PAD_T + (1.0 - y / ytop) * (H - PAD_T - PAD_B);
    let _ = writeln!(
        out,
        r#"<text x="{PAD_L}" y="{}" font-weight="bold">{}</text>"#,
        top + 16.0,
        esc(title)
    );
    for t in &yt {
        let y = sy(*t);
        let _ = writeln!(
            out,
            r##"<line x1="{PAD_L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}{}</text>"##,
            W - PAD_R,
            PAD_L - 6.0,
            y + 4.0,
            num(*t),
            esc(unit)
        );
    }
    let base = top + H - PAD_B;
    for x in xs {
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            sx(*x),
            base + 16.0,
            num(*x)
        );
    }
    if let Some(f) = curve {
        let mut d = String::new();
        for i in 0..=100 {
            let u = t0 + span * i as f64 / 100.0;
            let x = if log { u.exp2() } else { u };
            let y = f(x).clamp(0.0, ytop);
            let _ = write!(
                d,
                "{}{:.1},{:.1} ",
                if i == 0 { "M" } else { "L" },
                sx(x),
                sy(y)
            );
        }
        let _ = writeln!(
            out,
            r##"<path d="{d}" fill="none" stroke="#888" stroke-dasharray="4 3"><title>USL fit</title></path>"##
        );
    }
    for (x, y) in dots {
        let _ = writeln!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{colour}" opacity="0.4"/>"#,
            sx(*x),
            sy(*y)
        );
    }
    let mut d = String::new();
    for (i, (x, y)) in xs.iter().zip(medians).enumerate() {
        let _ = write!(
            d,
            "{}{:.1},{:.1} ",
            if i == 0 { "M" } else { "L" },
            sx(*x),
            sy(*y)
        );
    }
    let _ = writeln!(
        out,
        r#"<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"/>"#
    );
    if let Some((k, label)) = knee {
        let x = sx(k);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{base}" stroke="#d33" stroke-width="2"/><text x="{:.1}" y="{}" fill="#d33">{}</text>"##,
            top + PAD_T,
            x + 4.0,
            top + PAD_T + 12.0,
            esc(label)
        );
    }
}

/// The report as an SVG document.
pub fn render(r: &SweepReport) -> String {
    let xs: Vec<f64> = r.points.iter().map(|p| p.value).collect();
    let tps: Vec<f64> = r.points.iter().map(|p| p.median.throughput).collect();
    let p99s: Vec<f64> = r
        .points
        .iter()
        .map(|p| p.median.latency.p99_us as f64 / 1000.0)
        .collect();
    let tp_dots: Vec<(f64, f64)> = r
        .runs
        .iter()
        .map(|u| (u.value, u.figures.throughput))
        .collect();
    let p99_dots: Vec<(f64, f64)> = r
        .runs
        .iter()
        .map(|u| (u.value, u.figures.latency.p99_us as f64 / 1000.0))
        .collect();
    let knee_label = r.knee.as_ref().map(|k| {
        let rule = match k.rule {
            KneeRule::Kneedle => "Kneedle",
            KneeRule::LatencyClimb => "P99 climb",
            KneeRule::ErrorClimb => "error climb",
        };
        (k.value, format!("knee {} ({rule})", num(k.value)))
    });
    let knee = knee_label.as_ref().map(|(v, l)| (*v, l.as_str()));
    let usl = r.usl.clone();
    let usl_curve = move |n: f64| match &usl {
        Some(u) => u.lambda * n / (1.0 + u.sigma * (n - 1.0) + u.kappa * n * (n - 1.0)),
        None => 0.0,
    };
    let curve: Option<&dyn Fn(f64) -> f64> = if r.usl.is_some() {
        Some(&usl_curve)
    } else {
        None
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{}" viewBox="0 0 {W} {}" font-family="sans-serif" font-size="11">"#,
        2.0 * H + 24.0,
        2.0 * H + 24.0
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><title>{} — sweep of {}</title>"#,
        esc(&r.pipeline),
        esc(&r.knob)
    );
    panel(
        &mut out,
        0.0,
        &format!("{}: throughput (items/s) vs {}", r.pipeline, r.knob),
        "",
        &xs,
        &tps,
        &tp_dots,
        curve,
        knee,
        "#2563eb",
    );
    panel(
        &mut out,
        H,
        "P99 end-to-end latency vs the knob",
        " ms",
        &xs,
        &p99s,
        &p99_dots,
        None,
        knee,
        "#c2410c",
    );
    let _ = writeln!(
        out,
        r##"<text x="{PAD_L}" y="{}" fill="#555">{}</text>"##,
        2.0 * H + 16.0,
        esc(&r.knob)
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::lab::{Knee, PointFigures, PointRun, PointSummary};

    #[test]
    fn the_chart_marks_the_knee_and_escapes_names() {
        let points: Vec<PointSummary> = [1.0, 2.0, 4.0]
            .iter()
            .map(|&v| PointSummary {
                value: v,
                median: PointFigures {
                    throughput: v * 10.0,
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect();
        let r = SweepReport {
            pipeline: "a<b".into(),
            knob: "stages[io].workers".into(),
            runs: vec![PointRun {
                value: 1.0,
                ..Default::default()
            }],
            points,
            knee: Some(Knee {
                value: 2.0,
                rule: KneeRule::Kneedle,
                kneedle: vec![2.0],
                p99_climb_at: None,
                error_climb_at: None,
            }),
            ..Default::default()
        };
        let svg = render(&r);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("knee 2 (Kneedle)"));
        assert!(svg.contains("a&lt;b"));
        assert!(!svg.contains("a<b"));
        assert_eq!(ticks(47.0), vec![0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
    }
}
