// The Workers view and a broker stage on a job page, as a user checks a
// scaled-out run: two worker processes listed with what they run, and the
// job's broker edge with its stream figures and where its workers are.
//
// usage: node workers.mjs <base-url> <job-id> <artifacts-dir>
import { launch, watchErrors, text } from "./driver.mjs";

const [base, job, dir] = process.argv.slice(2);
const report = {};
const browser = await launch();
const sel = (id) => `[data-testid="${id}"]`;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  report.errors = watchErrors(page);
  await page.goto(new URL("workers", base).href, { waitUntil: "load" });
  // Both workers, each running its share of the job.
  await page.waitForFunction(
    (s) => [...document.querySelectorAll(s)].filter((r) => r.querySelector('[data-testid="worker-runs"]').textContent.includes("×")).length >= 2,
    sel("worker-row"),
    { timeout: 60000 },
  );
  report.rows = await page.locator(sel("worker-row")).count();
  report.names = await page.locator(sel("worker-row")).evaluateAll((rs) => rs.map((r) => r.dataset.name).sort());
  report.census = await text(page, "worker-census");
  report.runs = await page.locator(sel("worker-runs")).first().textContent();
  await page.screenshot({ path: `${dir}/view-workers.png`, fullPage: true });
  // The job page: the broker stage's edge, and which workers consume it.
  await page.goto(new URL(`jobs/${job}`, base).href, { waitUntil: "load" });
  await page.waitForSelector(sel("edge"), { timeout: 60000 });
  await page.waitForFunction((s) => document.querySelector(s).textContent.includes("×"), sel("edge-workers"), { timeout: 60000 });
  report.edgeWorkers = await text(page, "edge-workers");
  report.edgeDepth = await text(page, "edge-depth");
  // Messages and items apart: the batching the edge does.
  await page.waitForFunction((s) => document.querySelector(s) !== null, sel("edge-per-message"), { timeout: 60000 });
  report.edgeBatching = await text(page, "edge-batching");
  report.limitsSplit = await text(page, "limits-split");
  report.rateLimit = await text(page, "rate-limit");
  await page.locator(sel("edge")).first().scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${dir}/view-job-broker-edge.png`, fullPage: false });
  // A worker leaving shows without a reload (the WebSocket's frame).
  report.state = "done";
} catch (e) {
  report.failure = String(e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
