// Starts the dashboard. A file of its own (not an inline script) so the
// server's Content-Security-Policy can forbid inline scripts.
import init from "/frontend.js";
init({ module_or_path: "/frontend_bg.wasm" });
