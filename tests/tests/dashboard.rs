//! The dashboard in a real headless Chromium against the real binary.

use e2e::{BrowserSession, ServerProcess, artifacts_dir, browser};

/// Runs a browser script against the dashboard and returns its report,
/// having checked that the script got to its end and that the page's
/// console stayed clean.
fn run_page(script: &str, args: &[&str]) -> serde_json::Value {
    let report = browser(script, args);
    assert!(
        report.get("failure").is_none(),
        "browser run failed: {report:#}"
    );
    assert_eq!(
        report["errors"],
        serde_json::json!([]),
        "page console is clean: {report:#}"
    );
    report
}

#[test]
fn dashboard_runs_and_shows_live_uptime_without_console_errors() {
    let server = ServerProcess::spawn();
    let shot = artifacts_dir().join("dashboard-shell.png");
    let _ = std::fs::remove_file(&shot);
    let report = run_page("dashboard.mjs", &[&server.url, shot.to_str().unwrap()]);

    assert_eq!(report["productName"], "QueueLab", "the WASM app rendered");
    assert_eq!(report["connState"], "connected");
    assert_eq!(
        report["serverVersion"],
        format!("v{}", env!("CARGO_PKG_VERSION")),
        "version comes from the heartbeat"
    );
    let (first, later) = (&report["uptimeFirst"], &report["uptimeLater"]);
    assert!(
        first.as_str().is_some_and(|s| s.starts_with("up ")),
        "{first}"
    );
    assert_ne!(first, later, "uptime ticks with live heartbeats");
    assert_eq!(report["pages"]["page-new"], "/new");
    assert_eq!(report["pages"]["page-history"], "/history");
    assert_eq!(report["pages"]["page-jobs"], "/jobs");
    assert_eq!(report["pages"]["page-settings"], "/settings");
    // The first view fetches only its own bundle; each view its own.
    assert_eq!(
        report["firstViewWasm"],
        serde_json::json!(["/jobs_bg.wasm"])
    );
    assert_eq!(
        report["wasmByPage"],
        serde_json::json!(["/history_bg.wasm", "/jobs_bg.wasm", "/new_bg.wasm"])
    );
    assert_eq!(
        report["back"],
        serde_json::json!(["/settings", "/history"]),
        "Back within a bundle and across bundles"
    );
    assert_eq!(
        report["tokenAfterReload"], "ql_example",
        "the token is kept in the browser"
    );
    let zh = report["zhNav"].as_str().unwrap();
    assert!(
        zh.contains("任务") && zh.contains("历史") && zh.contains("设置"),
        "{zh}"
    );
    assert_eq!(report["zhConn"], "已连接");
    assert_eq!(report["zhForm"], "来源");
    assert_eq!(report["zhWorkersLabel"], "工作者数");
    assert!(
        report["zhTemplate"]
            .as_str()
            .unwrap()
            .starts_with("文章 §2.1"),
        "template explanations are translated: {report:#}"
    );
    assert_eq!(report["zhVerdict"], "有效");
    assert_eq!(report["deepLink"], true);
    assert!(shot.is_file(), "screenshot saved at {}", shot.display());
}

#[test]
fn dashboard_reconnects_after_a_server_restart() {
    // One store for both processes: the run finished before the restart
    // is read back from it.
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();
    let server = ServerProcess::spawn_with(&["--data-dir", data_dir]);
    let dir = artifacts_dir();
    let port = server
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let mut session = BrowserSession::start("reconnect.mjs", &[&server.url, dir.to_str().unwrap()]);

    session.expect_step("connected");
    drop(server); // kill -9: the socket closes without a goodbye
    session.expect_step("reconnecting");
    let restarted = ServerProcess::spawn_with(&["--port", &port, "--data-dir", data_dir]);
    session.resume();
    let report = session.finish();
    drop(restarted);

    assert!(
        report.get("failure").is_none(),
        "browser run failed: {report:#}"
    );
    let down = report["whileDown"].as_str().unwrap();
    assert!(down.starts_with("reconnecting in "), "{down}");
    assert_eq!(report["afterRestart"], "connected");
    // The run from before the restart, reopened from the store.
    assert_eq!(report["storedTitle"], "before-restart", "{report:#}");
    assert_eq!(report["storedState"], "completed");
    assert_eq!(report["storedProduced"], 2000);
    assert_eq!(
        report["storedControls"], 0,
        "no live controls on a stored run"
    );
    assert!(
        report["storedNodes"].as_u64().unwrap() >= 3,
        "source, stage and sink drawn from the stored snapshot: {report:#}"
    );
    assert_eq!(
        report["errors"],
        serde_json::json!([]),
        "no errors beyond failed handshakes"
    );
}

