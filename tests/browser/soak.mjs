// Soak measurement of a job's page (not a test: it prints figures). A job
// samples at 20 Hz (the hub forwards about 10 snapshots a second), so the
// charts' window of 2400 samples, ten minutes at the default 4 Hz, fills in
// about four minutes. Every 15 s it reads
// Chromium's own counters (JS heap, DOM nodes, script time) so one can see
// whether memory levels off once the window is full and how much of the
// main thread the live page takes.
//
// usage: node soak.mjs <base-url> <minutes>
import { launch } from "./driver.mjs";

const [base, minutesArg] = process.argv.slice(2);
const minutes = Number(minutesArg || 4);
const report = { samples: [] };
const browser = await launch(["--js-flags=--expose-gc"]);
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const metrics = async () => {
    const { metrics } = await cdp.send("Performance.getMetrics");
    return Object.fromEntries(metrics.map((m) => [m.name, m.value]));
  };
  const spec = {
    name: "soak",
    sample_hz: 20,
    source: { kind: "synthetic", duration_ms: (minutes * 60 + 60) * 1000, rate: 2000 },
    stages: [
      { name: "io", runtime: "thread", workers: 4, op: { kind: "sleep", latency: { dist: "uniform", min_ms: 1, max_ms: 3 } } },
      { name: "fan", runtime: "async", workers: 64, concurrency: 64, op: { kind: "sleep", latency: { dist: "uniform", min_ms: 1, max_ms: 5 } } },
    ],
  };
  const created = await page.request.post(new URL("api/v1/jobs", base).href, { data: spec });
  const job = (await created.json()).id;
  await page.goto(new URL(`jobs/${job}`, base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="chart-throughput"] polyline', { timeout: 30000 });
  let last = await metrics();
  const t0 = Date.now();
  while (Date.now() - t0 < minutes * 60_000) {
    await page.waitForTimeout(15_000);
    await page.evaluate(() => window.gc && window.gc());
    const m = await metrics();
    const wall = m.Timestamp - last.Timestamp;
    report.samples.push({
      at_s: Math.round((Date.now() - t0) / 1000),
      heap_mb: +(m.JSHeapUsedSize / 1048576).toFixed(1),
      dom_nodes: m.Nodes,
      script_share: +((m.ScriptDuration - last.ScriptDuration) / wall).toFixed(3),
      task_share: +((m.TaskDuration - last.TaskDuration) / wall).toFixed(3),
      kept: Number(await page.locator(".charts").first().getAttribute("data-history")),
      drawn: (await page.locator('[data-testid="chart-throughput"] polyline').first().getAttribute("points")).split(" ").length,
    });
    last = m;
  }
  await page.request.post(new URL(`api/v1/jobs/${job}/stop`, base).href, { data: { mode: "abort" } });
} catch (err) {
  report.failure = String(err?.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
