// A server that asks for API tokens: without one the dashboard says so in
// its connection badge (not an endless "reconnecting"); once a token is
// saved in Settings, the live link connects and jobs show.
//
// usage: node token.mjs <base-url> <token> <artifacts-dir>
import { launch, watchErrors, text } from "./driver.mjs";

const [base, token, dir] = process.argv.slice(2);
const report = {};
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  report.errors = watchErrors(page);
  await page.goto(new URL("jobs", base).href, { waitUntil: "load" });
  await page.waitForFunction(
    () => document.querySelector('[data-testid="conn-state"]')?.textContent === "API token needed", null, { timeout: 30000 });
  report.withoutToken = await text(page, "conn-state");
  await page.screenshot({ path: `${dir}/view-token-needed.png`, fullPage: true });
  await page.locator('[data-testid="set-token"]').click();
  await page.waitForSelector('[data-testid="token"]', { timeout: 30000 });
  await page.locator('[data-testid="token"]').fill(token);
  await page.locator('[data-testid="save-token"]').click();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="conn-state"]')?.textContent === "connected", null, { timeout: 30000 });
  report.withToken = await text(page, "conn-state");
  // REST and the live job list both work with the token.
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="template-cpu-on-threads"]', { timeout: 30000 });
  await page.locator('[data-testid="template-cpu-on-threads"] [data-testid="start"]').click();
  await page.waitForSelector('[data-testid="page-job"]', { timeout: 30000 });
  await page.waitForFunction(
    () => ["running", "completed"].includes(document.querySelector('[data-testid="job-state"]')?.textContent), null, { timeout: 30000 });
  report.jobState = await text(page, "job-state");
  // Refused handshakes and the 401 of the link's probe are the feature
  // working; so is a probe cut short by the page navigating away.
  report.errors = report.errors.filter(
    (e) => !/WebSocket|status of 401|api\/v1\/jobs\?limit=1.*ERR_ABORTED/.test(e));
} catch (err) {
  report.failure = String(err?.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
