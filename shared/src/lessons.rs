//! The article's lessons, each a pipeline to run and a signal to watch.
//!
//! A [`Lesson`] names a built-in template (see [`crate::templates`]), says
//! in English and Chinese what it teaches and what to do, and which part of
//! the job page shows the lesson ([`Focus`]), with one sentence on what
//! that part means. A lesson may come with [`Variant`]s: the same pipeline
//! with a field or two changed (a `when_full` policy, the fix for a
//! blocking call), started side by side or one click away.
//!
//! The dashboard shows these as a gallery on *New job*, the CLI lists them
//! (`queuelab lessons`), and `GET /api/v1/lessons` serves them to scripts;
//! the engine's lesson tests run each one and check its signal.

use serde::Serialize;

use crate::spec::{PipelineSpec, SourceSpec, SpecError};
use crate::templates;

/// A sentence in both languages of the dashboard.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Text {
    /// English.
    pub en: &'static str,
    /// Chinese (simplified).
    pub zh: &'static str,
}

/// The part of the job page that shows a lesson's signal, outlined while
/// the lesson runs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Focus {
    /// A chart, by its test id (`chart-throughput`, `chart-lag`, …).
    Chart(&'static str),
    /// A pipeline node, by name (`source` for the source).
    Node(&'static str),
    /// The final report (accounting, leftovers, dead letters).
    Report,
}

/// The lesson's pipeline with a few fields changed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Variant {
    /// Appended to the job's name (`when-full-drop-newest`).
    pub id: &'static str,
    /// What the variant changes, for the button.
    pub label: Text,
    /// JSON pointers into the spec and the JSON value each gets.
    pub patch: &'static [(&'static str, &'static str)],
}

/// One of the article's lessons.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Lesson {
    /// Stable id, used in URLs and on the command line.
    pub id: &'static str,
    /// Where the article teaches it.
    pub section: &'static str,
    /// Short title.
    pub title: Text,
    /// What the lesson shows, in two or three sentences.
    pub explain: Text,
    /// What to do while it runs.
    pub todo: Text,
    /// What to watch, and what it means.
    pub signal: Text,
    /// The parts of the page that show it.
    pub focus: &'static [Focus],
    /// The built-in template it runs.
    pub template: &'static str,
    /// Whether the synthetic source runs until stopped (for
    /// [`LESSON_DURATION_MS`] at most), so there is time to act: the
    /// template's own `count` or `duration_ms` is replaced.
    pub endless: bool,
    /// Versions to compare with, or the fix one click away.
    pub variants: &'static [Variant],
    /// Start the variants together with the lesson and compare them.
    pub side_by_side: bool,
}

/// How long an endless lesson's source runs unless stopped first: long
/// enough to act on, bounded so a forgotten lesson ends by itself.
pub const LESSON_DURATION_MS: u64 = 15 * 60 * 1000;

/// Why a lesson's spec could not be made.
#[derive(Debug)]
pub enum LessonError {
    /// No such template, lesson or variant.
    Unknown(String),
    /// The template or the patched spec does not validate.
    Spec(SpecError),
}

impl std::fmt::Display for LessonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unknown(what) => write!(f, "no such {what}"),
            Self::Spec(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LessonError {}

impl Lesson {
    /// The spec the lesson runs (`variant` = `None`) or one of its variants.
    pub fn spec(&self, variant: Option<&str>) -> Result<PipelineSpec, LessonError> {
        let template = templates::get(self.template)
            .ok_or_else(|| LessonError::Unknown(format!("template {}", self.template)))?;
        let mut spec = template.spec().map_err(LessonError::Spec)?;
        if self.endless
            && let SourceSpec::Synthetic {
                count, duration_ms, ..
            } = &mut spec.source
        {
            *count = None;
            *duration_ms = Some(LESSON_DURATION_MS);
        }
        spec.lesson = Some(self.id.to_owned());
        let Some(id) = variant else {
            return Ok(spec);
        };
        let v = self
            .variants
            .iter()
            .find(|v| v.id == id)
            .ok_or_else(|| LessonError::Unknown(format!("variant {id} of {}", self.id)))?;
        let mut value = serde_json::to_value(&spec).expect("a spec serialises");
        for (pointer, json) in v.patch {
            let new: serde_json::Value = serde_json::from_str(json).expect("patch values are JSON");
            let slot = value
                .pointer_mut(pointer)
                .ok_or_else(|| LessonError::Unknown(format!("field {pointer} in {}", self.id)))?;
            *slot = new;
        }
        let mut spec: PipelineSpec = serde_json::from_value(value)
            .map_err(|e| LessonError::Unknown(format!("patched spec ({e})")))?;
        spec.name = format!("{}-{}", spec.name, v.id);
        spec.validate().map_err(LessonError::Spec)?;
        Ok(spec)
    }
}

/// Looks a lesson up by id.
pub fn get(id: &str) -> Option<&'static Lesson> {
    ALL.iter().find(|l| l.id == id)
}

