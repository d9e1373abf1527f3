// Opens the dashboard, waits for the WASM app to connect to the WebSocket,
// watches the server's uptime tick, visits each page, takes a screenshot,
// and prints one JSON report for the Rust test to assert on.
//
// usage: node dashboard.mjs <base-url> <screenshot.png>
import { launch, watchErrors, text } from "./driver.mjs";

const [base, screenshot] = process.argv.slice(2);
const dir = screenshot.replace(/\/[^/]*$/, "");
const report = { errors: [] };
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  report.errors = watchErrors(page);
  // Which bundles the browser fetches: the first view only its own.
  const wasm = [];
  page.on("request", (r) => { if (r.url().endsWith(".wasm")) wasm.push(new URL(r.url()).pathname); });
  await page.goto(base, { waitUntil: "load" });

  // The product name is rendered by the WASM app, not by index.html.
  await page.waitForSelector('[data-testid="product-name"]', { timeout: 30000 });
  report.productName = await text(page, "product-name");

  await page.waitForFunction(
    () => document.querySelector('[data-testid="conn-state"]')?.textContent === "connected",
    null,
    { timeout: 30000 },
  );
  report.connState = await text(page, "conn-state");
  report.firstViewWasm = [...wasm];
  report.serverVersion = await text(page, "server-version");
  report.uptimeFirst = await text(page, "uptime");
  await page.waitForFunction(
    (first) => {
      const now = document.querySelector('[data-testid="uptime"]')?.textContent;
      return now && now !== first;
    },
    report.uptimeFirst,
    { timeout: 30000 },
  );
  report.uptimeLater = await text(page, "uptime");

  // Client-side navigation, then a deep link loaded from the server.
  report.pages = {};
  for (const [label, testid] of [["New job", "page-new"], ["History", "page-history"], ["Settings", "page-settings"], ["Jobs", "page-jobs"]]) {
    await page.getByRole("navigation").getByRole("link", { name: label, exact: true }).click();
    await page.waitForSelector(`[data-testid="${testid}"]`, { timeout: 10000 });
    report.pages[testid] = new URL(page.url()).pathname;
  }
  report.wasmByPage = [...new Set(wasm)].sort();
  // Back leads through the pages visited, within a bundle and across them.
  report.back = [];
  for (const testid of ["page-settings", "page-history"]) {
    // Across bundles the page may come back from the back-forward cache,
    // which fires no "load": wait for the navigation to commit, then for
    // the page itself.
    await page.goBack({ waitUntil: "commit" });
    await page.waitForSelector(`[data-testid="${testid}"]`, { timeout: 30000 });
    report.back.push(new URL(page.url()).pathname);
  }
  await page.getByRole("navigation").getByRole("link", { name: "Jobs", exact: true }).click();
  await page.waitForSelector('[data-testid="page-jobs"]', { timeout: 10000 });
  // A token saved in Settings survives a reload.
  await page.goto(new URL("settings", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="token"]', { timeout: 30000 });
  await page.locator('[data-testid="token"]').fill("ql_example");
  await page.locator('[data-testid="save-token"]').click();
  await page.waitForSelector('[data-testid="saved"]', { timeout: 10000 });
  await page.reload({ waitUntil: "load" });
  await page.waitForSelector('[data-testid="token"]', { timeout: 30000 });
  report.tokenAfterReload = await page.locator('[data-testid="token"]').inputValue();
  await page.locator('[data-testid="token"]').fill("");
  await page.locator('[data-testid="save-token"]').click();
  // Chinese interface text, switchable and remembered.
  await page.locator('[data-testid="lang"]').selectOption("zh");
  await page.waitForFunction(() => document.querySelector("nav")?.innerText.includes("任务"), null, { timeout: 10000 });
  await page.reload({ waitUntil: "load" });
  await page.waitForFunction(() => document.querySelector("nav")?.innerText.includes("设置"), null, { timeout: 30000 });
  report.zhNav = await page.locator("nav").innerText();
  await page.screenshot({ path: `${dir}/view-settings-zh.png`, fullPage: true });
  await page.waitForFunction(
    () => document.querySelector('[data-testid="conn-state"]')?.textContent === "已连接", null, { timeout: 30000 });
  report.zhConn = await page.locator('[data-testid="conn-state"]').innerText();
  // The New job page in Chinese: the form and the templates' explanations.
  await page.getByRole("navigation").getByRole("link", { name: "新建任务" }).click();
  await page.waitForSelector('[data-testid="template-thread-io-pool"]', { timeout: 30000 });
  report.zhForm = await page.locator('[data-testid="form-source"] legend').innerText();
  report.zhWorkersLabel = await page.locator('[data-testid="field-stages[0].workers"] label').innerText();
  report.zhTemplate = await page.locator('[data-testid="template-thread-io-pool"] p').innerText();
  await page.waitForFunction(() => document.querySelector('[data-testid="form-verdict"]')?.textContent === "有效", null, { timeout: 30000 });
  report.zhVerdict = "有效";
  await page.screenshot({ path: `${dir}/view-new-zh.png`, fullPage: true });
  await page.getByRole("navigation").getByRole("link", { name: "设置" }).click();
  await page.waitForSelector('[data-testid="lang"]', { timeout: 30000 });
  await page.locator('[data-testid="lang"]').selectOption("en");
  await page.waitForFunction(() => document.querySelector("nav")?.innerText.includes("Jobs"), null, { timeout: 10000 });
  await page.goto(new URL("history", base).href, { waitUntil: "load" });
  await page.waitForSelector('[data-testid="page-history"]', { timeout: 30000 });
  report.deepLink = true;
  await page.waitForFunction(
    () => document.querySelector('[data-testid="conn-state"]')?.textContent === "connected",
    null,
    { timeout: 30000 },
  );
  await page.goto(base, { waitUntil: "load" });
  await page.waitForFunction(
    () => document.querySelector('[data-testid="conn-state"]')?.textContent === "connected",
    null,
    { timeout: 30000 },
  );
  await page.screenshot({ path: screenshot, fullPage: true });
  report.screenshot = screenshot;
} catch (err) {
  report.failure = String(err?.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
