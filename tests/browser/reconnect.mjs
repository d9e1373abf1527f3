// The dashboard survives a server restart: it shows "reconnecting", backs
// off, and reconnects to the new process on the same port.
//
// A run that finished before the restart reopens from the store: its
// state, report and charts, with no live controls.
//
// usage: node reconnect.mjs <base-url> <artifacts-dir>
// Protocol with the Rust test: prints "STEP connected" (test kills the
// server), "STEP reconnecting" (test restarts it and writes a line), then
// one JSON report.
import { createInterface } from "node:readline";
import { launch, watchErrors, text, plain } from "./driver.mjs";

const [base, dir] = process.argv.slice(2);
const stdin = createInterface({ input: process.stdin });
const nextLine = () => new Promise((resolve) => stdin.once("line", resolve));
const connState = () => document.querySelector('[data-testid="conn-state"]')?.textContent ?? "";

const report = {};
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = watchErrors(page);
  await page.goto(base, { waitUntil: "load" });
  await page.waitForFunction(() => document.querySelector('[data-testid="conn-state"]')?.textContent === "connected", null, { timeout: 30000 });
  // A run that finishes before the restart.
  const started = await page.request.post(new URL("api/v1/jobs", base).href, {
    data: { template: "thread-io-pool", overrides: { name: "before-restart", source: { count: 2000 } } },
  });
  const id = (await started.json()).id;
  for (let i = 0; i < 600; i++) {
    const d = await (await page.request.get(new URL(`api/v1/jobs/${id}`, base).href)).json();
    if (d.report) break;
    await page.waitForTimeout(100);
  }
  // The server saves progress to its store once a second: give it a few
  // rounds to save the finished run before the test kills it.
  await page.waitForTimeout(3000);
  console.log("STEP connected");

  await page.waitForFunction(() => (document.querySelector('[data-testid="conn-state"]')?.textContent ?? "").startsWith("reconnecting"), null, { timeout: 30000 });
  report.whileDown = await text(page, "conn-state");
  console.log("STEP reconnecting");
  await nextLine();

  await page.waitForFunction(() => document.querySelector('[data-testid="conn-state"]')?.textContent === "connected", null, { timeout: 60000 });
  report.afterRestart = await text(page, "conn-state");
  report.uptimeAfterRestart = await text(page, "uptime");
  // Reopened from the store by the new process.
  await page.goto(new URL(`jobs/${id}`, base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="report"]', { timeout: 30000 });
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="chart-throughput"] polyline')?.getAttribute("points") ?? "").split(" ").length >= 2,
    null, { timeout: 30000 });
  report.storedTitle = await page.locator("main h1").first().innerText();
  report.storedState = await text(page, "job-state");
  report.storedProduced = plain(await text(page, "report-produced"));
  report.storedControls = await page.locator('[data-testid="drain"], [data-testid="abort"], [data-testid="tune"]').count();
  report.storedNodes = await page.locator('[data-testid="pipeline"] .node').count();
  await page.screenshot({ path: `${dir}/view-job-after-restart.png`, fullPage: true });
  // While the server is down the browser itself logs failed WebSocket
  // handshakes and refused or reset connections; those are expected.
  // Anything else is a bug.
  const expected = (e) =>
    /WebSocket connection to .* failed/.test(e) ||
    /Failed to load resource: net::ERR_CONNECTION_(REFUSED|RESET)/.test(e) ||
    /^requestfailed: .* net::ERR_CONNECTION_(REFUSED|RESET)$/.test(e);
  report.errors = errors.filter((e) => !expected(e));
  report.wsFailures = errors.length - report.errors.length;
} catch (err) {
  report.failure = String(err?.stack || err);
} finally {
  await browser.close();
  stdin.close();
}
console.log(JSON.stringify(report));
