//! # `frontend` — the QueueLab dashboard
//!
//! A Leptos 0.8 client-side-rendered app, compiled to
//! `wasm32-unknown-unknown` and served by `queuelab serve`. It speaks to
//! the server only through the REST API and the WebSocket, with the types
//! from `shared`.
//!
//! A short tour:
//!
//! * Bundles — the dashboard is split by view so a view downloads only its
//!   own code: each bin in `src/bin/` (`jobs`, the first view, with
//!   settings; `job`, one job's page; `new`; `history`; `tuning`;
//!   `workers`) mounts [`Shell`] with its own routes, and `boot.js` loads
//!   the bundle a path belongs to. A link to another bundle's page lands in
//!   [`elsewhere`], which loads that page from the server. `./dev size`
//!   prints each bundle's gzipped size against its budget.
//! * [`Shell`] — the page shell: product name, navigation (Jobs, New job,
//!   History, Tuning, Workers, Settings) and the always-visible connection
//!   badge, around a client-side router.
//! * [`live`] — the WebSocket link: connects (with the API token), feeds
//!   signals with frames (job list, snapshots, events), and reconnects with
//!   jittered exponential backoff when the server goes away; it tells a
//!   refused token from a server that is down.
//! * [`api`] — REST calls with the token, errors turned into readable
//!   messages or into problems by field path.
//! * [`pages`] — the views: the job table (sortable, active jobs on top),
//!   New job (the lessons, the template gallery, form, editor), a job's
//!   page (nodes coloured by state, charts, tuning, drain/abort, the
//!   lesson's banner, report with paged dead letters and leftovers and a
//!   replay), history with comparison, the tuning lab (start a sweep or a
//!   soak, watch its points and the knee arrive, compare two sweeps),
//!   settings. SVG charts live in
//!   `pages::charts`, the lessons in `pages::lessons`, the record tables in
//!   `pages::records`.
//! * [`form`] — the spec form: a spec held as JSON, fields addressed by the
//!   server's path spelling so each validation problem lands beside its
//!   field.
//! * [`i18n`] — English and Chinese interface text.
//! * [`format`](mod@format) — small pure helpers (durations, local times), unit-tested natively.
//!
//! Elements that browser tests look at carry `data-testid` attributes.

pub mod api;
pub mod form;
pub mod format;
pub mod i18n;
pub mod live;
pub mod pages;

use leptos::prelude::*;
use leptos_router::components::{A, Router};
use wasm_bindgen::JsValue;

use crate::live::{Conn, LiveLink};

/// The dashboard's page shell, shared by every bundle: product name,
/// navigation and the connection badge around a client-side router whose
/// routes (`children`, a `<Routes>`) are the bundle's own. A link to a
/// page of another bundle lands in [`elsewhere`], which loads it.
#[component]
pub fn Shell(children: Children) -> impl IntoView {
    let link = LiveLink::start();
    provide_context(link);
    let lang = RwSignal::new(i18n::Lang::stored());
    provide_context(lang);
    let tr = move |key: &'static str| move || i18n::t(lang.get(), key);
    view! {
        <Router>
            <header class="shell">
                <div class="brand">
                    <span class="logo" aria-hidden="true">"⇶"</span>
                    <span class="name" data-testid="product-name">"QueueLab"</span>
                </div>
                <nav aria-label="Main">
                    <A href="/jobs">{tr("Jobs")}</A>
                    <A href="/new">{tr("New job")}</A>
                    <A href="/history">{tr("History")}</A>
                    <A href="/tuning">{tr("Tuning")}</A>
                    <A href="/workers">{tr("Workers")}</A>
                    <A href="/settings">{tr("Settings")}</A>
                </nav>
                <ConnectionBadge link=link />
            </header>
            <main>{children()}</main>
        </Router>
    }
}

/// Starts a bundle: the panic hook, then [`Shell`] around `routes` (the
/// bundle's `<Routes>`) mounted on `<body>`. Each bin's `main` is this call.
pub fn start<V: IntoView + 'static>(routes: impl FnOnce() -> V + Send + 'static) {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(move || view! { <Shell>{routes()}</Shell> });
}

