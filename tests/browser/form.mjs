// The spec form: the server's problems appear beside the field they concern
// as one types; fixing them lets the job start; a template loads into the
// form; every control has a label and the form works from the keyboard.
//
// usage: node form.mjs <base-url> <artifacts-dir>
import { launch, watchErrors } from "./driver.mjs";

const [base, dir] = process.argv.slice(2);
const report = {};
const browser = await launch();
const field = (path) => `[data-testid="field-${path}"]`;
const errorAt = async (page, path) => {
  await page.waitForFunction(
    (sel) => (document.querySelector(sel)?.textContent ?? "").trim().length > 0,
    `${field(path)} [data-testid="field-error"]`, { timeout: 30000 });
  return (await page.locator(`${field(path)} [data-testid="field-error"]`).innerText()).trim();
};
const verdict = (page, text) => page.waitForFunction(
  (t) => document.querySelector('[data-testid="form-verdict"]')?.textContent === t, text, { timeout: 30000 });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  report.errors = watchErrors(page);
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="spec-form"]', { timeout: 30000 });
  await verdict(page, "valid");
  report.starterValid = true;

  // Problems land beside their fields.
  await page.locator(`${field("stages[0].workers")} input`).fill("0");
  report.workersError = await errorAt(page, "stages[0].workers");
  report.workersInvalid = await page.locator(`${field("stages[0].workers")} input`).getAttribute("aria-invalid");
  await page.locator('[data-testid="add-stage"]').click();
  await page.waitForSelector(field("stages[1].name"), { timeout: 30000 });
  await page.locator(`${field("stages[1].name")} input`).fill("stage1");
  report.duplicateError = await errorAt(page, "stages[1].name");
  await page.locator(`${field("sink.kind")} select`).selectOption("sqlite");
  await page.waitForSelector(field("sink.path"), { timeout: 30000 });
  await page.locator(`${field("sink.path")} input`).fill("");
  report.sinkPathError = await errorAt(page, "sink.path");
  await page.locator(`${field("sink.batch.size")} input`).fill("0");
  report.batchError = await errorAt(page, "sink.batch.size");
  report.shownErrors = await page.locator('[data-testid="field-error"]').evaluateAll(
    (es) => es.filter((e) => e.textContent.trim()).map((e) => e.dataset.path));
  await page.screenshot({ path: `${dir}/view-form-errors.png`, fullPage: true });

  // A stage switched to async gains a concurrency field.
  report.concurrencyBefore = await page.locator(field("stages[1].concurrency")).count();
  await page.locator(`${field("stages[1].runtime")} select`).selectOption("async");
  await page.waitForSelector(field("stages[1].concurrency"), { timeout: 30000 });
  report.concurrencyAfter = await page.locator(field("stages[1].concurrency")).count();
  report.focusAfterReshape = await page.evaluate(() => document.activeElement?.id);

  // Fix everything: the verdict turns valid and no field shows a problem.
  await page.locator(`${field("stages[0].workers")} input`).fill("2");
  await page.locator(`${field("stages[1].name")} input`).fill("enrich");
  await page.locator(`${field("stages[1].concurrency")} input`).fill("16");
  // Relative: the server keeps it in its files root (a path outside is refused).
  await page.locator(`${field("sink.path")} input`).fill("form-sink.db");
  await page.locator(`${field("sink.batch.size")} input`).fill("100");
  await page.locator(`${field("source.count")} input`).fill("2000");
  await verdict(page, "valid");
  report.errorsAfterFix = await page.locator('[data-testid="field-error"]').evaluateAll(
    (es) => es.filter((e) => e.textContent.trim()).length);
  // The same spec as command lines, for scripts (the test runs the curl).
  await page.locator('[data-testid="export"] summary').click();
  report.exportCurl = await page.locator('[data-testid="export-curl"]').innerText();
  report.exportCli = await page.locator('[data-testid="export-cli"]').innerText();
  report.exportToml = await page.locator('[data-testid="export-toml"]').innerText();
  report.workersInputType = await page.locator(`${field("stages[0].workers")} input`).getAttribute("type");

  // Every control is labelled.
  report.unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("main input, main select, main textarea")]
      .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label"))
      .map((el) => el.outerHTML.slice(0, 80)));
  // Keyboard: Tab walks the form in order, and Enter in a field starts it.
  await page.locator(`${field("name")} input`).focus();
  await page.keyboard.press("Tab");
  report.tabFromName = await page.evaluate(() => document.activeElement?.id);
  await page.locator(`${field("name")} input`).focus();
  await page.keyboard.press("End");
  await page.keyboard.type("-kbd");
  await page.keyboard.press("Enter");
  await page.waitForSelector('[data-testid="page-job"]', { timeout: 30000 });
  report.started = new URL(page.url()).pathname;
  await page.waitForFunction(
    () => ["completed", "stopped"].includes(document.querySelector('[data-testid="job-state"]')?.textContent),
    null, { timeout: 60000 });
  report.jobTitle = (await page.locator("h1").innerText()).trim();
  // Stages as cards, bridges as badges on the edges, in the page's order.
  report.nodes = await page.locator('[data-testid="pipeline"] .node, [data-testid="pipeline"] [data-testid="bridge"]')
    .evaluateAll((ns) => ns.map((n) => n.dataset.name || n.querySelector(".node-name").firstChild.textContent.trim()));
  report.finalState = (await page.locator('[data-testid="job-state"]').innerText()).trim();

  // A template loads into the form, to be changed before starting.
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="template-log-clean-threads"] [data-testid="customize"]', { timeout: 30000 });
  await page.locator('[data-testid="template-log-clean-threads"] [data-testid="customize"]').click();
  await page.waitForFunction(
    () => document.querySelector('#f-name')?.value === "log-clean-threads", null, { timeout: 30000 });
  report.customizedStages = await page.locator('.spec-form fieldset.stage').count();
  report.customizedOp = await page.locator(`${field("stages[0].op.kind")} select`).inputValue();
  await verdict(page, "valid");
  report.customizedValid = true;
  // The browser logs each 422 of an invalid spec as a failed load: that
  // answer is the feature working. Anything else is a bug.
  report.errors = report.errors.filter((e) => !/status of 422/.test(e));
} catch (err) {
  report.failure = String(err?.stack || err);
  try {
    const page = browser.contexts()[0]?.pages()[0];
    if (page) report.formAtFailure = (await page.locator("main").innerText()).slice(0, 1500);
  } catch {}
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
