// Starts a job from the template gallery, watches it live, tunes its
// workers, drains it and reads the accounting line; screenshots each view.
//
// usage: node jobs.mjs <base-url> <artifacts-dir>
import { launch, watchErrors, text } from "./driver.mjs";

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
  // Tune the workers and see the running count change (down to two, so
  // the job is still running when we drain it).
  await page.locator('[data-testid="tune-stage"]').selectOption("io");
  await page.locator('[data-testid="tune-workers"]').fill("2");
  await page.locator('[data-testid="tune-apply"]').click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="node-io"] [data-testid="workers"]')?.textContent === "2",
    null, { timeout: 30000 });
  report.workersAfterTune = 2;
  // The charts draw the last minutes.
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="chart-throughput"] polyline')?.getAttribute("points") ?? "").split(" ").length >= 4,
    null, { timeout: 30000 });
  report.chartPoints = (await page.locator('[data-testid="chart-throughput"] polyline').getAttribute("points")).split(" ").length;
  await page.screenshot({ path: `${dir}/view-job.png`, fullPage: true });
  // Drain, and read the final accounting.
  await page.locator('[data-testid="drain"]').click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="job-state"]')?.textContent === "stopped",
    null, { timeout: 60000 });
  report.accounting = await text(page, "accounting");
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
    () => /queue [0-9]{3,}/.test(document.querySelector('[data-testid="node-slow"] [data-testid="depth"]')?.textContent ?? ""),
    null, { timeout: 30000 });
  page.once("dialog", async (d) => {
    report.confirmText = d.message();
    await d.accept();
  });
  await page.locator('[data-testid="abort"]').click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="job-state"]')?.textContent === "aborted",
    null, { timeout: 60000 });
  report.abortedAccounting = await text(page, "accounting");
  await page.screenshot({ path: `${dir}/view-job-aborted.png`, fullPage: true });

  // Both runs are in the history, and reopen with their report.
  await page.getByRole("navigation").getByRole("link", { name: "History", exact: true }).click();
  await page.waitForSelector('[data-testid="run-row"]', { timeout: 30000 });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="run-row"]').length >= 2, null, { timeout: 30000 });
  report.historyRows = await page.locator('[data-testid="run-row"]').count();
  await page.screenshot({ path: `${dir}/view-history.png`, fullPage: true });

  // On a narrow screen nothing spills sideways out of the page.
  await page.setViewportSize({ width: 390, height: 800 });
  report.narrowOverflow = {};
  for (const path of ["jobs", "new", "history", report.jobUrl.slice(1)]) {
    await page.goto(new URL(path, base).href, { waitUntil: "load" });
    await page.waitForSelector("main section", { timeout: 30000 });
    await page.waitForTimeout(300);
    report.narrowOverflow[path] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  }
  await page.screenshot({ path: `${dir}/view-job-narrow.png`, fullPage: true });
  // A reopened run draws its stored history.
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="chart-throughput"] polyline')?.getAttribute("points") ?? "").split(" ").length >= 3,
    null, { timeout: 30000 });
  report.reopenedChartPoints = (await page.locator('[data-testid="chart-throughput"] polyline').getAttribute("points")).split(" ").length;
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
