// The interactive API docs (Swagger UI) work under the server's
// Content-Security-Policy: the page renders the operations, and the
// console shows no CSP violation (or any other error).
//
// usage: node apidocs.mjs <base-url> <screenshot.png>
import { launch, watchErrors } from "./driver.mjs";

const [base, screenshot] = process.argv.slice(2);
const report = { errors: [] };
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  report.errors = watchErrors(page);
  const resp = await page.goto(new URL("/api/docs/", base).href, { waitUntil: "load" });
  report.csp = resp.headers()["content-security-policy"] ?? null;
  await page.waitForSelector(".swagger-ui .opblock", { timeout: 30000 });
  report.operations = await page.locator(".swagger-ui .opblock").count();
  report.title = await page.locator(".swagger-ui .info .title").first().innerText();
  await page.screenshot({ path: screenshot, fullPage: false });
} catch (err) {
  report.failure = String(err?.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
