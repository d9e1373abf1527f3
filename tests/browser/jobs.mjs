// Starts a job from the template gallery, watches it live, tunes its
// workers, drains it and reads the accounting line; screenshots each view.
//
// usage: node jobs.mjs <base-url> <artifacts-dir>
import { launch, watchErrors, text, plain } from "./driver.mjs";

const [base, dir] = process.argv.slice(2);
const report = {};
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  report.errors = watchErrors(page);
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="template-thread-io-pool"]', { timeout: 30000 });
  await page.screenshot({ path: `${dir}/view-new.png`, fullPage: true });
  await page.locator('[data-testid="template-thread-io-pool"] [data-testid="start"]').click();
  await page.waitForSelector('[data-testid="page-job"]', { timeout: 30000 });
  report.jobUrl = new URL(page.url()).pathname;
  await page.waitForFunction(
    () => document.querySelector('[data-testid="job-state"]')?.textContent === "running",
    null, { timeout: 30000 });
  // Throughput and queue depth move.
  await page.waitForFunction(
    () => /[1-9]/.test(document.querySelector('[data-testid="throughput"]')?.textContent ?? ""),
    null, { timeout: 30000 });
  report.throughput = await text(page, "throughput");
  await page.waitForFunction(
    () => /queue [1-9]/.test(document.querySelector('[data-testid="node-io"] [data-testid="depth"]')?.textContent ?? ""),
    null, { timeout: 30000 });
  report.depth = await text(page, "depth");
  // The source card says where the source's own time goes.
  await page.waitForFunction(
    () => /busy \d+% · blocked \d+% · idle \d+%/.test(document.querySelector('[data-testid="source-time"]')?.textContent ?? ""),
    null, { timeout: 30000 });
  report.sourceTime = await text(page, "source-time");
  // Tune the workers and see the running count change (down to two, so
  // the job is still running when we drain it).
  await page.locator('[data-testid="tune-stage"]').selectOption("io");
  await page.locator('[data-testid="tune-workers"]').fill("2");
  await page.locator('[data-testid="tune-apply"]').click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="node-io"] [data-testid="workers"]')?.textContent === "2",
    null, { timeout: 30000 });
  report.workersAfterTune = 2;
  // The charts draw the last minutes, one line per stage, and mark the tune.
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="chart-throughput"] polyline[data-series="io"]')?.getAttribute("points") ?? "").split(" ").length >= 4,
    null, { timeout: 30000 });
  report.chartPoints = (await page.locator('[data-testid="chart-throughput"] polyline[data-series="io"]').getAttribute("points")).split(" ").length;
  report.throughputSeries = await page.locator('[data-testid="chart-throughput"] polyline').evaluateAll((ls) => ls.map((l) => l.dataset.series));
  report.latencySeries = await page.locator('[data-testid="chart-latency"] polyline').evaluateAll((ls) => ls.map((l) => l.dataset.series));
  await page.waitForSelector('[data-testid="chart-throughput"] [data-testid="marker"]', { state: "attached", timeout: 30000 });
  report.tuneMarker = await page.locator('[data-testid="chart-throughput"] [data-testid="marker"] title').first().textContent();
  report.charts = await page.locator('.charts figure').evaluateAll((fs) => fs.map((f) => f.dataset.testid));
  // Readable charts: a labelled tune marker, y ticks with units, a time
  // axis, a crosshair listing every series' value, a legend that isolates.
  const chart = page.locator('[data-testid="chart-throughput"]');
  report.markerLabel = await chart.locator('[data-testid="marker-label"]').first().innerText();
  report.yTicks = await chart.locator(".ytick").allInnerTexts();
  report.xTicks = await chart.locator(".xtick").allInnerTexts();
  const box = await chart.locator(".plot svg").boundingBox();
  await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2);
  await chart.locator('[data-testid="chart-tooltip"]').waitFor({ timeout: 10000 });
  report.tooltip = await chart.locator('[data-testid="chart-tooltip"]').innerText();
  await page.screenshot({ path: `${dir}/view-job-chart-tooltip.png`, clip: { x: box.x - 80, y: box.y - 40, width: box.width + 120, height: box.height + 120 } });
  await page.mouse.move(0, 0);
  await chart.locator('[data-testid="legend-item"]').first().click();
  report.isolatedLines = await chart.locator("polyline").count();
  await chart.locator('[data-testid="legend-item"]').first().click();
  report.allLines = await chart.locator("polyline").count();
  await page.screenshot({ path: `${dir}/view-job.png`, fullPage: true });
  // Drain: the items left per stage count down, then the final report.
  await page.locator('[data-testid="drain"]').click();
  await page.waitForSelector('[data-testid="drain-progress"]', { timeout: 30000 });
  report.drainLeft = plain(await text(page, "drain-left"));
  report.drainStages = await page.locator('[data-testid="drain-stage"]').allInnerTexts();
  await page.screenshot({ path: `${dir}/view-job-draining.png`, fullPage: true });
  await page.waitForFunction(
    () => document.querySelector('[data-testid="job-state"]')?.textContent === "stopped",
    null, { timeout: 60000 });
  report.accounting = await text(page, "accounting");
  await page.waitForSelector('[data-testid="report"]', { timeout: 30000 });
  report.reportProduced = plain(await text(page, "report-produced"));
  report.reportSum = plain(await text(page, "report-sum"));
  report.bucketSum = (await page.locator('[data-bucket]').allInnerTexts()).reduce((a, b) => a + plain(b), 0);
  report.balanced = await text(page, "report-balanced");
  // Its workers have exited; the card still says how many ran.
  await page.waitForSelector('[data-testid="node-io"] [data-testid="configured-workers"]', { timeout: 30000 });
  report.drainedWorkers = await page.locator('[data-testid="node-io"] [data-testid="workers"]').innerText();
  report.drainedConfigured = await page.locator('[data-testid="node-io"] [data-testid="configured-workers"]').innerText();
  await page.screenshot({ path: `${dir}/view-job-drained.png`, fullPage: true });
  // The job list shows it.
  await page.getByRole("navigation").getByRole("link", { name: "Jobs", exact: true }).click();
  await page.waitForSelector('[data-testid="job-row"]', { timeout: 30000 });
  report.listedState = await text(page, "job-state");
  await page.screenshot({ path: `${dir}/view-jobs.png`, fullPage: true });

  // Abort another job: the confirmation says what goes to leftovers.
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="template-unbounded-queue"]', { timeout: 30000 });
  await page.locator('[data-testid="template-unbounded-queue"] [data-testid="start"]').click();
  await page.waitForSelector('[data-testid="page-job"]', { timeout: 30000 });
  await page.waitForFunction(
    () => /queue [0-9][0-9,]{2,}/.test(document.querySelector('[data-testid="node-slow"] [data-testid="depth"]')?.textContent ?? ""),
    null, { timeout: 30000 });
  // An unbounded queue has no "full": its bar grows with the depth.
  report.unboundedDepth = await page.locator('[data-testid="node-slow"] [data-testid="depth"]').innerText();
  report.unboundedFill = await page.locator('[data-testid="node-slow"] .bar.unbounded .fill').evaluate((f) => parseFloat(f.style.width));
  page.once("dialog", async (d) => {
    report.confirmText = d.message();
    await d.accept();
  });
  await page.locator('[data-testid="abort"]').click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="job-state"]')?.textContent === "aborted",
    null, { timeout: 60000 });
  report.abortedAccounting = await text(page, "accounting");
  await page.waitForSelector('[data-testid="leftovers-file"]', { timeout: 30000 });
  report.leftoversFile = await text(page, "leftovers-file");
  await page.screenshot({ path: `${dir}/view-job-aborted.png`, fullPage: true });

  // The job table: a running job has a sparkline and inline actions; the
  // state filter hides finished runs; Drain in the row stops it.
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="template-thread-io-pool"]', { timeout: 30000 });
  await page.locator('[data-testid="template-thread-io-pool"] [data-testid="start"]').click();
  await page.waitForSelector('[data-testid="page-job"]', { timeout: 30000 });
  await page.getByRole("navigation").getByRole("link", { name: "Jobs", exact: true }).click();
  await page.waitForSelector('[data-testid="job-row"]', { timeout: 30000 });
  await page.locator('[data-testid="filter-state"]').selectOption("active");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="job-row"]').length === 1, null, { timeout: 30000 });
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="job-row"] [data-testid="sparkline"] polyline')?.getAttribute("points") ?? "").split(" ").length >= 3,
    null, { timeout: 30000 });
  report.activeRows = await page.locator('[data-testid="job-row"]').count();
  await page.screenshot({ path: `${dir}/view-jobs-active.png`, fullPage: true });
  await page.locator('[data-testid="row-drain"]').click();
  await page.locator('[data-testid="filter-state"]').selectOption("stopped");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="job-row"]').length === 2, null, { timeout: 60000 });
  report.stoppedRows = await page.locator('[data-testid="job-row"]').count();
  await page.locator('[data-testid="filter-state"]').selectOption("all");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="job-row"]').length === 3, null, { timeout: 30000 });
  // Sorting by name, then reversed.
  await page.locator('[data-testid="sort-name"]').click();
  report.namesAscending = await page.locator('[data-testid="job-row"] td:first-child').allInnerTexts();
  await page.locator('[data-testid="sort-name"]').click();
  report.namesDescending = await page.locator('[data-testid="job-row"] td:first-child').allInnerTexts();
  report.nameSort = await page.locator('th:has([data-testid="sort-name"])').getAttribute("aria-sort");
  await page.locator('[data-testid="filter-text"]').fill("unbounded");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="job-row"]').length === 1, null, { timeout: 30000 });
  report.searchedState = await text(page, "job-state");
  // The filters and the order live in the address: a reload keeps them.
  report.filteredQuery = new URL(page.url()).search;
  await page.reload({ waitUntil: "load" });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="job-row"]').length === 1, null, { timeout: 30000 });
  report.reloadedSearch = await page.locator('[data-testid="filter-text"]').inputValue();
  report.reloadedSort = await page.locator('th:has([data-testid="sort-name"])').getAttribute("aria-sort");

  // All three runs are in the history, and reopen with their report.
  await page.getByRole("navigation").getByRole("link", { name: "History", exact: true }).click();
  await page.waitForSelector('[data-testid="run-row"]', { timeout: 30000 });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="run-row"]').length >= 3, null, { timeout: 30000 });
  report.historyRows = await page.locator('[data-testid="run-row"]').count();
  report.historyRange = await text(page, "page-range");
  // The search is kept in the address, and paging counts what it matches.
  await page.locator('[data-testid="history-search"]').fill("unbounded");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="run-row"]').length === 1, null, { timeout: 30000 });
  report.historySearchQuery = new URL(page.url()).search;
  report.historySearchRange = await text(page, "page-range");
  await page.locator('[data-testid="history-search"]').fill("");
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="run-row"]').length === 3, null, { timeout: 30000 });
  // Live: a run that finishes while History is open appears in it.
  const late = await page.request.post(new URL("api/v1/jobs", base).href, {
    data: { template: "thread-io-pool", overrides: { name: "late-run", source: { count: 50 } } },
  });
  report.lateStatus = late.status();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="run-row"]').length === 4, null, { timeout: 60000 });
  report.historyLive = await page.locator('[data-testid="run-row"] td:nth-child(2) a').first().innerText();
  report.historyLiveRange = await text(page, "page-range");
  await page.screenshot({ path: `${dir}/view-history.png`, fullPage: true });

  // Two runs compared: overlaid charts, figures and the settings that differ.
  // A: the first run, tuned live (the oldest row); B: the unbounded one
  // (the late run sits on top).
  const picks = page.locator('[data-testid="pick"]');
  await picks.nth(3).check();
  await picks.nth(2).check();
  await page.locator('[data-testid="compare"]').click();
  await page.waitForSelector('[data-testid="compare-figures"]', { timeout: 30000 });
  report.compareSeries = await page.locator('[data-testid="compare-throughput"] polyline').evaluateAll((ls) => ls.map((l) => l.dataset.series));
  report.compareFigures = await page.locator('[data-testid="figure-row"]').evaluateAll((rs) => rs.map((r) => r.dataset.figure));
  report.compareSettings = await page.locator('[data-testid="setting-row"] code').allInnerTexts();
  report.compareMarkers = await page.locator('[data-testid="compare-throughput"] [data-testid="marker-label"]').allInnerTexts();
  report.compareVerdicts = await page.locator('[data-testid="figure-change"]').evaluateAll((cs) => cs.map((c) => c.dataset.verdict));
  await page.screenshot({ path: `${dir}/view-compare.png`, fullPage: true });
  const comparePath = new URL(page.url()).pathname.slice(1);


  // On a narrow screen nothing spills sideways out of the page; on every
  // page each control has a label and each button a name.
  await page.setViewportSize({ width: 390, height: 800 });
  report.narrowOverflow = {};
  report.unlabelled = {};
  for (const path of ["jobs", "new", "history", "tuning", "settings", comparePath, report.jobUrl.slice(1)]) {
    await page.goto(new URL(path, base).href, { waitUntil: "load" });
    await page.waitForSelector("main section", { timeout: 30000 });
    await page.waitForTimeout(500);
    report.narrowOverflow[path] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    report.unlabelled[path] = await page.evaluate(() => [
      ...[...document.querySelectorAll("input, select, textarea")]
        .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label")),
      ...[...document.querySelectorAll("button, a")].filter((el) => !(el.textContent || el.getAttribute("aria-label") || "").trim()),
    ].map((el) => el.outerHTML.slice(0, 100)));
  }
  await page.screenshot({ path: `${dir}/view-job-narrow.png`, fullPage: true });
  // A reopened run draws its stored history.
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="chart-throughput"] polyline')?.getAttribute("points") ?? "").split(" ").length >= 3,
    null, { timeout: 30000 });
  report.reopenedChartPoints = (await page.locator('[data-testid="chart-throughput"] polyline').first().getAttribute("points")).split(" ").length;
  await page.waitForSelector('[data-testid="report"]', { timeout: 30000 });
  await page.waitForSelector('[data-testid="chart-throughput"] [data-testid="marker"]', { state: "attached", timeout: 30000 });
  report.reopenedMarkers = await page.locator('[data-testid="chart-throughput"] [data-testid="marker"]').count();
  // A finished run reads as finished: its state, no live controls.
  report.reopenedState = await text(page, "job-state");
  report.reopenedControls = await page.locator('[data-testid="drain"], [data-testid="abort"], [data-testid="tune"]').count();

  // A run can be deleted from the history, after a confirmation.
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.getByRole("navigation").getByRole("link", { name: "History", exact: true }).click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="run-row"]').length >= 3, null, { timeout: 30000 });
  page.once("dialog", async (d) => {
    report.deleteConfirm = d.message();
    await d.accept();
  });
  await page.locator('[data-testid="delete-run"]').last().click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="run-row"]').length === 3, null, { timeout: 30000 });
  report.rowsAfterDelete = await page.locator('[data-testid="run-row"]').count();
} catch (err) {
  report.failure = String(err?.stack || err);
  try {
    const page = browser.contexts()[0]?.pages()[0];
    if (page) {
      report.stateAtFailure = await text(page, "job-state");
      report.bodyAtFailure = (await page.locator("main").innerText()).slice(0, 600);
    }
  } catch {}
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