#[test]
fn start_watch_tune_and_drain_a_job_from_the_dashboard() {
    let server = ServerProcess::spawn();
    let dir = artifacts_dir();
    let report = run_page("jobs.mjs", &[&server.url, dir.to_str().unwrap()]);
    assert!(report["jobUrl"].as_str().unwrap().starts_with("/jobs/j"));
    assert_eq!(report["workersAfterTune"], 2);
    // Drained: no worker is left, and the card says two ran (the tune's).
    assert_eq!(report["drainedWorkers"], "0");
    assert_eq!(report["drainedConfigured"], "(of 2)");
    // The source's shares of its own time are shown and add up.
    let source = report["sourceTime"].as_str().unwrap();
    let shares: Vec<u64> = source
        .split(['·', ' ', '%'])
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(shares.len(), 3, "busy, blocked, idle: {source}");
    assert!(
        (97..=103).contains(&shares.iter().sum::<u64>()),
        "the shares add up: {source}"
    );
    assert!(
        report["chartPoints"].as_u64().unwrap() >= 4,
        "the throughput chart draws history"
    );
    assert_eq!(
        report["throughputSeries"],
        serde_json::json!(["io", "sink"]),
        "one throughput line per stage"
    );
    assert_eq!(
        report["latencySeries"],
        serde_json::json!(["p50", "p95", "p99"])
    );
    assert_eq!(
        report["tuneMarker"], "io workers 8 → 2",
        "the tune is marked on the charts"
    );
    assert_eq!(report["markerLabel"], "io workers 8 → 2", "and labelled");
    let (up, down) = (&report["namesAscending"], &report["namesDescending"]);
    let mut reversed = up.as_array().unwrap().clone();
    reversed.reverse();
    assert_eq!(
        &serde_json::Value::Array(reversed),
        down,
        "a second click reverses the order"
    );
    assert_ne!(up, down, "{report:#}");
    assert_eq!(report["nameSort"], "descending");
    let y_ticks = report["yTicks"].as_array().unwrap();
    assert_eq!(y_ticks.len(), 3, "{report:#}");
    assert!(
        y_ticks[0].as_str().unwrap().ends_with("/s"),
        "y ticks carry units: {y_ticks:?}"
    );
    assert!(
        report["xTicks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.as_str().unwrap().contains(':')),
        "a time axis: {report:#}"
    );
    let tooltip = report["tooltip"].as_str().unwrap();
    assert!(
        tooltip.contains("io") && tooltip.contains("sink"),
        "the crosshair lists every series: {tooltip}"
    );
    assert_eq!(
        report["isolatedLines"], 1,
        "a legend click isolates its series"
    );
    assert!(
        report["allLines"].as_u64().unwrap() > 1,
        "a second click shows them all"
    );
    assert_eq!(
        report["charts"],
        serde_json::json!([
            "chart-throughput",
            "chart-depth",
            "chart-latency",
            "chart-troubles",
            "chart-rss",
            "chart-threads"
        ]),
        "a job on threads only has no event loop, so no lag chart"
    );
    assert!(
        report["drainLeft"].as_u64().unwrap() > 0,
        "drain progress counts what is left: {report:#}"
    );
    let stages = report["drainStages"].as_array().unwrap();
    assert!(
        stages
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("io: ")),
        "items left per stage: {stages:?}"
    );
    let accounting = report["accounting"].as_str().unwrap();
    assert!(
        accounting.starts_with("produced ") && accounting.contains(" = sunk "),
        "{accounting}"
    );
    assert_eq!(
        report["reportSum"], report["reportProduced"],
        "the report's buckets add up"
    );
    assert_eq!(report["bucketSum"], report["reportProduced"]);
    assert!(report["reportProduced"].as_u64().unwrap() > 0);
    assert_eq!(report["balanced"], "Every produced item is accounted for.");
    assert!(
        accounting.ends_with("leftovers 0"),
        "a drain leaves nothing: {accounting}"
    );
    assert_eq!(report["listedState"], "stopped");
    assert!(
        report["unboundedDepth"].as_str().unwrap().ends_with(" / ∞"),
        "{report:#}"
    );
    assert!(
        report["unboundedFill"].as_f64().unwrap() > 0.0,
        "the unbounded queue's bar shows its growth: {report:#}"
    );
    let confirm = report["confirmText"].as_str().unwrap();
    assert!(
        confirm.contains("will go to the leftovers file"),
        "{confirm}"
    );
    let aborted = report["abortedAccounting"].as_str().unwrap();
    let leftovers: u64 = aborted.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(leftovers > 0, "an abort keeps what was queued: {aborted}");
    assert!(
        report["leftoversFile"]
            .as_str()
            .unwrap()
            .ends_with(".jsonl"),
        "the report says where the leftovers are: {report:#}"
    );
    assert_eq!(
        report["activeRows"], 1,
        "the state filter hides finished runs"
    );
    assert_eq!(report["stoppedRows"], 2, "the row's Drain stopped the job");
    assert_eq!(report["searchedState"], "aborted");
    assert_eq!(
        report["filteredQuery"], "?q=unbounded&sort=name&dir=desc",
        "filters and order live in the address"
    );
    assert_eq!(
        report["reloadedSearch"], "unbounded",
        "and survive a reload"
    );
    assert_eq!(report["reloadedSort"], "descending");
    assert_eq!(report["historyRange"], "Runs 1–3 / 3", "{report:#}");
    assert_eq!(report["historySearchQuery"], "?q=unbounded");
    assert_eq!(report["historySearchRange"], "Runs 1–1 / 1");
    assert_eq!(
        report["historyLive"], "late-run",
        "a run finishing while History is open appears on top"
    );
    assert_eq!(report["historyLiveRange"], "Runs 1–4 / 4");
    assert_eq!(
        report["historyRows"], 3,
        "every finished run is in the history"
    );
    assert!(report["reopenedMarkers"].as_u64().unwrap() >= 1);
    assert_eq!(
        report["reopenedState"], "stopped",
        "a reopened run reads as finished"
    );
    assert_eq!(report["reopenedControls"], 0, "with no live controls");
    assert!(
        report["deleteConfirm"]
            .as_str()
            .unwrap()
            .starts_with("Delete the run and its stored records: thread-io-pool"),
        "{report:#}"
    );
    assert_eq!(report["rowsAfterDelete"], 3, "the deleted run is gone");
    for (page, overflow) in report["narrowOverflow"].as_object().unwrap() {
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{page} spills {overflow} px sideways at 390 px"
        );
    }
    assert_eq!(report["narrowOverflow"].as_object().unwrap().len(), 7);
    for (page, missing) in report["unlabelled"].as_object().unwrap() {
        assert_eq!(
            missing,
            &serde_json::json!([]),
            "unlabelled controls on {page}"
        );
    }
    assert_eq!(
        report["compareSeries"],
        serde_json::json!(["A: thread-io-pool", "B: unbounded-queue"]),
        "the two runs overlaid: {report:#}"
    );
    let figures = report["compareFigures"].as_array().unwrap();
    for f in ["produced", "leftovers", "throughput", "p99"] {
        assert!(figures.iter().any(|x| x == f), "{f} compared: {figures:?}");
    }
    let settings = report["compareSettings"].as_array().unwrap();
    assert!(
        settings.iter().any(|s| s == "name") && settings.iter().any(|s| s == "stages[0].name"),
        "the settings that differ are listed: {settings:?}"
    );
    assert!(
        settings
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("io.workers (tuned at")),
        "a live tune is a setting that differed: {settings:?}"
    );
    assert_eq!(
        report["compareMarkers"],
        serde_json::json!(["A: io workers 8 → 2"]),
        "the tunes are marked on the overlaid charts"
    );
    let verdicts = report["compareVerdicts"].as_array().unwrap();
    assert!(
        verdicts
            .iter()
            .all(|v| ["better", "worse", "same"].contains(&v.as_str().unwrap())),
        "{verdicts:?}"
    );
    assert!(
        verdicts.iter().any(|v| v != "same"),
        "changes are judged: {verdicts:?}"
    );
    for view in [
        "view-new.png",
        "view-job.png",
        "view-job-draining.png",
        "view-job-drained.png",
        "view-jobs-active.png",
        "view-compare.png",
        "view-jobs.png",
    ] {
        assert!(dir.join(view).is_file(), "{view}");
    }
}

