// Every live knob from the job page: a thread stage's workers (from the
// keyboard) and rate limit, an async stage's concurrency, the sink's batch
// size; each change shows on the node cards or as a marker on the charts.
// An unknown job gets a readable error, not a blank page.
//
// usage: node tune.mjs <base-url> <artifacts-dir>
import { launch, watchErrors, text } from "./driver.mjs";

const [base, dir] = process.argv.slice(2);
const report = {};
const browser = await launch();
const nodeText = (page, node, testid) => page.waitForFunction(
  ([n, t]) => document.querySelector(`[data-testid="node-${n}"] [data-testid="${t}"]`)?.textContent,
  [node, testid], { timeout: 30000 });
const waitNode = (page, node, testid, want) => page.waitForFunction(
  ([n, t, w]) => document.querySelector(`[data-testid="node-${n}"] [data-testid="${t}"]`)?.textContent === w,
  [node, testid, want], { timeout: 30000 });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  report.errors = watchErrors(page);
  const spec = {
    name: "tune-knobs",
    source: { kind: "synthetic", count: 200000, rate: 2000, payload: "log_line" },
    stages: [
      { name: "parse", runtime: "thread", workers: 2, op: { kind: "parse_json" } },
      { name: "fetch", runtime: "async", workers: 32, concurrency: 32,
        op: { kind: "sleep", latency: { dist: "uniform", min_ms: 1, max_ms: 3 } } },
    ],
    // Relative: the server keeps it in its files root (a path outside is refused).
    sink: { kind: "sqlite", path: "tune-sink.db", batch: { size: 500, linger_ms: 200 } },
  };
  const created = await page.request.post(new URL("api/v1/jobs", base).href, { data: spec });
  const job = (await created.json()).id;
  report.created = created.status();
  await page.goto(new URL(`jobs/${job}`, base).href, { waitUntil: "load" });
  await page.waitForFunction(
    () => document.querySelector('[data-testid="job-state"]')?.textContent === "running", null, { timeout: 30000 });
  await nodeText(page, "fetch", "concurrency");
  report.concurrencyBefore = await text(page, "concurrency");

  // Workers from the keyboard: pick the stage, Tab to the field, Enter.
  await page.locator('[data-testid="tune-stage"]').selectOption("parse");
  await page.locator('[data-testid="tune-stage"]').focus();
  await page.keyboard.press("Tab");
  report.focusedAfterStage = await page.evaluate(() => document.activeElement?.dataset.testid);
  report.workersPlaceholder = await page.locator('[data-testid="tune-workers"]').getAttribute("placeholder");
  await page.keyboard.type("3");
  await page.keyboard.press("Enter");
  await waitNode(page, "parse", "workers", "3");
  report.parseWorkers = 3;

  // Rate limit on the thread stage.
  await page.locator('[data-testid="tune-workers"]').fill("");
  await page.locator('[data-testid="tune-rate"]').fill("500");
  await page.locator('[data-testid="tune-apply"]').click();
  await waitNode(page, "parse", "rate-limit", "500/s");
  report.parseRate = "500/s";

  // Concurrency of the async stage.
  await page.locator('[data-testid="tune-stage"]').selectOption("fetch");
  await page.locator('[data-testid="tune-concurrency"]').fill("8");
  await page.locator('[data-testid="tune-apply"]').click();
  await waitNode(page, "fetch", "concurrency", "8");
  report.fetchConcurrency = "8";

  // The sink's batch size: the change is marked on the charts.
  await page.locator('[data-testid="tune-stage"]').selectOption("sink");
  report.batchPlaceholder = await page.locator('[data-testid="tune-batch"]').getAttribute("placeholder");
  await page.locator('[data-testid="tune-batch"]').fill("100");
  await page.locator('[data-testid="tune-apply"]').click();
  await page.waitForFunction(
    () => [...document.querySelectorAll('[data-testid="chart-throughput"] [data-testid="marker"] title')]
      .some((t) => t.textContent === "sink batch_size 500 → 100"),
    null, { timeout: 30000 });
  report.markers = await page.locator('[data-testid="chart-throughput"] [data-testid="marker"] title').allTextContents();
  report.tuneMessage = await text(page, "tune-message");
  // A bad value is refused with the server's reason, beside the panel.
  await page.locator('[data-testid="tune-batch"]').fill("0");
  await page.locator('[data-testid="tune-apply"]').click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="tune-message"]')?.textContent !== "applied", null, { timeout: 30000 });
  report.badTune = await text(page, "tune-message");
  await page.screenshot({ path: `${dir}/view-job-tuned.png`, fullPage: true });
  await page.request.post(new URL(`api/v1/jobs/${job}/stop`, base).href, { data: { mode: "abort" } });

  // An unknown job: a "not found" page.
  await page.goto(new URL("jobs/j-does-not-exist", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="job-not-found"]', { timeout: 30000 });
  report.unknownJob = await page.locator('[data-testid="job-not-found"]').innerText();
  // The rest of the page still works: the live link connects.
  await page.waitForFunction(
    () => document.querySelector('[data-testid="conn-state"]')?.textContent === "connected", null, { timeout: 30000 });
  report.connAfterUnknown = await text(page, "conn-state");
  // The refused tune (422) and the unknown job (404) are logged by the
  // browser as failed loads: those answers are the feature working.
  report.errors = report.errors.filter((e) => !/status of (422|400|404)/.test(e));
} catch (err) {
  report.failure = String(err?.stack || err);
  try {
    const page = browser.contexts()[0]?.pages()[0];
    if (page) report.bodyAtFailure = (await page.locator("main").innerText()).slice(0, 1200);
  } catch {}
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
