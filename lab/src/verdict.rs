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
fn noun(path: &str, zh: bool) -> String {
    match path.rsplit('.').next() {
        Some("workers") if zh => "个工作者".into(),
        Some("concurrency") if zh => "并发".into(),
        Some("rate_limit") if zh => "（限速）".into(),
        Some("capacity") if zh => "（队列容量）".into(),
        Some("size") if zh => "（批大小）".into(),
        Some(last @ ("workers" | "concurrency" | "capacity" | "rate_limit" | "size")) => {
            if zh {
                format!(" {}", last.replace('_', " "))
            } else {
                last.replace('_', " ")
            }
        }
        _ if zh => format!(" `{path}`"),
        _ => path.to_string(),
    }
}

/// English or Chinese.
fn pick(zh: bool, en: String, cn: String) -> String {
    if zh { cn } else { en }
}

/// How a capacity search ended, in Chinese (the driver words it in
/// English).
fn ending_zh(en: &str) -> &str {
    match en {
        "converged and confirmed" => "已收敛并复测确认",
        "the SLO held up to the knob's limit" => "直到旋钮上限 SLO 都满足",
        "the SLO broke at every value tried" => "试过的每个取值都违反 SLO",
        "ran out of measurements before converging" => "收敛前测量次数已用完",
        "stopped before the search ended" => "搜索结束前被停止",
        other => other,
    }
}

/// A USL regime, in Chinese.
fn regime_zh(en: &str) -> &str {
    if en.starts_with("contention") {
        "受争用限制：工作者在排队争抢共享资源，吞吐趋平"
    } else if en.starts_with("coherency") {
        "受一致性开销限制：超过 N* 后工作者互相等待，吞吐下降"
    } else {
        "在测量范围内线性扩展"
    }
}