/// The `<Routes>` fallback of the bundle named `bundle`: a path another
/// bundle serves is loaded from the server (the router has already put it
/// in the address bar), any other is "not found". Which bundle serves a
/// path is `boot.js`'s table, the one place it is written.
pub fn elsewhere(bundle: &'static str) -> impl Fn() -> AnyView + Clone + Send + Sync + 'static {
    move || {
        // The router's path: the address bar may not show it yet.
        let path = leptos_router::hooks::use_location()
            .pathname
            .get_untracked();
        if bundle_for(&path).is_some_and(|b| b != bundle) {
            // Loading another bundle: nothing to show until it runs.
            let query = leptos_router::hooks::use_location().search.get_untracked();
            let href = match query.trim_start_matches('?') {
                "" => path,
                q => format!("{path}?{q}"),
            };
            // Replacing the entry the router pushed: Back leads to the page
            // before, not to this one again.
            let _ = window().location().replace(&href);
            return ().into_any();
        }
        view! { <Placeholder title="Not found" body="No page at this address." /> }.into_any()
    }
}

/// The bundle `boot.js` loads for `path` (`queuelab.bundleFor`), or `None`
/// when the page was not started by it.
fn bundle_for(path: &str) -> Option<String> {
    let boot = js_sys::Reflect::get(&js_sys::global(), &JsValue::from("queuelab")).ok()?;
    let pick = js_sys::Reflect::get(&boot, &JsValue::from("bundleFor")).ok()?;
    let pick: js_sys::Function = wasm_bindgen::JsCast::dyn_into(pick).ok()?;
    pick.call1(&JsValue::NULL, &JsValue::from(path))
        .ok()?
        .as_string()
}

/// Always-visible state of the live link: connected or reconnecting, the
/// server's version, and its uptime ticking with each heartbeat.
#[component]
fn ConnectionBadge(link: LiveLink) -> impl IntoView {
    let lang = expect_context::<RwSignal<i18n::Lang>>();
    let t = move |key| i18n::t(lang.get(), key);
    let conn = link.conn;
    let beat = link.last_heartbeat;
    let label = move || match conn.get() {
        Conn::Connecting => t("connecting…").to_owned(),
        Conn::Connected => t("connected").to_owned(),
        Conn::Reconnecting { in_ms } => {
            format!(
                "{} {}",
                t("reconnecting in"),
                format::duration_ms(u64::from(in_ms))
            )
        }
        Conn::NeedsToken => t("API token needed").to_owned(),
    };
    let state_class = move || match conn.get() {
        Conn::Connected => "conn conn-ok",
        Conn::Connecting => "conn conn-wait",
        Conn::Reconnecting { .. } | Conn::NeedsToken => "conn conn-down",
    };
    let version = move || {
        beat.get()
            .map(|b| format!("v{}", b.server_version))
            .unwrap_or_default()
    };
    let uptime = move || {
        beat.get()
            .map(|b| format!("{} {}", t("up"), format::duration_ms(b.uptime_ms)))
            .unwrap_or_default()
    };
    view! {
        <div class=state_class role="status" aria-live="polite" data-testid="connection">
            <span class="dot" aria-hidden="true"></span>
            <span data-testid="conn-state">{label}</span>
            <span class="meta" data-testid="server-version">{version}</span>
            <span class="meta" data-testid="uptime">{uptime}</span>
            <Show when=move || conn.get() == Conn::NeedsToken>
                <a class="meta" href="/settings" data-testid="set-token">{move || t("Settings")}</a>
            </Show>
        </div>
    }
}

/// A titled card for pages whose content lands in later issues.
#[component]
fn Placeholder(title: &'static str, body: &'static str) -> impl IntoView {
    let lang = expect_context::<RwSignal<i18n::Lang>>();
    view! {
        <section class="card">
            <h1>{move || i18n::t(lang.get(), title)}</h1>
            <p>{move || i18n::t(lang.get(), body)}</p>
        </section>
    }
}