#[test]
fn the_spec_editor_shows_every_problem_with_its_field_and_starts_a_fixed_spec() {
    let server = ServerProcess::spawn();
    let dir = artifacts_dir();
    let report = run_page("editor.mjs", &[&server.url, dir.to_str().unwrap()]);
    assert_eq!(
        report["paths"],
        serde_json::json!(["name", "source", "stages[0].workers"])
    );
    assert_eq!(
        report["jsonPaths"],
        serde_json::json!(["stages[0].workers"]),
        "a JSON spec is read as JSON"
    );
    assert_eq!(report["problemsAfterFix"], 0);
    assert!(report["started"].as_str().unwrap().starts_with("/jobs/j"));
    let caret = report["caret"].as_str().unwrap();
    assert!(
        caret.contains("line 3") && caret.contains("[[stages]") && caret.contains('^'),
        "a TOML error keeps its line and caret: {caret}"
    );
}

#[test]
fn the_form_shows_each_problem_beside_its_field_and_starts_the_fixed_spec() {
    let server = ServerProcess::spawn();
    let dir = artifacts_dir();
    let report = run_page("form.mjs", &[&server.url, dir.to_str().unwrap()]);
    // And as a TOML file, with its defaults filled in.
    let toml = report["exportToml"].as_str().unwrap();
    assert!(
        toml.contains("name = \"my-pipeline")
            && toml.contains("[[stages]]")
            && toml.contains("workers = 2"),
        "{toml}"
    );
    assert_eq!(report["workersInputType"], "number");
    // The exported curl line starts the very spec the form shows.
    let curl = report["exportCurl"].as_str().unwrap();
    assert!(curl.contains(server.url.trim_end_matches('/')), "{curl}");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{curl} -s -o /dev/null -w '%{{http_code}}'"))
        .env("QUEUELAB_TOKEN", "")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "201",
        "{curl}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report["exportCli"]
            .as_str()
            .unwrap()
            .ends_with("queuelab jobs start spec.json")
    );
    assert_eq!(report["workersError"], "must be between 1 and 4096");
    assert_eq!(report["workersInvalid"], "true");
    assert_eq!(report["duplicateError"], "duplicates the name of stages[0]");
    assert_eq!(report["sinkPathError"], "must not be empty");
    assert_eq!(report["batchError"], "must be between 1 and 100000");
    assert_eq!(
        report["shownErrors"],
        serde_json::json!([
            "stages[0].workers",
            "stages[1].name",
            "sink.path",
            "sink.batch.size"
        ]),
        "each problem beside its own field, and only there"
    );
    assert_eq!(report["concurrencyBefore"], 0);
    assert_eq!(
        report["concurrencyAfter"], 1,
        "async stages get a concurrency field"
    );
    assert_eq!(
        report["focusAfterReshape"], "f-stages-1--runtime",
        "the focus stays on the control after the form is laid out again"
    );
    assert_eq!(report["errorsAfterFix"], 0);
    assert_eq!(
        report["unlabelled"],
        serde_json::json!([]),
        "every control has a label"
    );
    assert_eq!(report["tabFromName"], "f-source-kind");
    assert!(report["started"].as_str().unwrap().starts_with("/jobs/j"));
    assert_eq!(report["jobTitle"], "my-pipeline-kbd");
    assert_eq!(
        report["nodes"],
        serde_json::json!([
            "source",
            "stage1",
            "bridge:stage1->enrich",
            "enrich",
            "bridge:enrich->sink",
            "sink"
        ]),
        "{report:#}"
    );
    assert_eq!(report["finalState"], "completed");
    assert_eq!(report["customizedStages"], 2);
    assert_eq!(report["customizedOp"], "parse_json");
    assert!(dir.join("view-form-errors.png").is_file());
}

