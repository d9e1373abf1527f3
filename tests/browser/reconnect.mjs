// The dashboard survives a server restart: it shows "reconnecting", backs
// off, and reconnects to the new process on the same port.
//
// usage: node reconnect.mjs <base-url>
// Protocol with the Rust test: prints "STEP connected" (test kills the
// server), "STEP reconnecting" (test restarts it and writes a line), then
// one JSON report.
import { createInterface } from "node:readline";
import { launch, watchErrors, text } from "./driver.mjs";

const [base] = process.argv.slice(2);
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
  console.log("STEP connected");

  await page.waitForFunction(() => (document.querySelector('[data-testid="conn-state"]')?.textContent ?? "").startsWith("reconnecting"), null, { timeout: 30000 });
  report.whileDown = await text(page, "conn-state");
  console.log("STEP reconnecting");
  await nextLine();

  await page.waitForFunction(() => document.querySelector('[data-testid="conn-state"]')?.textContent === "connected", null, { timeout: 60000 });
  report.afterRestart = await text(page, "conn-state");
  report.uptimeAfterRestart = await text(page, "uptime");
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
