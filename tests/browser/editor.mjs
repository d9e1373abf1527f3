// The spec editor: the server's validation shows every problem with its
// field path; a corrected spec starts.
//
// usage: node editor.mjs <base-url> <artifacts-dir>
import { launch, watchErrors } from "./driver.mjs";

const [base, dir] = process.argv.slice(2);
const report = {};
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  report.errors = watchErrors(page);
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.locator('[data-testid="editor"] summary').click();
  const bad = 'name = "bad name"\nsource = { kind = "synthetic" }\n[[stages]]\nname = "w"\nworkers = 0\nop = { kind = "spin", micros = 1 }\n';
  await page.locator('[data-testid="spec"]').fill(bad);
  await page.locator('[data-testid="validate"]').click();
  await page.waitForSelector('[data-testid="problem"]', { timeout: 30000 });
  report.paths = await page.locator('[data-testid="problem-path"]').allInnerTexts();
  await page.screenshot({ path: `${dir}/view-new-validation.png`, fullPage: true });
  // A TOML syntax error keeps its line and a caret under the mistake.
  await page.locator('[data-testid="spec"]').fill('name = "x"\nsource = { kind = "synthetic", count = 5 }\n[[stages]\nname = "w"\n');
  await page.locator('[data-testid="validate"]').click();
  await page.waitForSelector('[data-testid="problem-caret"]', { timeout: 30000 });
  report.caret = await page.locator('[data-testid="problem-caret"]').first().innerText();
  await page.locator('[data-testid="editor"]').screenshot({ path: `${dir}/view-new-toml-caret.png` });
  // JSON is read as JSON.
  await page.locator('[data-testid="spec"]').fill('{"name": "as-json", "source": {"kind": "synthetic", "count": 5}, "stages": [{"name": "w", "workers": 0, "op": {"kind": "spin", "micros": 1}}]}');
  await page.locator('[data-testid="validate"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="problem-path"]')?.textContent === "stages[0].workers", null, { timeout: 30000 });
  report.jsonPaths = await page.locator('[data-testid="problem-path"]').allInnerTexts();
  const good = 'name = "from-editor"\nsource = { kind = "synthetic", count = 20 }\n[[stages]]\nname = "w"\nop = { kind = "spin", micros = 1 }\n';
  await page.locator('[data-testid="spec"]').fill(good);
  await page.locator('[data-testid="validate"]').click();
  await page.waitForFunction(() => document.querySelector('[data-testid="verdict"]')?.textContent === "valid", null, { timeout: 30000 });
  report.problemsAfterFix = await page.locator('[data-testid="problem"]').count();
  await page.locator('[data-testid="start-spec"]').click();
  await page.waitForSelector('[data-testid="page-job"]', { timeout: 30000 });
  report.started = new URL(page.url()).pathname;
  // The browser logs the 422 of an invalid spec as a failed load: that
  // answer is the feature working. Anything else is a bug.
  report.errors = report.errors.filter((e) => !/status of 422/.test(e));
} catch (err) {
  report.failure = String(err?.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