#[test]
fn every_live_knob_applies_from_the_job_page_and_shows_on_the_page() {
    let server = ServerProcess::spawn();
    let dir = artifacts_dir();
    let report = run_page("tune.mjs", &[&server.url, dir.to_str().unwrap()]);
    assert_eq!(report["created"], 201);
    assert_eq!(report["concurrencyBefore"], "32");
    assert_eq!(
        report["focusedAfterStage"], "tune-workers",
        "Tab reaches the field"
    );
    assert_eq!(
        report["workersPlaceholder"], "2",
        "the current value is shown"
    );
    assert_eq!(
        report["parseWorkers"], 3,
        "Enter applied the new worker count"
    );
    assert_eq!(report["parseRate"], "500/s");
    assert_eq!(report["fetchConcurrency"], "8");
    assert_eq!(report["batchPlaceholder"], "500");
    assert_eq!(report["tuneMessage"], "applied");
    let markers = report["markers"].as_array().unwrap();
    for m in [
        "parse workers 2 → 3",
        "parse rate_limit 0 → 500",
        "fetch concurrency 32 → 8",
        "sink batch_size 500 → 100",
    ] {
        assert!(markers.iter().any(|x| x == m), "{m} in {markers:?}");
    }
    assert_eq!(
        markers.len(),
        4,
        "what was typed for one stage went to no other: {markers:?}"
    );
    let bad = report["badTune"].as_str().unwrap();
    assert!(
        bad.contains("batch_size"),
        "the refusal names the field: {bad}"
    );
    let unknown = report["unknownJob"].as_str().unwrap();
    assert!(
        unknown.starts_with("Job not found") && unknown.contains("j-does-not-exist"),
        "{unknown}"
    );
    assert_eq!(report["connAfterUnknown"], "connected");
    assert!(dir.join("view-job-tuned.png").is_file());
}

