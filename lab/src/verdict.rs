//! What a sweep means, in sentences a person acts on ("throughput stops
//! growing past 2 workers: CPU-bound on 2 cores; P99 climbs 4× from
//! there").

use shared::lab::{KneeRule, SweepReport, SweepSpec};

use crate::knob::{self, KnobKind};

/// A number as people write it: whole numbers bare, others to 3 figures.
pub fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The knob as a noun: `workers`, `concurrency`, `source.rate`.
fn noun(path: &str) -> String {
    match path.rsplit('.').next() {
        Some(last @ ("workers" | "concurrency" | "capacity" | "rate_limit" | "size")) => {
            last.replace('_', " ")
        }
        _ => path.to_string(),
    }
}

/// The sentences for a sweep report.
pub fn sweep(spec: &SweepSpec, r: &SweepReport, xs: &[f64], tps: &[f64]) -> Vec<String> {
    let mut out = Vec::new();
    let n = noun(&spec.knob);
    if r.points.is_empty() {
        out.push("No run finished: nothing to read.".into());
        return out;
    }
    if let Some(c) = &r.capacity {
        let slo = spec.slo.as_ref().map(|s| s.to_string()).unwrap_or_default();
        let best = if knob::kind(&spec.knob) == KnobKind::Concurrency {
            "fewest"
        } else {
            "highest"
        };
        match c.value {
            Some(v) => out.push(format!(
                "The {best} {n} that keeps {slo} is {}{} ({}, {} runs).",
                num(v),
                c.broke_at
                    .map(|b| format!("; it broke at {}", num(b)))
                    .unwrap_or_default(),
                c.ending,
                c.probes
            )),
            None => out.push(format!("No {n} kept {slo}: {}.", c.ending)),
        }
    }
    if let Some(k) = &r.knee {
        let at = r
            .points
            .iter()
            .position(|p| p.value == k.value)
            .unwrap_or(0);
        let why = match k.rule {
            KneeRule::Kneedle => format!("throughput stops growing past {} {n}", num(k.value)),
            KneeRule::LatencyClimb => format!(
                "past {} {n} P99 climbs above {}× its first value",
                num(k.value),
                num(spec.climb_factor)
            ),
            KneeRule::ErrorClimb => format!(
                "past {} {n} the error rate climbs above {}× its first value",
                num(k.value),
                num(spec.climb_factor)
            ),
        };
        let mut s = format!("Knee at {} {n}: {why}", num(k.value));
        let p = &r.points[at];
        if let Some(cpu) = p.busiest_cpu
            && cpu >= 0.75 * r.cores as f64
        {
            s.push_str(&format!(
                "; CPU-bound on {} cores ({} busy at {} cores)",
                r.cores,
                p.busiest.as_deref().unwrap_or("the busiest stage"),
                num(cpu)
            ));
        } else if let Some(last) = r.points.last()
            && r.runs
                .iter()
                .filter(|run| run.value == last.value)
                .all(|run| run.stages.iter().all(|s| s.busy < 0.5))
            && last.value > k.value
        {
            s.push_str("; past it no stage is busy: the source is the limit");
        }
        let last = r.points.last().expect("points");
        let (p_knee, p_last) = (p.median.latency.p99_us, last.median.latency.p99_us);
        if last.value > k.value && p_knee > 0 && p_last as f64 >= 1.5 * p_knee as f64 {
            s.push_str(&format!(
                "; P99 climbs {}× from there",
                num(p_last as f64 / p_knee as f64)
            ));
        }
        s.push('.');
        out.push(s);
        if k.rule == KneeRule::Kneedle && k.kneedle.len() > 1 {
            let all: Vec<String> = k.kneedle.iter().map(|x| num(*x)).collect();
            out.push(format!("Kneedle found knees at {}.", all.join(", ")));
        }
    } else if r.capacity.is_none() && xs.len() >= 2 {
        let grows = tps
            .last()
            .zip(tps.first())
            .is_some_and(|(l, f)| *l > 1.2 * f);
        out.push(if grows {
            format!(
                "No knee: throughput still grows at {} {n}; try higher values.",
                num(xs[xs.len() - 1])
            )
        } else {
            format!("No knee: throughput hardly changes with {n}; this knob is not the limit.")
        });
    }
    if let Some(u) = &r.usl {
        let peak = match u.n_star {
            Some(ns) => format!(
                ", peak near N* = {} at {}/s",
                num(ns),
                num(u.peak_throughput)
            ),
            None => String::new(),
        };
        out.push(format!(
            "USL fit (r² = {:.2}): σ = {:.3}, κ = {:.4}, λ = {}/s per unit{peak}; {}.",
            u.r_squared,
            u.sigma,
            u.kappa,
            num(u.lambda),
            u.regime
        ));
    } else if let Some(why) = &r.usl_refused {
        out.push(format!("No USL fit: {why}."));
    }
    let behind: Vec<String> = r
        .points
        .iter()
        .filter(|p| {
            r.runs
                .iter()
                .any(|run| run.value == p.value && run.source_behind)
        })
        .map(|p| num(p.value))
        .collect();
    if !behind.is_empty() {
        out.push(format!(
            "The source could not keep its rate at {} {n}: latency there counts from when items were due.",
            behind.join(", ")
        ));
    }
    for s in &r.little_flags {
        out.push(format!(
            "Stage `{s}`: its queue, rate and time figures disagree with Little's law in most runs, so one of them is wrong."
        ));
    }
    if r.runs.iter().any(|run| !run.balanced) {
        out.push("Warning: a run's accounting did not add up (see its job).".into());
    }
    if !r.slo_broken.is_empty() {
        let terms: Vec<String> = r.slo_broken.iter().map(|t| t.to_string()).collect();
        out.push(format!(
            "At the chosen value the SLO breaks: {}.",
            terms.join(", ")
        ));
    }
    if r.stopped {
        out.push("The sweep was stopped before its end.".into());
    }
    out
}
