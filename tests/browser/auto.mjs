// A stage whose workers the engine chooses (`workers = "auto"`): its card
// shows the limit the controller chose, its range and why; the limit chart
// draws it with the controller's changes marked; the timeline lists them.
// From the tune panel, "Pin here" pins it, "Back to auto" lets the engine
// choose again, and a manual tune pins it too. The `auto-knee` template's
// async stage shows its concurrency the same way. The form offers "auto"
// beside the number, and switching back to fixed gives the number back.
//
// usage: node auto.mjs <base-url> <artifacts-dir>
import { launch, watchErrors, text } from "./driver.mjs";

const [base, dir] = process.argv.slice(2);
const report = {};
const browser = await launch();
const sel = (testid) => `[data-testid="${testid}"]`;
const present = (page, testid, timeout = 60000) =>
  page.waitForSelector(sel(testid), { timeout });
const gone = (page, testid, timeout = 60000) =>
  page.waitForSelector(sel(testid), { state: "detached", timeout });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  report.errors = watchErrors(page);
  // CPU work on threads: past the machine's cores more workers only wait
  // for a core, so the controller climbs, then backs off at the knee.
  const spec = {
    name: "auto-workers",
    // As fast as it goes, for at most a minute and a half (aborted once
    // seen).
    source: { kind: "synthetic", duration_ms: 90000, payload: "counter" },
    stages: [{ name: "hash", runtime: "thread", workers: "auto", op: { kind: "spin", micros: 200 } }],
    sink: { kind: "null" },
  };
  const created = await page.request.post(new URL("api/v1/jobs", base).href, { data: spec });
  report.created = created.status();
  const job = (await created.json()).id;
  await page.goto(new URL(`jobs/${job}`, base).href, { waitUntil: "load" });
  await page.waitForFunction(
    () => document.querySelector('[data-testid="job-state"]')?.textContent === "running", null, { timeout: 30000 });

  // The card: the limit chosen, the range, and a reason once it changed.
  await present(page, "auto-hash");
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="auto-reason-hash"]')?.textContent ?? "").length > 0,
    null, { timeout: 60000 });
  report.cardLimit = await text(page, "auto-limit-hash");
  report.cardRange = await text(page, "auto-range-hash");
  report.cardReason = await text(page, "auto-reason-hash");
  report.cardPinnedAtStart = await page.locator(sel("auto-pinned-hash")).count();

  // The limit chart: a line for the stage, and the controller's changes
  // marked, labelled with their reason.
  await page.waitForFunction(
    () => Number(document.querySelector('[data-testid="chart-limit"]')?.dataset.samples ?? 0) >= 4,
    null, { timeout: 30000 });
  await page.waitForSelector(`${sel("chart-limit")} ${sel("marker")}`, { state: "attached", timeout: 30000 });
  report.limitSeries = await page.locator(`${sel("chart-limit")} polyline`).evaluateAll(
    (ls) => ls.map((l) => ({ series: l.dataset.series, points: l.getAttribute("points").split(" ").length })));
  report.limitMarkers = await page.locator(`${sel("chart-limit")} ${sel("marker")} title`).allTextContents();
  report.limitLabels = await page.locator(`${sel("chart-limit")} ${sel("marker-label")}`).allInnerTexts();

  // The timeline lists the controller's changes, with their reasons.
  await page.waitForSelector(`${sel("events")} [data-kind="auto"]`, { timeout: 30000 });
  report.timelineAuto = await page.locator(`${sel("events")} [data-kind="auto"]`).first().innerText();
  report.timelineStates = await page.locator(`${sel("events")} [data-kind="state"] ${sel("event-what")}`).allInnerTexts();
  await page.screenshot({ path: `${dir}/view-job-auto.png`, fullPage: true });

  // The tune panel says a manual tune pins it; "Pin here" does.
  await present(page, "tune-auto");
  report.tuneHint = await text(page, "tune-auto");
  report.backDisabledWhileAuto = await page.locator(sel("tune-auto-on")).isDisabled();
  await page.locator(sel("tune-pin")).click();
  await present(page, "auto-pinned-hash", 30000);
  report.cardPinned = await text(page, "auto-pinned-hash");
  await present(page, "tune-pinned", 30000);
  report.pinDisabledWhilePinned = await page.locator(sel("tune-pin")).isDisabled();
  report.pinnedLimit = await text(page, "auto-limit-hash");

  // Back to auto: the pin is gone.
  await page.locator(sel("tune-auto-on")).click();
  await gone(page, "auto-pinned-hash", 30000);
  report.unpinnedAfterPinHere = true;

  // A manual tune pins it as well, at the value typed.
  await page.locator(sel("tune-workers")).fill("3");
  await page.locator(sel("tune-apply")).click();
  await present(page, "auto-pinned-hash", 30000);
  await page.waitForFunction(
    () => document.querySelector('[data-testid="auto-limit-hash"]')?.textContent === "3", null, { timeout: 30000 });
  report.manualLimit = await text(page, "auto-limit-hash");
  await page.waitForFunction(
    () => [...document.querySelectorAll('[data-testid="events"] [data-kind="auto"] [data-testid="event-why"]')]
      .some((e) => e.textContent.includes("pinned by a manual tune")), null, { timeout: 30000 });
  report.timelineReasons = await page.locator(`${sel("events")} [data-kind="auto"] ${sel("event-why")}`).allInnerTexts();
  await page.screenshot({ path: `${dir}/view-job-auto-pinned.png`, fullPage: true });
  await page.locator(sel("tune-workers")).fill("");
  await page.locator(sel("tune-auto-on")).click();
  await gone(page, "auto-pinned-hash", 30000);
  report.unpinnedAfterManual = true;
  report.tuneMessage = await text(page, "tune-message");
  await page.request.post(new URL(`api/v1/jobs/${job}/stop`, base).href, { data: { mode: "abort" } });

  // The template that lets the engine find a service's knee: an async
  // stage whose concurrency is automatic.
  const knee = await page.request.post(new URL("api/v1/jobs", base).href, { data: { template: "auto-knee" } });
  report.kneeCreated = knee.status();
  const kneeJob = (await knee.json()).id;
  await page.goto(new URL(`jobs/${kneeJob}`, base).href, { waitUntil: "load" });
  await page.waitForFunction(
    () => (document.querySelector('[data-testid="auto-reason-call"]')?.textContent ?? "").length > 0,
    null, { timeout: 60000 });
  report.kneeCard = await page.locator(sel("auto-call")).innerText();
  report.kneeSeries = await page.locator(`${sel("chart-limit")} polyline`).evaluateAll((ls) => ls.map((l) => l.dataset.series));
  report.kneeHint = await text(page, "tune-auto");
  await page.request.post(new URL(`api/v1/jobs/${kneeJob}/stop`, base).href, { data: { mode: "abort" } });

  // The form: "auto" beside the number, a range, and back to the number.
  await page.goto(new URL("new", base).href, { waitUntil: "load" });
  await page.waitForSelector(sel("spec-form"), { timeout: 30000 });
  const workers = `${sel("field-stages[0].workers")}`;
  report.formWorkersBefore = await page.locator(`${workers} input`).inputValue();
  await page.locator(`${workers} select`).selectOption("auto");
  await page.waitForSelector(`${workers} [data-mode="auto"]`, { timeout: 30000 });
  report.formInputsWhenAuto = await page.locator(`${workers} input`).count();
  await page.locator(`${workers} ${sel("limit-max")}`).fill("8");
  await page.waitForFunction(
    () => document.querySelector('[data-testid="form-verdict"]')?.textContent === "valid", null, { timeout: 30000 });
  await page.locator(`${sel("export")} summary`).click();
  // The server's TOML writes a range as a table of its own.
  await page.waitForFunction(
    () => /max = 8/.test(document.querySelector('[data-testid="export-toml"]')?.textContent ?? ""),
    null, { timeout: 30000 });
  const toml = await text(page, "export-toml");
  report.formToml = toml.slice(toml.indexOf("[stages.workers]")).split("\n\n")[0];
  report.formCurlHasRange = (await text(page, "export-curl")).includes('"workers":{"max":8}');
  report.unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("main input, main select, main textarea")]
      .filter((el) => el.labels.length === 0 && !el.getAttribute("aria-label"))
      .map((el) => el.outerHTML.slice(0, 80)));
  await page.locator(sel("form-stage-0")).screenshot({ path: `${dir}/view-form-auto.png` });
  await page.locator(`${workers} select`).selectOption("fixed");
  await page.waitForSelector(`${workers} [data-mode="fixed"]`, { timeout: 30000 });
  report.formWorkersAfter = await page.locator(`${workers} input`).inputValue();
} catch (err) {
  report.failure = String(err?.stack || err);
  try {
    const page = browser.contexts()[0]?.pages()[0];
    if (page) report.bodyAtFailure = (await page.locator("main").innerText()).slice(0, 1500);
  } catch {}
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