const fn text(en: &'static str, zh: &'static str) -> Text {
    Text { en, zh }
}

/// Every lesson, in the order the article teaches them.
pub const ALL: &[Lesson] = &[
    Lesson {
        id: "threads-for-blocking-io",
        section: "§2.1",
        title: text("Threads for blocking I/O", "线程处理阻塞 I/O"),
        explain: text(
            "Eight threads each make a blocking 5-10 ms call. While one waits, the others work, so throughput is about workers / mean latency: 8 / 7.5 ms ≈ 1,070 items/s.",
            "八个线程各自执行 5-10 毫秒的阻塞调用。一个线程等待时其他线程照常工作，所以吞吐量约等于 线程数 / 平均延迟：8 / 7.5 毫秒 ≈ 每秒 1,070 条。",
        ),
        todo: text(
            "Tune stage io from 8 workers to 16, then to 2, and watch throughput follow.",
            "把 io 阶段的 workers 从 8 调到 16，再调到 2，观察吞吐量随之变化。",
        ),
        signal: text(
            "Throughput moves with the worker count: each thread adds about 130 items/s.",
            "吞吐量随线程数变化：每个线程约增加每秒 130 条。",
        ),
        focus: &[Focus::Chart("chart-throughput"), Focus::Node("io")],
        template: "thread-io-pool",
        endless: true,
        variants: &[],
        side_by_side: false,
    },
    Lesson {
        id: "coroutines-for-massive-io",
        section: "§2.2",
        title: text("Coroutines for massive I/O", "协程处理海量 I/O"),
        explain: text(
            "200 coroutines wait on slow calls (0-1 s each) on the runtime's two threads: waiting costs a task, not a thread, so 200 are in flight at once.",
            "200 个协程在运行时的两个线程上等待慢调用（每次 0-1 秒）：等待只占用一个任务而不是一个线程，所以能同时有 200 个请求在途。",
        ),
        todo: text(
            "Lower stage fetch's concurrency from 200 to 20: throughput falls ten-fold.",
            "把 fetch 阶段的 concurrency 从 200 降到 20：吞吐量降到十分之一。",
        ),
        signal: text(
            "Throughput ≈ concurrency / mean latency (200 / 0.5 s = 400 items/s), on two threads.",
            "吞吐量 ≈ 并发数 / 平均延迟（200 / 0.5 秒 = 每秒 400 条），只用两个线程。",
        ),
        focus: &[Focus::Chart("chart-throughput"), Focus::Node("fetch")],
        template: "async-fanout",
        endless: true,
        variants: &[],
        side_by_side: false,
    },
    Lesson {
        id: "backpressure",
        section: "§3",
        title: text("Backpressure", "背压"),
        explain: text(
            "A bounded queue in front of a slow stage: the queue fills, the stage upstream blocks on it, and the source slows to the pace of the slowest stage instead of piling items up in memory.",
            "慢阶段前面是一个有界队列：队列被填满，上游阶段被阻塞，数据源的速度降到最慢阶段的速度，而不是把数据堆积在内存里。",
        ),
        todo: text(
            "Watch slow's queue sit at 200/200 and parse's blocked share; then tune slow from 4 workers to 16.",
            "观察 slow 的队列停在 200/200、parse 的阻塞占比；然后把 slow 的 workers 从 4 调到 16。",
        ),
        signal: text(
            "slow is the bottleneck (busy, its queue full); parse and the source are backpressured (blocked).",
            "slow 是瓶颈（忙碌、队列已满）；parse 和数据源处于背压（阻塞）状态。",
        ),
        focus: &[
            Focus::Node("slow"),
            Focus::Node("parse"),
            Focus::Chart("chart-depth"),
        ],
        template: "backpressure",
        endless: true,
        variants: &[],
        side_by_side: false,
    },
    Lesson {
        id: "when-full",
        section: "§3",
        title: text("When the queue is full", "队列满了怎么办"),
        explain: text(
            "Four policies for the item that finds the queue full, side by side: block waits (nothing lost), drop_newest discards it, drop_oldest discards the oldest queued one, reject refuses it.",
            "队列满时对新数据的四种策略并排对比：block 等待（不丢数据），drop_newest 丢弃新数据，drop_oldest 丢弃最旧的排队数据，reject 拒绝并报错。",
        ),
        todo: text(
            "Start all four and compare what each report counts as dropped.",
            "同时启动四个作业，比较每个报告中统计的丢弃数量。",
        ),
        signal: text(
            "block loses nothing and slows the source; the others keep the source's pace and count what they lost.",
            "block 不丢数据但会拖慢数据源；其他三种保持数据源速度，并统计丢失的数据。",
        ),
        focus: &[Focus::Node("work"), Focus::Chart("chart-troubles")],
        template: "when-full",
        endless: false,
        variants: &[
            Variant {
                id: "drop-newest",
                label: text("drop_newest", "drop_newest"),
                patch: &[("/stages/0/queue/when_full", "\"drop_newest\"")],
            },
            Variant {
                id: "drop-oldest",
                label: text("drop_oldest", "drop_oldest"),
                patch: &[("/stages/0/queue/when_full", "\"drop_oldest\"")],
            },
            Variant {
                id: "reject",
                label: text("reject", "reject"),
                patch: &[("/stages/0/queue/when_full", "\"reject\"")],
            },
        ],
        side_by_side: true,
    },
    Lesson {
        id: "timeouts-and-cancellation",
        section: "§4",
        title: text("Timeouts and cancellation", "超时与取消"),
        explain: text(
            "Each call takes 20-200 ms and is given 100 ms: slow calls are cut off and counted as timeouts, so a slow dependency cannot hold a worker forever.",
            "每次调用耗时 20-200 毫秒，超时为 100 毫秒：慢调用被中断并计为超时，慢依赖无法永远占住一个工作者。",
        ),
        todo: text(
            "Watch the timeouts climb, then Abort: what was in flight becomes leftovers, counted.",
            "观察超时数上升，然后点击中止：在途的数据成为遗留项，并被计数。",
        ),
        signal: text(
            "About half the calls time out (dead letters with the reason); abort's leftovers are counted in the report.",
            "大约一半的调用超时（进入死信并注明原因）；中止后的遗留项在报告中计数。",
        ),
        focus: &[
            Focus::Chart("chart-troubles"),
            Focus::Node("call"),
            Focus::Report,
        ],
        template: "timeouts",
        endless: true,
        variants: &[],
        side_by_side: false,
    },
    Lesson {
        id: "retries-with-backoff",
        section: "§4",
        title: text("Retries with backoff and jitter", "指数退避与抖动重试"),
        explain: text(
            "The built-in flaky target answers a third of the calls with 503; each is retried up to five times with exponential backoff and full jitter; the sink upserts on id, so a retried item never becomes a second row.",
            "内置的不稳定测试服务对三分之一的调用返回 503，最多重试五次，使用指数退避和完全抖动；写入按 id 做 upsert，重试的数据不会产生重复行。",
        ),
        todo: text(
            "Watch retries climb while nearly every item still reaches the sink.",
            "观察重试次数上升，而几乎所有数据仍然写入成功。",
        ),
        signal: text(
            "Retries are about half the items; dead letters are the few that failed five times in a row (0.33⁵ ≈ 0.4%).",
            "重试次数约为数据量的一半；死信只有连续失败五次的极少数（0.33⁵ ≈ 0.4%）。",
        ),
        focus: &[Focus::Chart("chart-troubles"), Focus::Node("call")],
        template: "retries",
        endless: true,
        variants: &[],
        side_by_side: false,
    },
    Lesson {
        id: "rate-limit-and-semaphore",
        section: "§4",
        title: text("Rate limit and semaphore", "限流与信号量"),
        explain: text(
            "A token bucket lets 200 items a second through; a semaphore keeps at most 8 calls of 20 ms in flight (at most 400 a second).",
            "令牌桶每秒放行 200 条；信号量保证最多 8 个 20 毫秒的调用同时在途（每秒最多 400 条）。",
        ),
        todo: text(
            "Tune throttle's rate limit from 200 to 1000: throughput stops at 400, where the semaphore takes over.",
            "把 throttle 的限流从 200 调到 1000：吞吐量停在 400，此时信号量成为限制。",
        ),
        signal: text(
            "Throughput is pinned at the rate limit; call never has more than 8 in flight.",
            "吞吐量被限制在限流值；call 阶段在途数从不超过 8。",
        ),
        focus: &[
            Focus::Chart("chart-throughput"),
            Focus::Node("throttle"),
            Focus::Node("call"),
        ],
        template: "rate-limit",
        endless: true,
        variants: &[],
        side_by_side: false,
    },
    Lesson {
        id: "graceful-shutdown",
        section: "§4",
        title: text("Graceful shutdown", "优雅停机"),
        explain: text(
            "Drain stops only the source: each stage empties its queue and stops when its input closes. Abort stops everything: what was held is counted as leftovers and can be replayed.",
            "排空只停止数据源：每个阶段处理完队列，在输入关闭后停止。中止立即停止一切：未处理的数据计为遗留项，可以重放。",
        ),
        todo: text(
            "Drain it and watch every stage empty (leftovers 0); run it again and Abort, then replay the leftovers.",
            "点击排空，观察每个阶段清空（遗留项为 0）；再运行一次并中止，然后重放遗留项。",
        ),
        signal: text(
            "After a drain the report's leftovers are 0; after an abort they are counted and replayable.",
            "排空后报告中的遗留项为 0；中止后遗留项被计数且可以重放。",
        ),
        focus: &[Focus::Report, Focus::Chart("chart-depth")],
        template: "graceful-shutdown",
        endless: true,
        variants: &[],
        side_by_side: false,
    },
    Lesson {
        id: "the-bridge",
        section: "§5",
        title: text("Bridging async and threads", "异步与线程的桥接"),
        explain: text(
            "Async fetchers feed a thread that writes to disk through a bridge: the async side awaits room, the thread side blocks, and neither world blocks the other.",
            "异步抓取通过桥接把数据交给写磁盘的线程：异步一侧等待空位，线程一侧阻塞，两个世界互不阻塞。",
        ),
        todo: text(
            "Slow the writer: tune disk from 2 workers to 1, and watch its queue fill and the fetchers block.",
            "让写入变慢：把 disk 的 workers 从 2 调到 1，观察它的队列被填满、抓取协程被阻塞。",
        ),
        signal: text(
            "disk's queue sits at capacity and fetch's blocked share rises: backpressure crosses the bridge.",
            "disk 的队列保持满载，fetch 的阻塞占比上升：背压穿过了桥接。",
        ),
        focus: &[Focus::Node("disk"), Focus::Node("fetch")],
        template: "async-to-thread-bridge",
        endless: true,
        variants: &[],
        side_by_side: false,
    },
    Lesson {
        id: "blocking-in-async",
        section: "§2.2",
        title: text("A blocking call inside a coroutine", "协程里的阻塞调用"),
        explain: text(
            "Each async worker calls a blocking 5 ms sleep: the runtime's threads are stuck inside it, nothing else on the event loop runs, and throughput collapses to threads / 5 ms whatever the concurrency.",
            "每个异步工作者都调用阻塞的 5 毫秒 sleep：运行时的线程卡在里面，事件循环上的其他任务都无法运行，无论并发多少，吞吐量都跌到 线程数 / 5 毫秒。",
        ),
        todo: text(
            "Watch the event-loop lag, then start the fix: an awaited sleep, or the same call on a thread stage.",
            "观察事件循环延迟，然后启动修复版本：改用 await 的 sleep，或把同样的调用放到线程阶段。",
        ),
        signal: text(
            "Event-loop lag stays above the blocking call's 5 ms and fetch is named as the stage blocking the loop.",
            "事件循环延迟持续高于阻塞调用的 5 毫秒，fetch 被标记为阻塞事件循环的阶段。",
        ),
        focus: &[Focus::Chart("chart-lag"), Focus::Node("fetch")],
        template: "blocking-in-async",
        endless: true,
        variants: &[
            Variant {
                id: "awaited",
                label: text("fix: awaited sleep", "修复：await 的 sleep"),
                patch: &[("/stages/0/op/kind", "\"sleep\"")],
            },
            Variant {
                id: "on-threads",
                label: text("fix: a thread stage", "修复：线程阶段"),
                patch: &[
                    ("/stages/0/runtime", "\"thread\""),
                    ("/stages/0/concurrency", "null"),
                    ("/stages/0/workers", "100"),
                ],
            },
        ],
        side_by_side: false,
    },
    Lesson {
        id: "unbounded-queue",
        section: "§3",
        title: text("The unbounded queue", "无界队列"),
        explain: text(
            "An unbounded queue in front of a slow consumer: nothing pushes back, so the queue and the process's memory grow for as long as the source runs.",
            "慢消费者前面是一个无界队列：没有任何背压，所以只要数据源还在运行，队列和进程内存就会一直增长。",
        ),
        todo: text(
            "Watch queue depth and memory climb; abort it, and see the queued items counted as leftovers.",
            "观察队列深度和内存不断上升；中止作业，看到排队的数据被计为遗留项。",
        ),
        signal: text(
            "Queue depth grows by ~19,000 items a second with no ceiling: the memory risk.",
            "队列深度每秒增长约 19,000 条，没有上限：这就是内存风险。",
        ),
        focus: &[
            Focus::Chart("chart-depth"),
            Focus::Chart("chart-rss"),
            Focus::Node("slow"),
        ],
        template: "unbounded-queue",
        endless: false,
        variants: &[],
        side_by_side: false,
    },
    Lesson {
        id: "auto-knee",
        section: "§3",
        title: text("Let the engine find the knee", "让引擎自己找到拐点"),
        explain: text(
            "A service that takes 20 ms and serves 16 calls at once: below 16 in flight throughput grows, past it calls only queue there. With concurrency = \"auto\" the engine raises the limit while calls stay fast and every permit is busy, and backs off when latency rises or a step brings nothing.",
            "一个每次调用耗时 20 毫秒、同时只服务 16 个调用的服务：并发低于 16 时吞吐量随之增长，超过后调用只是在那里排队。设置 concurrency = \"auto\" 后，引擎在调用保持快速且许可全部被占用时提高上限，在延迟上升或加一步没有带来吞吐量时回退。",
        ),
        todo: text(
            "Watch the three jobs side by side: auto climbs and settles near 16; fixed 4 gets a quarter of the throughput; fixed 64 gets the same throughput as auto at about four times its service time. Tune auto's concurrency by hand to pin it, then turn auto back on.",
            "并排观察三个作业：auto 逐步上升并稳定在 16 附近；固定 4 只有四分之一的吞吐量；固定 64 的吞吐量与 auto 相同，但服务时间约为四倍。手动调整 auto 的 concurrency 会将其固定，然后再重新开启自动。",
        ),
        signal: text(
            "The limit chart climbs, then holds near 16 with a reason at each change (latency × baseline, throughput gain); the call's service time stays near 20 ms while fixed 64's is near 80 ms.",
            "上限图先上升，然后稳定在 16 附近，每次变化都注明原因（延迟与基线之比、吞吐量增益）；auto 的调用服务时间保持在 20 毫秒左右，而固定 64 的约为 80 毫秒。",
        ),
        focus: &[Focus::Chart("chart-limit"), Focus::Node("call")],
        template: "auto-knee",
        endless: true,
        variants: &[
            Variant {
                id: "fixed-4",
                label: text("Fixed 4", "固定 4"),
                // Its own service (path), with the same capacity.
                patch: &[
                    ("/stages/0/concurrency", "4"),
                    ("/stages/0/workers", "4"),
                    (
                        "/stages/0/op/url",
                        "\"/target/knee-fixed-4?slots=16&delay_ms=20\"",
                    ),
                ],
            },
            Variant {
                id: "fixed-64",
                label: text("Fixed 64", "固定 64"),
                patch: &[
                    ("/stages/0/concurrency", "64"),
                    ("/stages/0/workers", "64"),
                    (
                        "/stages/0/op/url",
                        "\"/target/knee-fixed-64?slots=16&delay_ms=20\"",
                    ),
                ],
            },
        ],
        side_by_side: true,
    },
    Lesson {
        id: "cpu-on-threads",
        section: "§2.3",
        title: text("CPU work on threads", "线程上的 CPU 密集任务"),
        explain: text(
            "Each item spins the CPU for 200 µs. Threads help only up to the number of cores: past that they take turns on the same cores.",
            "每条数据占用 CPU 200 微秒。线程只在核心数以内有帮助：超过之后它们只是轮流使用相同的核心。",
        ),
        todo: text(
            "Tune hash from 8 workers to 2 and back to 8: on a two-core machine throughput barely changes.",
            "把 hash 的 workers 从 8 调到 2 再调回 8：在双核机器上吞吐量几乎不变。",
        ),
        signal: text(
            "CPU use sits at the core count and throughput ≈ cores / 200 µs, whatever the workers.",
            "CPU 使用率停在核心数，吞吐量 ≈ 核心数 / 200 微秒，与线程数无关。",
        ),
        focus: &[Focus::Chart("chart-throughput"), Focus::Node("hash")],
        template: "cpu-on-threads",
        endless: true,
        variants: &[],
        side_by_side: false,
    },
    Lesson {
        id: "non-idempotent-writes",
        section: "§4",
        title: text("Non-idempotent writes on retry", "重试下的非幂等写入"),
        explain: text(
            "The sink commits each batch, but one acknowledgement in five is lost, so the batch is retried and written again. Plain inserts keep both copies; an upsert on the key keeps one row per item.",
            "写入端每批都提交成功，但五次中有一次确认丢失，于是这一批被重试、再写一次。普通 insert 会保留两份；按键 upsert 每条数据只保留一行。",
        ),
        todo: text(
            "Start both side by side and compare the sink's duplicates: many with inserts, none with the upsert.",
            "并排启动两个作业，比较写入端的重复行：insert 有很多，upsert 为零。",
        ),
        signal: text(
            "Both retry the same batches; only the inserting sink counts duplicate rows.",
            "两者重试的批次相同；只有 insert 的写入端统计到重复行。",
        ),
        focus: &[Focus::Node("sink"), Focus::Report],
        template: "non-idempotent-writes",
        endless: true,
        variants: &[Variant {
            id: "upsert",
            label: text("with an upsert key", "使用 upsert 键"),
            patch: &[
                ("/sink/write", "\"upsert\""),
                ("/sink/path", "\"idempotent.db\""),
            ],
        }],
        side_by_side: true,
    },
    Lesson {
        id: "log-cleaning",
        section: "§6.1",
        title: text("Cleaning logs", "日志清洗"),
        explain: text(
            "A file of JSON log lines is parsed against a schema, DEBUG lines are filtered out, and the rest is upserted into SQLite in batches. Malformed lines are not swallowed: each becomes a dead letter with its reason.",
            "JSON 日志文件按模式解析，过滤掉 DEBUG 行，其余按批 upsert 到 SQLite。格式错误的行不会被吞掉：每一行都成为注明原因的死信。",
        ),
        todo: text(
            "Open the report's dead letters and read why each line was refused.",
            "打开报告中的死信，查看每一行被拒绝的原因。",
        ),
        signal: text(
            "About 3% of the lines are dead letters, each with its reason (invalid JSON, or the field that broke the schema).",
            "约 3% 的行成为死信，每条都注明原因（JSON 无效，或违反模式的字段）。",
        ),
        focus: &[Focus::Report, Focus::Node("parse")],
        template: "log-clean-threads",
        endless: false,
        variants: &[],
        side_by_side: false,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lesson_and_variant_makes_a_valid_spec_that_names_it() {
        for lesson in ALL {
            let spec = lesson
                .spec(None)
                .unwrap_or_else(|e| panic!("{}: {e}", lesson.id));
            assert_eq!(spec.lesson.as_deref(), Some(lesson.id));
            spec.validate().unwrap();
            if lesson.endless {
                assert!(
                    matches!(
                        spec.source,
                        SourceSpec::Synthetic {
                            count: None,
                            duration_ms: Some(LESSON_DURATION_MS),
                            ..
                        }
                    ),
                    "{} runs until stopped",
                    lesson.id
                );
            }
            for v in lesson.variants {
                let s = lesson
                    .spec(Some(v.id))
                    .unwrap_or_else(|e| panic!("{}/{}: {e}", lesson.id, v.id));
                assert_ne!(s, spec, "{}/{} changes something", lesson.id, v.id);
                assert_eq!(s.lesson.as_deref(), Some(lesson.id));
            }
            let nodes: Vec<&str> = spec.stages.iter().map(|s| s.name.as_str()).collect();
            for f in lesson.focus {
                if let Focus::Node(n) = f {
                    assert!(
                        *n == "source" || *n == "sink" || nodes.contains(n),
                        "{}: focus on {n}",
                        lesson.id
                    );
                }
            }
            assert!(!lesson.explain.zh.is_empty() && !lesson.signal.zh.is_empty());
        }
        assert!(get("backpressure").is_some());
        assert!(matches!(
            get("backpressure").unwrap().spec(Some("nope")),
            Err(LessonError::Unknown(_))
        ));
    }
}
