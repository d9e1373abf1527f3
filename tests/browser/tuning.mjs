// The Tuning view end to end: start a sweep from a template, watch its
// points arrive with the knee marked, open a point's job, reopen the sweep
// from its address, compare two sweeps, and run a soak.
//
// usage: node tuning.mjs <base-url> <artifacts-dir>
import { launch, watchErrors, text } from "./driver.mjs";

const [base, dir] = process.argv.slice(2);
const report = {};
const browser = await launch();
const sel = (id) => `[data-testid="${id}"]`;
async function startSweep(page, values) {
  await page.goto(new URL("tuning", base).href, { waitUntil: "load" });
  // The rate-limit template: a token bucket in front of 8 calls of 20 ms
  // in flight, so throughput is min(limit, 400/s) whatever the machine's
  // load, and the knee sits at 400.
  await page.waitForSelector(`${sel("lab-template")} option[value="rate-limit"]`, { state: "attached", timeout: 30000 });
  await page.selectOption(sel("lab-template"), "rate-limit");
  await page.waitForSelector(`${sel("lab-knob")} option[value="stages[throttle].rate_limit"]`, { state: "attached", timeout: 30000 });
  await page.selectOption(sel("lab-knob"), "stages[throttle].rate_limit");
  await page.fill(sel("lab-values"), values);
  await page.fill(sel("lab-warmup"), "300ms");
  await page.fill(sel("lab-measure"), "1s");
  await page.click(sel("lab-start"));
  await page.waitForSelector(sel("sweep-page"), { timeout: 30000 });
  await page.waitForURL(/\/tuning\/sw/, { timeout: 30000 });
  return new URL(page.url()).pathname;
}
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  report.errors = watchErrors(page);
  report.sweepUrl = await startSweep(page, "100,200,400,800");
  // Points arrive one run at a time: the chart's count is sampled as it
  // grows, until the sweep is done.
  report.pointsSeen = [];
  for (let i = 0; i < 600; i++) {
    const n = await page.locator(sel("tp-chart")).getAttribute("data-points").catch(() => null);
    if (n !== null && report.pointsSeen[report.pointsSeen.length - 1] !== Number(n)) report.pointsSeen.push(Number(n));
    const state = await text(page, "sweep-state").catch(() => "");
    if (state === "done") break;
    await page.waitForTimeout(100);
  }
  // The last page read may have landed between the two looks above.
  const last = Number(await page.locator(sel("tp-chart")).getAttribute("data-points"));
  if (report.pointsSeen[report.pointsSeen.length - 1] !== last) report.pointsSeen.push(last);
  report.state = await text(page, "sweep-state");
  report.rows = await page.locator(sel("point-row")).count();
  report.kneeMarks = await page.locator(sel("knee-mark")).count();
  report.kneeLabel = await text(page, "knee-label");
  report.kneeRow = await page.locator(`${sel("point-row")}.knee`).getAttribute("data-value");
  report.verdict = await text(page, "sweep-verdict");
  report.runDots = await page.locator(`${sel("tp-chart")} ${sel("run-dot")}`).count();
  await page.screenshot({ path: `${dir}/view-tuning-sweep.png`, fullPage: true });
  // A point opens the job that measured it.
  await page.locator(sel("point-job")).first().click();
  await page.waitForSelector('[data-testid="page-job"]', { timeout: 30000 });
  report.pointJob = new URL(page.url()).pathname;
  // Reopened from its address: the same points.
  await page.goto(new URL(report.sweepUrl.slice(1), base).href, { waitUntil: "load" });
  await page.waitForSelector(sel("point-row"), { timeout: 30000 });
  report.reopenedRows = await page.locator(sel("point-row")).count();
  // In Chinese, the verdict too.
  await page.evaluate(() => localStorage.setItem("queuelab.lang", "zh"));
  await page.reload({ waitUntil: "load" });
  await page.waitForSelector(sel("sweep-verdict"), { timeout: 30000 });
  report.verdictZh = await text(page, "sweep-verdict");
  await page.screenshot({ path: `${dir}/view-tuning-sweep-zh.png`, fullPage: true });
  await page.evaluate(() => localStorage.setItem("queuelab.lang", "en"));
  // A second sweep, then the two compared.
  report.secondUrl = await startSweep(page, "100,200");
  await page.waitForFunction(() => document.querySelector('[data-testid="sweep-state"]')?.textContent === "done", null, { timeout: 60000 });
  await page.goto(new URL("tuning", base).href, { waitUntil: "load" });
  await page.waitForSelector(sel("sweep-row"), { timeout: 30000 });
  report.listed = await page.locator(sel("sweep-row")).count();
  const picks = page.locator(sel("sweep-pick"));
  await picks.nth(0).check();
  await picks.nth(1).check();
  await page.click(sel("compare-sweeps"));
  await page.waitForSelector(sel("cmp-tp-chart"), { timeout: 30000 });
  report.compareLines = await page.locator(`${sel("cmp-tp-chart")} polyline`).count();
  await page.screenshot({ path: `${dir}/view-tuning-compare.png`, fullPage: true });
  // A soak, from the Soak tab.
  await page.goto(new URL("tuning", base).href, { waitUntil: "load" });
  await page.click(sel("tab-soak"));
  await page.waitForSelector(`${sel("lab-template")} option[value="thread-io-pool"]`, { state: "attached", timeout: 30000 });
  await page.selectOption(sel("lab-template"), "thread-io-pool");
  await page.fill(sel("lab-duration"), "5s");
  await page.fill(sel("lab-interval"), "1s");
  await page.fill(sel("lab-warmup"), "1s");
  // The template's spec is fetched for the form before it can start.
  await page.waitForTimeout(500);
  await page.click(sel("lab-start"));
  await page.waitForSelector(sel("sweep-page"), { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector('[data-testid="sweep-state"]')?.textContent === "done", null, { timeout: 60000 });
  report.trendRows = await page.locator(sel("trend-row")).count();
  report.trendVerdicts = await page.locator(sel("trend-verdict")).allInnerTexts();
  report.soakVerdict = await text(page, "soak-verdict");
  report.soakCharts = await page.locator('[data-testid^="soak-"].chart').count();
  await page.screenshot({ path: `${dir}/view-tuning-soak.png`, fullPage: true });
} catch (err) {
  report.failure = String(err?.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
