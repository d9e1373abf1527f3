// Shared launch options for QueueLab's browser tests: Debian's Chromium
// driven by playwright-core (no browser download), with the flags that work
// as root on a closed network.
import { chromium } from "playwright-core";

export async function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs,
    ],
  });
}

// Collects console errors and uncaught page errors, so tests can assert a
// clean console.
export function watchErrors(page) {
  const errors = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  // A request the browser cancels because the page navigated away
  // (net::ERR_ABORTED) is not a failure of the page.
  page.on("requestfailed", (req) => {
    const why = req.failure()?.errorText;
    if (why !== "net::ERR_ABORTED") errors.push(`requestfailed: ${req.url()} ${why}`);
  });
  return errors;
}

export const text = (page, testid) =>
  page.locator(`[data-testid="${testid}"]`).first().innerText();

// A figure as the page writes it (`12,345`), as a number.
export const plain = (s) => Number(String(s).replace(/,/g, ""));
