// The lessons as a user meets them: the gallery on New job, a lesson
// started with one click, its banner and the signal it points at on the
// job page, the fix one click away, and a "not found" page for an unknown
// job. Screenshots each view.
//
// usage: node lessons.mjs <base-url> <artifacts-dir>
import { launch, watchErrors, text, plain } from "./driver.mjs";

const [base, dir] = process.argv.slice(2);
const report = {};
const browser = await launch();
const abort = async (page) => {
  const id = new URL(page.url()).pathname.split("/").pop();
  await page.request.post(new URL(`api/v1/jobs/${id}/stop`, base).href, { data: { mode: "abort" } });
};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  report.errors = watchErrors(page);
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="lessons"] [data-testid="lesson-backpressure"]', { timeout: 30000 });
  report.lessonCards = await page.locator('[data-testid="lessons"] article.lesson').count();
  await page.locator('[data-testid="lessons"]').screenshot({ path: `${dir}/view-lessons.png` });

  // Backpressure: the slow stage is the bottleneck, parse is backpressured.
  await page.locator('[data-testid="lesson-backpressure"] [data-testid="lesson-start"]').click();
  await page.waitForSelector('[data-testid="lesson-banner"]', { timeout: 30000 });
  report.backpressureSignal = await text(page, "lesson-signal");
  await page.waitForFunction(
    () => document.querySelector('[data-testid="node-slow"]')?.dataset.state === "bottleneck"
      && document.querySelector('[data-testid="node-parse"]')?.dataset.state === "backpressured",
    null, { timeout: 60000 });
  report.slowDepth = await page.locator('[data-testid="node-slow"] [data-testid="depth"]').innerText();
  report.parseBlocked = await page.locator('[data-testid="node-parse"] [data-testid="blocked"]').innerText();
  report.slowLatencies = await page.locator('[data-testid="node-slow"] [data-testid="latencies"]').innerText();
  report.slowFocused = await page.locator('[data-testid="node-slow"]').evaluate((n) => n.classList.contains("focus"));
  report.legend = await text(page, "node-legend");
  // The diagnosis says it in words once it has held for a while.
  await page.waitForFunction(
    () => /Bottleneck: slow/.test(document.querySelector('[data-testid="diagnosis"]')?.textContent ?? ""),
    null, { timeout: 60000 });
  report.backpressureDiagnosis = await text(page, "diagnosis");
  await page.screenshot({ path: `${dir}/view-lesson-backpressure.png`, fullPage: true });
  await abort(page);

  // A blocking call in a coroutine: lag, the stage named, the lag chart
  // outlined; then the fix, one click away.
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="lesson-blocking-in-async"]', { timeout: 30000 });
  await page.locator('[data-testid="lesson-blocking-in-async"] [data-testid="lesson-start"]').click();
  await page.waitForSelector('[data-testid="lesson-banner"]', { timeout: 30000 });
  // The card's flag and the event-loop line come from one snapshot: read
  // both at one moment (a later snapshot may be between stalls).
  const lagLine = () => {
    const flagged = document.querySelector('[data-testid="node-fetch"] [data-testid="blocking-loop"]');
    const line = document.querySelector('[data-testid="event-loop"]')?.textContent ?? "";
    return flagged ? line : null;
  };
  report.eventLoop = await (await page.waitForFunction(lagLine, null, { timeout: 60000 })).jsonValue();
  report.lagChartFocused = await page.locator('[data-testid="chart-lag"]').evaluate((c) => c.classList.contains("focus"));
  report.fetchLoopShare = await page.locator('[data-testid="node-fetch"] [data-testid="loop-share"]').innerText();
  await page.waitForFunction(
    () => /Blocking call/.test(document.querySelector('[data-testid="diagnosis"]')?.textContent ?? ""),
    null, { timeout: 60000 });
  report.blockingDiagnosis = await text(page, "diagnosis");
  await page.screenshot({ path: `${dir}/view-lesson-blocking.png`, fullPage: true });
  const blockedUrl = page.url();
  await page.locator('[data-testid="lesson-variant-awaited"]').click();
  await page.waitForFunction((u) => location.href !== u, blockedUrl, { timeout: 30000 });
  // The new job's own page: its name, once its detail has loaded.
  await page.waitForFunction(() => document.querySelector("main h1")?.textContent === "blocking-in-async-awaited", null, { timeout: 30000 });
  await page.waitForSelector('[data-testid="lesson-banner"]', { timeout: 30000 });
  await page.waitForFunction(
    () => /event-loop lag \d/.test(document.querySelector('[data-testid="event-loop"]')?.textContent ?? ""),
    null, { timeout: 60000 });
  report.fixedName = await page.locator("main h1").first().innerText();
  await page.screenshot({ path: `${dir}/view-lesson-blocking-fixed.png`, fullPage: true });
  await abort(page);
  await page.goto(blockedUrl, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="page-job"]', { timeout: 30000 });
  await abort(page);

  // A finished run hides its live controls; an unknown id is "not found".
  await page.waitForFunction(
    () => document.querySelector('[data-testid="job-state"]')?.textContent === "aborted",
    null, { timeout: 60000 });
  report.finishedButtons = await page.locator('[data-testid="drain"], [data-testid="abort"], [data-testid="tune"]').count();
  // The aborted run's leftovers are a paged table.
  await page.waitForSelector('[data-testid="records-leftovers"] [data-testid="record-row"]', { timeout: 30000 });
  report.leftoverRows = await page.locator('[data-testid="records-leftovers"] [data-testid="record-row"]').count();
  report.leftoversBucket = plain(await page.locator('[data-bucket="leftovers"]').innerText());
  // Replay them: a new job runs the pipeline over them, and processes all.
  await page.locator('[data-testid="replay-leftovers"]').click();
  await page.waitForFunction(() => document.querySelector("main h1")?.textContent === "blocking-in-async-replay", null, { timeout: 30000 });
  await page.waitForFunction(
    () => document.querySelector('[data-testid="job-state"]')?.textContent === "completed",
    null, { timeout: 90000 });
  await page.waitForSelector('[data-testid="report-produced"]', { timeout: 30000 });
  report.replayProduced = plain(await text(page, "report-produced"));
  report.replaySunk = plain(await page.locator('[data-bucket="sunk"]').innerText());
  await page.screenshot({ path: `${dir}/view-replay.png`, fullPage: true });

  // Log cleaning: malformed lines are dead letters with their reasons,
  // readable in the browser and downloadable as JSON lines.
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="lesson-log-cleaning"]', { timeout: 30000 });
  await page.locator('[data-testid="lesson-log-cleaning"] [data-testid="lesson-start"]').click();
  await page.waitForSelector('[data-testid="records-dead_letters"] [data-testid="record-row"]', { timeout: 60000 });
  report.deadLetterTotal = plain(await page.locator('[data-testid="records-dead_letters"] [data-testid="records-total"]').innerText());
  report.deadLetterReason = await page.locator('[data-testid="records-dead_letters"] [data-testid="record-row"] td.reason').first().innerText();
  report.deadLetterRange = await page.locator('[data-testid="records-dead_letters"] [data-testid="records-range"]').innerText();
  await page.locator('[data-testid="records-dead_letters"] [data-testid="records-next"]').click();
  await page.waitForFunction(
    () => /^21–/.test(document.querySelector('[data-testid="records-dead_letters"] [data-testid="records-range"]')?.textContent ?? ""),
    null, { timeout: 30000 });
  report.deadLetterNextRange = await page.locator('[data-testid="records-dead_letters"] [data-testid="records-range"]').innerText();
  const [download] = await Promise.all([
    page.waitForEvent("download", { timeout: 30000 }),
    page.locator('[data-testid="records-dead_letters"] [data-testid="records-download"]').click(),
  ]);
  report.downloadName = download.suggestedFilename();
  const fs = await import("node:fs");
  const saved = `${dir}/dead-letters-download.jsonl`;
  await download.saveAs(saved);
  report.downloadLines = fs.readFileSync(saved, "utf8").trim().split("\n").length;
  await page.locator('[data-testid="report"]').screenshot({ path: `${dir}/view-lesson-log-cleaning-report.png` });

  // The bridge: drawn as a badge on the edge between the async fetchers
  // and the thread writer, not as a stage.
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="lesson-the-bridge"]', { timeout: 30000 });
  await page.locator('[data-testid="lesson-the-bridge"] [data-testid="lesson-start"]').click();
  await page.waitForSelector('[data-testid="pipeline"] [data-testid="bridge"]', { timeout: 60000 });
  report.bridgeBadges = await page.locator('[data-testid="pipeline"] [data-testid="bridge"]').count();
  report.bridgeCards = await page.locator('[data-testid="pipeline"] .node.bridge').count();
  report.bridgeText = await page.locator('[data-testid="pipeline"] [data-testid="bridge"]').first().innerText();
  report.pipelineCards = await page.locator('[data-testid="pipeline"] .node').count();
  await page.locator('[data-testid="pipeline"]').screenshot({ path: `${dir}/view-lesson-bridge.png` });
  await abort(page);

  // An unbounded queue: the diagnosis names the memory risk.
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="lesson-unbounded-queue"]', { timeout: 30000 });
  await page.locator('[data-testid="lesson-unbounded-queue"] [data-testid="lesson-start"]').click();
  await page.waitForFunction(
    () => /Memory risk/.test(document.querySelector('[data-testid="diagnosis"]')?.textContent ?? ""),
    null, { timeout: 60000 });
  report.unboundedDiagnosis = await text(page, "diagnosis");
  await page.locator('[data-testid="diagnosis"]').screenshot({ path: `${dir}/view-diagnosis-unbounded.png` });
  await abort(page);

  // CPU work on threads: the stage's own CPU share on its card.
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="lesson-cpu-on-threads"]', { timeout: 30000 });
  await page.locator('[data-testid="lesson-cpu-on-threads"] [data-testid="lesson-start"]').click();
  await page.waitForFunction(
    () => /CPU [1-9][0-9]+%/.test(document.querySelector('[data-testid="node-hash"] [data-testid="cpu"]')?.textContent ?? ""),
    null, { timeout: 60000 });
  report.hashCpu = await page.locator('[data-testid="node-hash"] [data-testid="cpu"]').innerText();
  await page.locator('[data-testid="pipeline"]').screenshot({ path: `${dir}/view-lesson-cpu.png` });
  await abort(page);

  // What the not-found page logs (the browser reports each 404) is its own.
  const before = [...report.errors];
  await page.goto(new URL("jobs/j-no-such-job", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="job-not-found"]', { timeout: 30000 });
  report.notFound = await page.locator('[data-testid="job-not-found"] h1').innerText();
  await page.screenshot({ path: `${dir}/view-job-not-found.png` });
  report.notFoundLog = report.errors.slice(before.length);
  report.errors = before;
} catch (err) {
  report.failure = String(err?.stack || err);
  try {
    const page = browser.contexts()[0]?.pages()[0];
    if (page) report.bodyAtFailure = (await page.locator("main").innerText()).slice(0, 800);
  } catch {}
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
