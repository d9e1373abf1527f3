// Starts the dashboard. A file of its own (not an inline script) so the
// server's Content-Security-Policy can forbid inline scripts.
//
// The dashboard is split into bundles, one per group of views, so the
// first view downloads only its own code: this table says which bundle
// serves a path (the one place it is written; the bundles ask it through
// `queuelab.bundleFor` when a link leads to another bundle's page).
const BUNDLES = [
  [/^\/jobs\/[^/]+$/, "job"],
  [/^\/new$/, "new"],
  [/^\/(history|compare)(\/|$)/, "history"],
  [/^\/tuning(\/|$)/, "tuning"],
  [/^\/workers$/, "workers"],
];
const bundleFor = (path) => (BUNDLES.find(([paths]) => paths.test(path)) ?? [, "jobs"])[1];
globalThis.queuelab = { bundleFor };

const name = bundleFor(location.pathname);
// The module and its wasm are fetched at once, not one after the other.
const wasm = fetch(`/${name}_bg.wasm`);
const { default: init } = await import(`/${name}.js`);
await init({ module_or_path: wasm });
