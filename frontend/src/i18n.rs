//! Interface text in English and Chinese (the article's readers), switched
//! in Settings and remembered by the browser. Data (job states, stage
//! names, figures) is shown as the server sends it.

/// An interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// 简体中文.
    Zh,
}

/// Key of the chosen language in `localStorage`.
pub const LANG_KEY: &str = "queuelab.lang";

impl Lang {
    /// The stored choice, English by default.
    pub fn stored() -> Self {
        let stored = web_sys::window()
            .and_then(|w| w.local_storage().ok().flatten())
            .and_then(|s| s.get_item(LANG_KEY).ok().flatten());
        match stored.as_deref() {
            Some("zh") => Lang::Zh,
            _ => Lang::En,
        }
    }

    /// Remembers this choice.
    pub fn store(self) {
        if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
            let _ = s.set_item(LANG_KEY, self.code());
        }
    }

    /// `en` or `zh`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

/// The text for `key` (the English text) in `lang`.
pub fn t(lang: Lang, key: &'static str) -> &'static str {
    if lang == Lang::En {
        return key;
    }
    match key {
        // Navigation and actions.
        "Jobs" => "任务",
        "New job" => "新建任务",
        "History" => "历史",
        // The job page's diagnosis.
        "Diagnosis" => "诊断",
        "Bottleneck: `{stage}` sets the pace of the pipeline." => {
            "瓶颈：`{stage}` 决定了整条流水线的节奏。"
        }
        "Bottleneck: `{stage}` sets the pace; it holds up {held}. Give it more workers or make its work cheaper." => {
            "瓶颈：`{stage}` 决定节奏，拖住了 {held}。给它更多工作者，或让它的工作更省。"
        }
        "Blocking call: the event loop stalls about {lag} ms at a time{inside}. Every async stage of the job waits; move the call to a thread stage or await it." => {
            "阻塞调用：事件循环每次停顿约 {lag} 毫秒{inside}。作业里所有异步阶段都在等；把这个调用移到线程阶段，或改为 await。"
        }
        "Memory risk: the unbounded queue in front of `{stage}` only grows (+{n} items in the last few seconds). Bound it, with `when_full = \"block\"` to slow the producer." => {
            "内存风险：`{stage}` 前面的无界队列只增不减（最近几秒 +{n} 条）。给它设上限，并用 `when_full = \"block\"` 让生产者慢下来。"
        }
        // The tuning lab.
        "Tuning" => "调优",
        "Workers" => "工作进程",
        "Host" => "主机",
        "Labels" => "标签",
        "Last heartbeat" => "上次心跳",
        "No worker processes. Start one with `queuelab worker --server URL --token T`; broker stages run on the server meanwhile." => {
            "没有工作进程。用 `queuelab worker --server URL --token T` 启动一个；在此之前，经消息代理的阶段在服务器上运行。"
        }
        "Processed" => "已处理",
        "Redelivered" => "重新投递",
        "Version" => "版本",
        "lost" => "已失联",
        "oldest" => "最旧",
        "on" => "运行于",
        "redelivered" => "重新投递",
        "refused" => "被拒",
        "stream" => "流",
        "Turn one knob at a time, watch throughput and P99, stop at the knee; or find the best value that keeps an SLO; or soak a pipeline to catch leaks." => {
            "一次只调一个旋钮，观察吞吐和 P99，在拐点处停下；或者找出仍满足 SLO 的最佳取值；或者长时间浸泡运行流水线以发现泄漏。"
        }
        "Saved sweeps and soaks" => "已保存的扫描与浸泡",
        "Compare the two ticked" => "比较勾选的两个",
        "Compare sweeps" => "比较扫描",
        "Pipeline" => "流水线",
        "Kind" => "类型",
        "Knob" => "旋钮",
        "Chosen" => "选定值",
        "Verdict" => "结论",
        "Sweep" => "扫描",
        "Soak" => "浸泡",
        "sweep" => "扫描",
        "soak" => "浸泡",
        "Values" => "取值",
        "Measure" => "测量时长",
        "Repeat" => "重复次数",
        "Warm-up" => "预热",
        "Duration" => "时长",
        "Interval" => "间隔",
        "Capacity search: the best value that keeps" => "容量搜索：仍满足以下 SLO 的最佳取值",
        "Start sweep" => "开始扫描",
        "Start soak" => "开始浸泡",
        "Choose a template first." => "请先选择一个模板。",
        "Stop" => "停止",
        "measuring now" => "正在测量",
        "measuring" => "测量中",
        "done" => "已完成",
        "Loading, or no such sweep." => "加载中，或没有这个扫描。",
        "Only sweeps can be compared." => "只有扫描可以比较。",
        "The first run is measuring…" => "第一轮正在测量…",
        "knee" => "拐点",
        "Kneedle: throughput flattens" => "Kneedle：吞吐趋平",
        "P99 climbs" => "P99 攀升",
        "errors climb" => "错误率攀升",
        "Throughput (items/s) vs the knob" => "吞吐（条/秒）随旋钮变化",
        "P99 (ms) vs the knob" => "P99（毫秒）随旋钮变化",
        "Value" => "取值",
        "Errors" => "错误",
        "Busiest" => "最忙的阶段",
        "Backpressured" => "受背压的阶段",
        "CPU (cores)" => "CPU（核）",
        "Resident memory" => "常驻内存",
        "Open files" => "打开的文件",
        "Threads" => "线程",
        "Total queue depth" => "队列总深度",
        "Figure" => "指标",
        "Slope per interval" => "每个间隔的斜率",
        "Projected" => "预计增长",
        "Budget" => "预算",
        "leak" => "泄漏",
        "ok" => "正常",
        "The soak's job" => "浸泡运行的作业",
        "compare" => "比较",
        "Settings" => "设置",
        "Start" => "启动",
        "Validate" => "校验",
        "Drain" => "排空停止",
        "Abort" => "立即中止",
        "Apply" => "应用",
        "Save" => "保存",
        "Customize" => "定制",
        "Compare" => "对比",
        "Compare the two" => "对比这两次",
        "Add stage" => "添加阶段",
        "Remove stage" => "删除阶段",
        "Actions" => "操作",
        "Delete" => "删除",
        "Delete the run and its stored records:" => "删除这次运行及其保存的记录：",
        "Search" => "搜索",
        // Connection.
        "connecting…" => "连接中…",
        "connected" => "已连接",
        "reconnecting in" => "重连倒计时",
        "up" => "运行",
        "API token needed" => "需要 API 令牌",
        // Tables and reports.
        "Name" => "名称",
        "Template" => "模板",
        "State" => "状态",
        "Throughput" => "吞吐",
        "Elapsed" => "耗时",
        "Sunk / produced" => "写入 / 生产",
        "Produced" => "生产",
        "Sunk" => "写入",
        "Dead letters" => "死信",
        "Leftovers" => "遗留",
        "Node" => "节点",
        "Final report" => "最终报告",
        "Sum of buckets" => "各项之和",
        "Why items were dropped" => "丢弃原因",
        "Every produced item is accounted for." => "每个生产出的条目都有去处。",
        "Blank lines the source skipped (not items)" => "来源跳过的空行（不算条目）",
        "The buckets do not add up to what was produced." => "各项之和与生产数不符。",
        "No jobs yet." => "还没有任务。",
        "Draining" => "排空中",
        "items left" => "条未完成",
        "Abort? Queued or in-flight items will go to the leftovers file:" => {
            "确定中止？排队中和处理中的条目将写入遗留文件："
        }
        // Job states and filters.
        "all" => "全部",
        "active" => "进行中",
        "finished" => "已结束",
        "pending" => "等待",
        "running" => "运行中",
        "draining" => "排空中",
        "completed" => "已完成",
        "stopped" => "已停止",
        "aborted" => "已中止",
        "failed" => "失败",
        "interrupted" => "被中断",
        // History and comparison.
        "Compare runs" => "对比运行",
        "Tick two runs to compare them." => "勾选两次运行进行对比。",
        "Figures" => "指标",
        "Settings that differ" => "不同的配置",
        "Setting" => "配置项",
        "The two specs are the same." => "两份规格完全相同。",
        // Settings.
        "API token" => "API 令牌",
        "Language" => "语言",
        "Saved." => "已保存。",
        "Needed when the server asks for tokens (queuelab token create). Kept in this browser only." => {
            "服务器要求令牌时需要（queuelab token create）。只保存在本浏览器中。"
        }
        // Starting jobs.
        "Write a spec (TOML or JSON)" => "编写规格（TOML 或 JSON）",
        "Spec" => "规格",
        "Build a pipeline" => "搭建流水线",
        "Loading templates…" => "正在加载模板…",
        "Its parameters are set in the TOML editor." => "其参数请在 TOML 编辑器中设置。",
        "valid" => "有效",
        "problem(s)" => "个问题",
        "applied" => "已应用",
        "Source" => "来源",
        "Stage" => "阶段",
        "Sink" => "汇出",
        "Tune" => "调参",
        "stage" => "阶段",
        "source" => "来源",
        // Form fields (spec keys).
        "name" => "名称",
        "kind" => "类型",
        "count" => "数量",
        "rate/s" => "速率（每秒）",
        "duration ms" => "时长（毫秒）",
        "payload" => "负载",
        "malformed share" => "畸形比例",
        "path" => "路径",
        "follow" => "持续跟随",
        "bind" => "监听地址",
        "connections" => "连接数",
        "runtime" => "运行时",
        "workers" => "工作者数",
        "concurrency" => "并发上限",
        "capacity" => "队列容量",
        "when full" => "队满策略",
        "op" => "操作",
        "latency" => "延迟分布",
        "ms" => "毫秒",
        "min ms" => "最小（毫秒）",
        "max ms" => "最大（毫秒）",
        "mean ms" => "均值（毫秒）",
        "median ms" => "中位数（毫秒）",
        "micros" => "微秒",
        "required fields" => "必需字段",
        "field" => "字段",
        "values" => "取值",
        "mode" => "模式",
        "method" => "方法",
        "share" => "比例",
        "retryable" => "可重试",
        "timeout ms" => "超时（毫秒）",
        "retries" => "重试次数",
        "jitter" => "抖动",
        "rate limit/s" => "限速（每秒）",
        "on error" => "出错时",
        "table" => "表",
        "key" => "键",
        "batch size" => "批大小",
        "linger ms" => "攒批等待（毫秒）",
        // Charts.
        "throughput" => "吞吐",
        "throughput per stage" => "各阶段吞吐",
        "queue depth" => "队列深度",
        "items queued" => "排队数",
        "end-to-end latency" => "端到端延迟",
        "end-to-end p99" => "端到端 P99",
        "errors · retries · drops · timeouts" => "错误 · 重试 · 丢弃 · 超时",
        "memory (RSS)" => "内存（RSS）",
        "threads · open files" => "线程 · 打开的文件",
        "event-loop lag" => "事件循环延迟",
        "event-loop lag (this job's runtime)" => "事件循环延迟（本任务的运行时）",
        "server memory (RSS, whole process)" => "服务器内存（RSS，整个进程）",
        "server threads · open files (whole process)" => "服务器线程 · 打开的文件（整个进程）",
        // Lessons.
        "Lessons" => "课程",
        "Lesson" => "课程",
        "Each lesson runs one of the article's pipelines and shows what to watch while it runs." => {
            "每个课程运行文章中的一条流水线，并在运行时指出要观察什么。"
        }
        "Do" => "操作",
        "Watch" => "观察",
        "Start side by side" => "并排启动",
        "The report below shows it." => "见下方报告。",
        "Templates" => "模板",
        // Job page.
        "Job not found" => "找不到任务",
        "No job has this id, here or in the store:" => "内存和存储中都没有这个 id 的任务：",
        "bottleneck" => "瓶颈",
        "backpressured" => "背压",
        "busy" => "忙碌",
        "idle" => "空闲",
        "blocking the event loop" => "正在阻塞事件循环",
        "in flight" => "在途",
        "of" => "共",
        "limit" => "限流",
        "job-wide, split over hosts by their workers" => "整个任务的额度，按各主机的工作者份额分配",
        "items" => "条",
        "messages" => "消息",
        "per message" => "条/消息",
        "queue" => "队列",
        "blocked" => "阻塞",
        "event loop" => "事件循环",
        "bridge" => "桥接",
        "threads" => "线程",
        "tasks" => "协程",
        "sink" => "写入端",
        "Newer" => "较新",
        "Older" => "较早",
        "Runs" => "运行",
        "pages" => "分页",
        "As a spec file (every default filled in), for queuelab run or the editor:" => {
            "作为规格文件（已填入全部默认值），可用于 queuelab run 或编辑器："
        }
        "out" => "输出",
        "Dropped" => "丢弃",
        "duplicate rows" => "重复行",
        "Show" => "显示",
        "Started" => "开始时间",
        "Start it from a script" => "从脚本启动",
        "The same spec, as the REST API and the CLI take it:" => {
            "同一份规格，REST API 和命令行的用法："
        }
        "P99" => "P99 延迟",
        "in" => "输入",
        "filtered" => "过滤",
        "dropped" => "丢弃",
        "errors" => "错误",
        "dead" => "死信",
        "timeouts" => "超时",
        "leftovers" => "遗留",
        "Replay leftovers" => "重放遗留项",
        "wait" => "等待",
        "service" => "处理",
        "reason" => "原因",
        "attempts" => "尝试次数",
        "Previous" => "上一页",
        "Next" => "下一页",
        "Download JSON lines" => "下载 JSON Lines",
        "last minute" => "最近 1 分钟",
        "last 5 minutes" => "最近 5 分钟",
        "last 10 minutes" => "最近 10 分钟",
        "whole run" => "整个运行",
        "Pause" => "暂停",
        "Resume" => "继续",
        "bottleneck: busy, holding up the stages before it · backpressured: waiting for room downstream" => {
            "瓶颈：忙碌并拖住上游阶段 · 背压：等待下游腾出空间"
        }
        // Automatic limits (`workers = "auto"`, `concurrency = "auto"`).
        "auto" => "自动",
        "fixed" => "固定",
        "fixed or auto" => "固定或自动",
        "min" => "最小",
        "max" => "最大",
        "pinned (manual tune)" => "已固定（手动调参）",
        "baseline" => "基线",
        "Pin here" => "固定在当前值",
        "Back to auto" => "恢复自动",
        "The engine chooses this stage's workers; setting them here pins them at that value." => {
            "引擎自动选择此阶段的工作者数；在这里手动设置会把它固定在该值。"
        }
        "The engine chooses this stage's concurrency; setting it here pins it at that value." => {
            "引擎自动选择此阶段的并发上限；在这里手动设置会把它固定在该值。"
        }
        "limit the engine chose (auto stages)" => "引擎选择的上限（自动阶段）",
        // The job's timeline.
        "Events" => "事件",
        "state" => "状态",
        "tune" => "调参",
        "Not found" => "未找到",
        "No page at this address." => "此地址没有页面。",
        other => other,
    }
}

/// A template's explanation in `lang`: the server's English, or the
/// Chinese written here for the article's readers.
pub fn template_text(lang: Lang, name: &str, english: &str) -> String {
    let zh = match (lang, name) {
        (Lang::En, _) => None,
        (_, "thread-io-pool") => Some(
            "文章 §2.1：有界 queue.Queue 上的线程池。8 个线程从容量 1000 的队列取任务，每个任务休眠 5–10 毫秒，\
             就像一次阻塞的 HTTP 调用或磁盘写入。线程最适合阻塞 I/O：一个在等，其余在干活，吞吐约为\
             工作者数 / 平均延迟（这里约 1000 条/秒）。调大调小工作者数，看吞吐跟着变，直到瓶颈变成生产者。",
        ),
        (_, "async-fanout") => Some(
            "文章 §2.2：200 个协程共享容量 1000 的 asyncio.Queue，由信号量限流，每个任务等待 0–1 秒，\
             像一次慢 HTTP 请求。等待不占线程：几个运行时线程就能让 200 个请求同时在途，吞吐约为\
             并发上限 / 平均延迟（约 400 条/秒）。调低并发，看队列被填满、生产者被阻塞——\
             这就是 `await q.put()` 带来的背压。",
        ),
        (_, "async-to-thread-bridge") => Some(
            "文章 §5：异步抓取喂给写磁盘的线程。异步阶段等待 I/O，线程阶段做阻塞调用。QueueLab 在两者之间\
             自动放一座桥：异步一侧等待桥上的空位，线程一侧阻塞在桥上，任何一边都不会卡住另一边的运行时。\
             桥本身也显示为一个队列；当写盘线程成为瓶颈时，能看到它被填满、抓取方的阻塞比例上升。",
        ),
        (_, "cpu-on-threads") => Some(
            "线程池上的 CPU 密集任务（文章的陷阱：在 Python 中 GIL 让多线程对 CPU 任务无效）。Rust 的线程\
             真正并行，但上限是核数：每个任务自旋 200 微秒，在 2 核机器上从 1 个工作者到 2 个吞吐几乎翻倍，\
             8 个则只增加争用。调节工作者数，找到等于核数的拐点。",
        ),
        (_, "blocking-in-async") => Some(
            "文章的第一个陷阱：协程里的阻塞调用会卡住事件循环。100 个异步工作者各自阻塞休眠 5 毫秒，\
             运行时那几个线程全被卡住，其他协程无法运行：事件循环延迟飙升，吞吐跌到\
             （运行时线程数 / 5 毫秒），与并发上限无关。可与 `sleep` 操作（可等待）或线程阶段对比。",
        ),
        (_, "backpressure") => Some(
            "文章的背压课程：慢阶段前面放一个有界队列。来源和 parse 阶段每秒能处理几十万条，而 slow 只能处理约 800 条\
             （4 个工作者，每条 5 毫秒）。它容量 200 的队列被填满并保持满载，parse 的时间都花在阻塞上，来源又被 parse 阻塞，\
             内存保持平稳：有界队列让快速的生产者恰好跟上最慢的阶段。任务页把 slow 标为瓶颈。调大它的工作者数，看阻塞比例下降。",
        ),
        (_, "when-full") => Some(
            "队列满时如何处理下一条数据，对应文章中带或不带超时的 put()。来源每秒提供 2 000 条，阶段每秒只能处理约 500 条，\
             队列容量 100。block（本规格）让来源等待，不丢数据；课程同时并排运行 drop_newest（丢弃新数据）、\
             drop_oldest（丢弃最旧的排队数据，新数据优先）和 reject（生产者收到错误），每份报告统计各自策略丢失了多少。",
        ),
        (_, "timeouts") => Some(
            "超时与取消，对应文章中的 asyncio.wait_for 和 task.cancel()。每次调用耗时 20-200 毫秒，只给 100 毫秒：\
             慢调用被中断并计为超时（进入死信并注明原因），慢依赖无法永远占住一个工作者。运行中中止任务：\
             工作者持有的和队列中的每一条都写入遗留文件并计数，可以重放。",
        ),
        (_, "retries") => Some(
            "指数退避与抖动重试，对应文章中的重试装饰器，调用内置的不稳定测试服务：三分之一的响应是 503。每条最多重试五次，\
             间隔 10、20、40 毫秒（完全抖动），避免步调一致地冲击出问题的服务。重试被计数，几乎所有数据都能通过，\
             写入按 id 做 upsert：失败后重试的数据不会变成第二行。",
        ),
        (_, "rate-limit") => Some(
            "限流与信号量，文章中两种避免压垮服务的方法。throttle 每秒最多放行 200 条（令牌桶），不管来源提供多少；\
             call 最多保持 8 个在途调用（信号量），每个 20 毫秒。吞吐停在限流值；把限流调到超过 8 个在途调用的能力\
             （8 / 20 毫秒 = 每秒 400 条），信号量就会成为新的限制。",
        ),
        (_, "graceful-shutdown") => Some(
            "优雅停机，对应文章中的哨兵和 q.join()。排空只停止来源；每个阶段处理完排队的数据，在输入为空并关闭后停止，\
             所以每条生产出的数据都被写入，遗留项保持为 0。中止立即停止一切：队列和工作者持有的数据计为遗留项，\
             写入文件，可以作为新任务重放。",
        ),
        (_, "non-idempotent-writes") => Some(
            "重试下的非幂等写入，对应文章中对重试可能已经发生的写入的警告。写入端每批都提交，但五批中有一批的确认丢失\
             （故障注入：就像提交后连接断开），于是写入端重试并再写一次。本规格用普通 insert：每个被重试的批次都出现两次，\
             报告统计重复行数。课程同时运行按 `id` upsert 的同一流水线，同样的重试下每条数据恰好一行。",
        ),
        (_, "unbounded-queue") => Some(
            "文章的内存陷阱：慢消费者前面放一个无界队列。来源以 20 000 条/秒生产 15 秒，消费者每秒只处理\
             约 1000 条。没有任何东西往回推，队列每秒增长约 19 000 条，常驻内存随之上升。用\
             `when_full = \"block\"` 的有界队列就会让生产者慢下来。中止它：排队的内容写入遗留文件，一条不丢。",
        ),
        (_, "auto-knee") => Some(
            "让引擎自己找到拐点。每条数据都调用一个耗时 20 毫秒、同时只服务 16 个调用的服务（内置测试服务，16 个槽位）：\
             在途调用少于 16 时，吞吐随并发增长；超过之后，调用在服务端排队，延迟上升而吞吐不再增长。\
             设置 concurrency = \"auto\" 后，只要调用仍和基线一样快、每个许可都在忙，引擎就向上调（先慢启动，再一步一步），\
             延迟上升或加一步没有带来吞吐时就回退：它自己稳定在 16 附近，并在每次变化时说明原因。\
             与固定 4（太少：只有四分之一的吞吐）和固定 64（吞吐与 16 相同，延迟却是四倍）并排启动。",
        ),
        (_, "log-clean-threads") => Some(
            "文章 §6.1 的真实版本：用线程流水线把日志文件清洗进 SQLite。文件来源读取 JSON 日志行（首次运行会\
             生成 20 000 行样本，含 3% 残缺行和 5% 重复 id），4 个解析线程把它们变成记录并按 schema 检查字段类型\
             （`id`、`level`、`msg` 为字符串，`ts` 为数字，`seq` 若有则为整数），过滤掉 DEBUG 行，\
             一个写线程把每批 500 条 upsert 进 SQLite（WAL，每批一个事务，以 `id` 为键）。文章模板用\
             `except: pass` 吞掉坏行，QueueLab 则把每一行都作为死信连同原因保存；运行两次也不会多出重复行。",
        ),
        (_, "log-clean-async") => Some(
            "文章 §6.2：异步日志流水线。JSON 行经 TCP 到达 127.0.0.1:9009；队列满了就停止读取，\
             TCP 流控让发送方慢下来，什么都不丢。8 个任务解析并按 schema 检查字段（同 `log-clean-threads`），每批 500 条经连接池 upsert 进 PostgreSQL，\
             以 `id` 为键。设置 QUEUELAB_PG_URL 即可使用 PostgreSQL；未设置时汇出会说明并改写 SQLite。\
             一直运行直到被停止：Ctrl-C 排空。",
        ),
        _ => None,
    };
    zh.map_or_else(|| english.to_owned(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_is_the_key_and_chinese_covers_the_navigation() {
        assert_eq!(t(Lang::En, "Jobs"), "Jobs");
        for key in ["Jobs", "New job", "History", "Settings", "Drain", "Abort"] {
            assert_ne!(t(Lang::Zh, key), key, "{key}");
        }
        assert_eq!(t(Lang::Zh, "untranslated"), "untranslated");
    }

    /// Every literal the interface passes through `tr(..)`, `t(lang, ..)`
    /// or a form field's `label=".."`, read from the sources.
    fn interface_keys() -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    out.push(std::fs::read_to_string(path).unwrap());
                }
            }
        }
        let mut sources = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut sources,
        );
        let mut keys = Vec::new();
        for text in &sources {
            for opener in ["tr(\"", "label=\"", "get(), \"", "get_untracked(), \""] {
                for (i, _) in text.match_indices(opener) {
                    let rest = &text[i + opener.len()..];
                    if let Some(end) = rest.find('"') {
                        keys.push(rest[..end].to_owned());
                    }
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }

    #[test]
    fn every_piece_of_interface_text_has_chinese() {
        // Words that read the same in both (names of things in a spec).
        let same = ["Main", "url", "sigma", "SLO"];
        let keys = interface_keys();
        assert!(
            keys.len() > 100,
            "the scan finds the interface text: {keys:?}"
        );
        // `t` takes the keys the sources hold, which live for ever.
        let missing: Vec<&'static str> = keys
            .into_iter()
            .map(|k| &*Box::leak(k.into_boxed_str()))
            .filter(|k| k.chars().any(char::is_alphabetic))
            .filter(|k| !same.contains(k) && t(Lang::Zh, k) == *k)
            .collect();
        assert!(missing.is_empty(), "no Chinese for: {missing:?}");
    }

    #[test]
    fn every_template_has_a_chinese_explanation() {
        for name in shared::templates::ALL.iter().map(|t| t.name) {
            assert_ne!(template_text(Lang::Zh, name, "en"), "en", "{name}");
            assert_eq!(template_text(Lang::En, name, "en"), "en");
        }
    }
}