/// The sentences for a sweep report, in English, or in Chinese (`zh`).
pub fn sweep(spec: &SweepSpec, r: &SweepReport, xs: &[f64], tps: &[f64], zh: bool) -> Vec<String> {
    let mut out = Vec::new();
    let n = noun(&spec.knob, zh);
    if r.points.is_empty() {
        out.push(pick(
            zh,
            "No run finished: nothing to read.".into(),
            "没有完成的运行：无从判断。".into(),
        ));
        return out;
    }
    if let Some(c) = &r.capacity {
        let slo = spec.slo.as_ref().map(|s| s.to_string()).unwrap_or_default();
        let fewest = knob::kind(&spec.knob) == KnobKind::Concurrency;
        out.push(match c.value {
            Some(v) => pick(
                zh,
                format!(
                    "The {} {n} that keeps {slo} is {}{} ({}, {} runs).",
                    if fewest { "fewest" } else { "highest" },
                    num(v),
                    c.broke_at
                        .map(|b| format!("; it broke at {}", num(b)))
                        .unwrap_or_default(),
                    c.ending,
                    c.probes
                ),
                format!(
                    "满足 {slo} 的{}取值是 {}{}（{}，共 {} 次运行）。",
                    if fewest { "最少" } else { "最高" },
                    num(v),
                    c.broke_at
                        .map(|b| format!("；在 {} 时违反", num(b)))
                        .unwrap_or_default(),
                    ending_zh(&c.ending),
                    c.probes
                ),
            ),
            None => pick(
                zh,
                format!("No {n} kept {slo}: {}.", c.ending),
                format!("没有任何取值满足 {slo}：{}。", ending_zh(&c.ending)),
            ),
        });
    }
    if let Some(k) = &r.knee {
        let at = r
            .points
            .iter()
            .position(|p| p.value == k.value)
            .unwrap_or(0);
        let v = num(k.value);
        let f = num(spec.climb_factor);
        let why = match k.rule {
            KneeRule::Kneedle => pick(
                zh,
                format!("throughput stops growing past {v} {n}"),
                format!("超过 {v}{n}后吞吐不再增长"),
            ),
            KneeRule::LatencyClimb => pick(
                zh,
                format!("past {v} {n} P99 climbs above {f}× its first value"),
                format!("超过 {v}{n}后 P99 升到第一个取值的 {f} 倍以上"),
            ),
            KneeRule::ErrorClimb => pick(
                zh,
                format!("past {v} {n} the error rate climbs above {f}× its first value"),
                format!("超过 {v}{n}后错误率升到第一个取值的 {f} 倍以上"),
            ),
        };
        let mut s = pick(
            zh,
            format!("Knee at {v} {n}: {why}"),
            format!("拐点在 {v}{n}：{why}"),
        );
        let p = &r.points[at];
        if let Some(cpu) = p.busiest_cpu
            && cpu >= 0.75 * r.cores as f64
        {
            let stage = p.busiest.as_deref().unwrap_or(if zh {
                "最忙的阶段"
            } else {
                "the busiest stage"
            });
            s.push_str(&pick(
                zh,
                format!(
                    "; CPU-bound on {} cores ({stage} busy at {} cores)",
                    r.cores,
                    num(cpu)
                ),
                format!(
                    "；受 CPU 限制，共 {} 核（{stage} 占用 {} 核）",
                    r.cores,
                    num(cpu)
                ),
            ));
        } else if let Some(last) = r.points.last()
            && r.runs
                .iter()
                .filter(|run| run.value == last.value)
                .all(|run| run.stages.iter().all(|s| s.busy < 0.5))
            && last.value > k.value
        {
            s.push_str(&pick(
                zh,
                "; past it no stage is busy: the source is the limit".into(),
                "；之后没有哪个阶段忙碌：瓶颈在数据源".into(),
            ));
        }
        let last = r.points.last().expect("points");
        let (p_knee, p_last) = (p.median.latency.p99_us, last.median.latency.p99_us);
        if last.value > k.value && p_knee > 0 && p_last as f64 >= 1.5 * p_knee as f64 {
            let x = num(p_last as f64 / p_knee as f64);
            s.push_str(&pick(
                zh,
                format!("; P99 climbs {x}× from there"),
                format!("；从那里起 P99 升高 {x} 倍"),
            ));
        }
        s.push_str(if zh { "。" } else { "." });
        out.push(s);
        if k.rule == KneeRule::Kneedle && k.kneedle.len() > 1 {
            let all: Vec<String> = k.kneedle.iter().map(|x| num(*x)).collect();
            out.push(pick(
                zh,
                format!("Kneedle found knees at {}.", all.join(", ")),
                format!("Kneedle 找到的拐点：{}。", all.join("、")),
            ));
        }
    } else if r.capacity.is_none() && xs.len() >= 2 {
        let grows = tps
            .last()
            .zip(tps.first())
            .is_some_and(|(l, f)| *l > 1.2 * f);
        let top = num(xs[xs.len() - 1]);
        out.push(if grows {
            pick(
                zh,
                format!("No knee: throughput still grows at {top} {n}; try higher values."),
                format!("没有拐点：到 {top}{n}吞吐仍在增长，试试更大的取值。"),
            )
        } else {
            pick(
                zh,
                format!("No knee: throughput hardly changes with {n}; this knob is not the limit."),
                format!("没有拐点：吞吐几乎不随{n}变化，瓶颈不在这个旋钮。"),
            )
        });
    }
    if let Some(u) = &r.usl {
        let peak = match u.n_star {
            Some(ns) => pick(
                zh,
                format!(
                    ", peak near N* = {} at {}/s",
                    num(ns),
                    num(u.peak_throughput)
                ),
                format!("，峰值约在 N* = {}，{}/秒", num(ns), num(u.peak_throughput)),
            ),
            None => String::new(),
        };
        out.push(pick(
            zh,
            format!(
                "USL fit (r² = {:.2}): σ = {:.3}, κ = {:.4}, λ = {}/s per unit{peak}; {}.",
                u.r_squared,
                u.sigma,
                u.kappa,
                num(u.lambda),
                u.regime
            ),
            format!(
                "USL 拟合（r² = {:.2}）：σ = {:.3}，κ = {:.4}，λ = 每单位 {}/秒{peak}；{}。",
                u.r_squared,
                u.sigma,
                u.kappa,
                num(u.lambda),
                regime_zh(&u.regime)
            ),
        ));
    } else if let Some(why) = &r.usl_refused {
        let distinct = r.points.len();
        out.push(pick(
            zh,
            format!("No USL fit: {why}."),
            if distinct < 6 {
                format!("没有 USL 拟合：至少需要 6 个不同的并发取值，只有 {distinct} 个（或部分运行只测到了到达速率）。")
            } else {
                "没有 USL 拟合：可用于拟合的取值不足（部分运行只测到了数据源的到达速率）。".to_string()
            },
        ));
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
        out.push(pick(
            zh,
            format!(
                "The source could not keep its rate at {} {n}: latency there counts from when items were due.",
                behind.join(", ")
            ),
            format!(
                "在 {}{n}时数据源跟不上设定速率：那里的延迟从每条数据应到达的时刻算起。",
                behind.join("、")
            ),
        ));
    }
    for s in &r.little_flags {
        out.push(pick(
            zh,
            format!("Stage `{s}`: its queue, rate and time figures disagree with Little's law in most runs, so one of them is wrong."),
            format!("阶段 `{s}`：多数运行中它的队列、速率和时间指标不符合 Little 定律，其中必有一个指标有误。"),
        ));
    }
    if r.runs.iter().any(|run| !run.balanced) {
        out.push(pick(
            zh,
            "Warning: a run's accounting did not add up (see its job).".into(),
            "警告：有一次运行的账目对不上（见其作业）。".into(),
        ));
    }
    if !r.slo_broken.is_empty() {
        let terms: Vec<String> = r.slo_broken.iter().map(|t| t.to_string()).collect();
        out.push(pick(
            zh,
            format!("At the chosen value the SLO breaks: {}.", terms.join(", ")),
            format!("在选定的取值上 SLO 被违反：{}。", terms.join("、")),
        ));
    }
    if r.stopped {
        out.push(pick(
            zh,
            "The sweep was stopped before its end.".into(),
            "扫描在结束前被停止。".into(),
        ));
    }
    out
}
