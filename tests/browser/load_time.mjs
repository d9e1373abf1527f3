// Time to interactive of a dashboard view on a throttled link, as a user
// on a slow staging link meets it: a cold cache, Chromium's network
// emulation at 1.6 Mbit/s down, 750 kbit/s up and 150 ms round trip, and
// the time from navigation start until the view's heading is on the page
// and the live link says "connected" (the wasm has run and the WebSocket
// is open). Prints one JSON line per view: the median and each run's time,
// and the bytes the view downloaded (as sent, compressed).
//
// usage: node load_time.mjs <base-url> <runs> <path>...
import { launch } from "./driver.mjs";

const [base, runsArg, ...paths] = process.argv.slice(2);
const runs = Number(runsArg);
const browser = await launch();
try {
  for (const path of paths) {
    const times = [];
    let bytes = 0;
    for (let i = 0; i < runs; i++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await cdp.send("Network.enable");
      await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
      await cdp.send("Network.emulateNetworkConditions", {
        offline: false,
        latency: 150,
        downloadThroughput: (1.6e6 / 8),
        uploadThroughput: (750e3 / 8),
      });
      let sent = 0;
      cdp.on("Network.loadingFinished", (e) => { sent += e.encodedDataLength; });
      await page.goto(new URL(path, base).href, { waitUntil: "commit" });
      const ms = await (await page.waitForFunction(() => {
        const ready = document.querySelector("main h1")
          && document.querySelector('[data-testid="conn-state"]')?.textContent === "connected";
        return ready ? performance.now() : null;
      }, null, { timeout: 120000, polling: 20 })).jsonValue();
      times.push(Math.round(ms));
      bytes = sent;
      await context.close();
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(JSON.stringify({ path, median_ms: sorted[Math.floor(sorted.length / 2)], runs: times, bytes }));
  }
} finally {
  await browser.close();
}