#[test]
fn an_auto_stage_shows_its_limit_and_why_and_pins_and_goes_back_to_auto_from_the_job_page() {
    let server = ServerProcess::spawn();
    let dir = artifacts_dir();
    let report = run_page("auto.mjs", &[&server.url, dir.to_str().unwrap()]);
    assert_eq!(report["created"], 201);
    // The card: the limit the controller chose, within its range, and why.
    let limit: u32 = report["cardLimit"].as_str().unwrap().parse().unwrap();
    assert!((1..=4096).contains(&limit), "{report:#}");
    assert_eq!(
        report["cardRange"], "(1–4096)",
        "\"auto\" spans 1 to the limit"
    );
    assert!(
        !report["cardReason"].as_str().unwrap().is_empty(),
        "{report:#}"
    );
    assert_eq!(report["cardPinnedAtStart"], 0);
    // The limit chart: one line, the stage's, and the changes marked.
    let series = report["limitSeries"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0]["series"], "hash workers");
    assert!(series[0]["points"].as_u64().unwrap() >= 4, "{series:?}");
    let markers = report["limitMarkers"].as_array().unwrap();
    assert!(!markers.is_empty(), "{report:#}");
    assert!(
        markers.iter().all(|m| !m.as_str().unwrap().is_empty()),
        "each marker is labelled with its reason: {markers:?}"
    );
    assert!(!report["limitLabels"].as_array().unwrap().is_empty());
    // The timeline: the controller's changes among the job's states.
    let first = report["timelineAuto"].as_str().unwrap();
    assert!(first.contains("hash workers"), "{first}");
    assert!(
        report["timelineStates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "running"),
        "{report:#}"
    );
    // The tune panel: a manual tune pins it; pin and back to auto.
    assert!(
        report["tuneHint"].as_str().unwrap().contains("pins them"),
        "{report:#}"
    );
    assert_eq!(report["backDisabledWhileAuto"], true);
    assert_eq!(report["cardPinned"], "pinned (manual tune)");
    assert_eq!(report["pinDisabledWhilePinned"], true);
    assert_eq!(report["unpinnedAfterPinHere"], true);
    assert_eq!(
        report["manualLimit"], "3",
        "a manual tune pins at its value"
    );
    let reasons = report["timelineReasons"].as_array().unwrap();
    for why in [
        "pinned where it is",
        "auto turned back on",
        "pinned by a manual tune",
    ] {
        assert!(
            reasons.iter().any(|r| r.as_str().unwrap().contains(why)),
            "{why} in {reasons:?}"
        );
    }
    assert_eq!(report["unpinnedAfterManual"], true);
    assert_eq!(report["tuneMessage"], "applied");
    // An async stage's concurrency, on the template that finds a knee.
    assert_eq!(report["kneeCreated"], 201);
    let card = report["kneeCard"].as_str().unwrap();
    assert!(
        card.contains("concurrency") && card.contains("(1–100000)"),
        "{card}"
    );
    assert_eq!(
        report["kneeSeries"],
        serde_json::json!(["call concurrency"])
    );
    assert!(
        report["kneeHint"]
            .as_str()
            .unwrap()
            .contains("this stage's concurrency"),
        "{report:#}"
    );
    // The form: auto beside the number, a range, and back to the number.
    assert_eq!(report["formWorkersBefore"], "4");
    assert_eq!(report["formInputsWhenAuto"], 2, "min and max");
    let toml = report["formToml"].as_str().unwrap();
    assert_eq!(toml, "[stages.workers]\nmax = 8", "{report:#}");
    assert_eq!(report["formCurlHasRange"], true);
    assert_eq!(report["unlabelled"], serde_json::json!([]));
    assert_eq!(
        report["formWorkersAfter"], "4",
        "fixed again: the number is back"
    );
    for shot in [
        "view-job-auto.png",
        "view-job-auto-pinned.png",
        "view-form-auto.png",
    ] {
        assert!(dir.join(shot).is_file(), "{shot}");
    }
}

#[test]
fn a_server_that_asks_for_tokens_says_so_and_connects_once_one_is_saved() {
    let server = ServerProcess::spawn_with(&["--auth", "on"]);
    let out = std::process::Command::new(e2e::queuelab_bin())
        .args(["token", "create", "--role", "operator", "--data-dir"])
        .arg(server.data_dir.path())
        .output()
        .expect("queuelab token create");
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    assert!(token.starts_with("ql_"), "{token}");
    let dir = artifacts_dir();
    let report = run_page("token.mjs", &[&server.url, &token, dir.to_str().unwrap()]);
    assert_eq!(report["withoutToken"], "API token needed");
    assert_eq!(report["withToken"], "connected");
    assert!(["running", "completed"].contains(&report["jobState"].as_str().unwrap()));
}

#[test]
fn the_api_docs_render_under_the_content_security_policy() {
    let server = ServerProcess::spawn();
    let shot = artifacts_dir().join("api-docs.png");
    let report = run_page("apidocs.mjs", &[&server.url, shot.to_str().unwrap()]);
    let csp = report["csp"].as_str().expect("a CSP header");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        report["operations"].as_u64().unwrap() >= 10,
        "Swagger UI rendered the operations: {report:#}"
    );
    assert!(shot.is_file());
}

#[test]
fn lessons_start_in_one_click_and_their_signal_shows_on_the_job_page() {
    let server = ServerProcess::spawn();
    let dir = artifacts_dir();
    let report = run_page("lessons.mjs", &[&server.url, dir.to_str().unwrap()]);
    assert!(report["lessonCards"].as_u64().unwrap() >= 13, "{report:#}");
    // Backpressure: the slow stage is hot, its queue full, parse blocked.
    let depth = report["slowDepth"].as_str().unwrap();
    assert!(depth.ends_with("/ 200"), "{depth}");
    let blocked: f64 = report["parseBlocked"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(blocked >= 30.0, "{report:#}");
    assert_eq!(
        report["slowFocused"], true,
        "the lesson outlines what to watch"
    );
    let lat = report["slowLatencies"].as_str().unwrap();
    assert!(
        lat.starts_with("wait ") && lat.contains(" · service ") && lat.contains("ms"),
        "per-stage queue wait and service time: {lat}"
    );
    assert!(report["legend"].as_str().unwrap().contains("bottleneck"));
    // The diagnosis names each of the three in words.
    let d = report["backpressureDiagnosis"].as_str().unwrap();
    assert!(d.contains("Bottleneck: slow") && d.contains("parse"), "{d}");
    let d = report["blockingDiagnosis"].as_str().unwrap();
    assert!(d.contains("Blocking call") && d.contains("fetch"), "{d}");
    let d = report["unboundedDiagnosis"].as_str().unwrap();
    assert!(d.contains("Memory risk"), "{d}");
    // Blocking in async: lag with the stage named, the lag chart outlined.
    let lag = report["eventLoop"].as_str().unwrap();
    assert!(lag.contains("blocked by fetch"), "{lag}");
    assert_eq!(report["lagChartFocused"], true);
    assert!(
        report["fetchLoopShare"]
            .as_str()
            .unwrap()
            .starts_with("event loop")
    );
    assert_eq!(report["fixedName"], "blocking-in-async-awaited");
    assert_eq!(
        report["finishedButtons"], 0,
        "a finished run has no live controls"
    );
    assert_eq!(report["notFound"], "Job not found");
    // The bridge is a badge on the edge between two worlds, not a card.
    assert!(report["bridgeBadges"].as_u64().unwrap() >= 1, "{report:#}");
    assert_eq!(report["bridgeCards"], 0, "{report:#}");
    let bridge = report["bridgeText"].as_str().unwrap();
    assert!(
        bridge.contains("bridge") && bridge.contains("tasks → threads") && bridge.contains(" / "),
        "{bridge}"
    );
    // A CPU-bound thread stage shows its own CPU share.
    let cpu = report["hashCpu"].as_str().unwrap();
    assert!(cpu.starts_with("CPU ") && cpu.ends_with('%'), "{cpu}");
    assert!(report["leftoverRows"].as_u64().unwrap() > 0, "{report:#}");
    let left = report["leftoversBucket"].as_u64().unwrap();
    assert_eq!(
        report["replayProduced"], left,
        "the replay reads every leftover"
    );
    assert_eq!(report["replaySunk"], left, "and sinks them all");
    // Log cleaning: dead letters with reasons, paged, downloadable.
    let total = report["deadLetterTotal"].as_u64().unwrap();
    assert!(total > 20, "{report:#}");
    assert!(
        report["deadLetterReason"].as_str().unwrap().len() > 5,
        "each dead letter says why: {report:#}"
    );
    assert_eq!(report["deadLetterRange"], format!("1–20 / {total}"));
    assert!(
        report["deadLetterNextRange"]
            .as_str()
            .unwrap()
            .starts_with("21–40")
    );
    assert!(
        report["downloadName"]
            .as_str()
            .unwrap()
            .ends_with("-dead_letters.jsonl")
    );
    assert_eq!(
        report["downloadLines"], total,
        "the download holds every dead letter"
    );
}

#[test]
fn the_tuning_view_runs_a_sweep_marks_its_knee_reopens_compares_and_soaks() {
    let server = ServerProcess::spawn();
    let dir = artifacts_dir();
    let report = run_page("tuning.mjs", &[&server.url, dir.to_str().unwrap()]);
    assert_eq!(report["state"], "done", "{report:#}");
    assert_eq!(report["rows"], 4, "{report:#}");
    // The points appeared as the runs finished, not all at the end.
    let seen: Vec<u64> = report["pointsSeen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(seen.len() >= 2 && seen.ends_with(&[4]), "{seen:?}");
    assert!(
        report["kneeMarks"].as_u64().unwrap() >= 2,
        "on both charts: {report:#}"
    );
    let label = report["kneeLabel"].as_str().unwrap();
    assert!(
        label.starts_with("knee ") && label.contains('('),
        "the rule is named: {label}"
    );
    assert_eq!(
        report["kneeRow"], "400",
        "min(limit, 400/s) bends at 400: {report:#}"
    );
    assert!(
        report["verdict"].as_str().unwrap().contains("Knee at"),
        "{report:#}"
    );
    assert_eq!(report["runDots"], 4);
    assert!(report["pointJob"].as_str().unwrap().starts_with("/jobs/j"));
    assert_eq!(report["reopenedRows"], 4);
    let zh = report["verdictZh"].as_str().unwrap();
    assert!(zh.contains("拐点在"), "the verdict in Chinese: {zh}");
    assert_eq!(report["listed"], 2);
    assert!(report["compareLines"].as_u64().unwrap() >= 2, "{report:#}");
    assert_eq!(report["trendRows"], 4, "{report:#}");
    assert_eq!(report["soakCharts"], 4, "{report:#}");
    assert!(!report["soakVerdict"].as_str().unwrap().is_empty());
    for shot in [
        "view-tuning-sweep.png",
        "view-tuning-compare.png",
        "view-tuning-soak.png",
    ] {
        assert!(dir.join(shot).is_file(), "{shot}");
    }
}

#[test]
fn the_workers_view_lists_worker_processes_and_a_job_shows_its_broker_edge() {
    let url = std::env::var("QUEUELAB_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let server = ServerProcess::spawn_with(&["--nats-url", &url, "--no-local-stage-workers"]);
    let _a = e2e::WorkerProcess::spawn(&server, "host-a", &[]);
    let _b = e2e::WorkerProcess::spawn(&server, "host-b", &[]);
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        r#"
name = "scaled-out"
source = { kind = "synthetic", count = 10000000, rate = 200.0, payload = "counter" }
[[stages]]
name = "work"
workers = 4
rate_limit = 150.0
transport = { kind = "nats" }
op = { kind = "sleep", latency = { dist = "fixed", ms = 5.0 } }
"#,
    )
    .unwrap();
    let out = server.jobs(&["start", spec.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let artifacts = artifacts_dir();
    let report = run_page(
        "workers.mjs",
        &[&server.url, &job, artifacts.to_str().unwrap()],
    );
    assert_eq!(report["state"], "done", "{report:#}");
    assert_eq!(report["rows"], 2, "{report:#}");
    assert_eq!(report["names"], serde_json::json!(["host-a", "host-b"]));
    assert!(
        report["census"].as_str().unwrap().starts_with("2 "),
        "{report:#}"
    );
    assert!(
        report["runs"].as_str().unwrap().contains("work ×2"),
        "{report:#}"
    );
    let edge = report["edgeWorkers"].as_str().unwrap();
    assert!(
        edge.contains("host-a ×2") && edge.contains("host-b ×2"),
        "{edge}"
    );
    // Items and messages are shown apart, and the stage's rate limit as
    // the job's budget that the hosts share.
    let batching = report["edgeBatching"].as_str().unwrap();
    assert!(
        batching.contains("items")
            && batching.contains("messages")
            && batching.contains("per message"),
        "{batching}"
    );
    assert!(
        report["limitsSplit"]
            .as_str()
            .unwrap()
            .contains("split over hosts"),
        "{report:#}"
    );
    assert!(
        report["rateLimit"].as_str().unwrap().contains("150"),
        "{report:#}"
    );
}
