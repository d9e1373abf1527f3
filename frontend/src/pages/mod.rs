//! The dashboard's pages: the live job table, starting jobs (templates and
//! the article's lessons), a job's page (nodes, tuning, charts, drain and
//! abort, report, the lesson's signal), history, the tuning lab (sweeps,
//! capacity searches and soaks, `tuning` with `knob_chart`), the worker
//! processes (`workers`) and settings.

mod charts;
mod history;
mod job;
mod jobs;
mod knob_chart;
mod lessons;
mod new_job;
mod records;
mod settings;
mod tuning;
mod workers;

pub use history::{ComparePage, HistoryPage};
pub use job::JobPage;
pub use jobs::JobsPage;
pub use new_job::NewJobPage;
pub use settings::SettingsPage;
pub use tuning::{SweepComparePage, SweepPage, TuningPage};
pub use workers::WorkersPage;

use leptos::prelude::*;

use shared::api::{StopMode, StopRequest};

use crate::api;
use crate::i18n::{Lang, t};

/// A reactive translation of `key` in the chosen language.
pub(crate) fn tr(key: &'static str) -> impl Fn() -> &'static str + Copy + Send + Sync + 'static {
    let lang = expect_context::<RwSignal<Lang>>();
    move || t(lang.get(), key)
}

/// Names the browser tab after the page (`Jobs · QueueLab`) and, when a
/// page opens, moves the keyboard focus to its heading, so a screen reader
/// announces where a link led.
pub(crate) fn page_title(title: impl Fn() -> String + Send + Sync + 'static) {
    Effect::new(move |_| document().set_title(&format!("{} · QueueLab", title())));
    Effect::new(move |_| {
        // After the page's first render.
        request_animation_frame(|| {
            if let Some(h1) = document().query_selector("main h1").ok().flatten() {
                let _ = h1.set_attribute("tabindex", "-1");
                if let Ok(h1) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(h1) {
                    let _ = h1.focus();
                }
            }
        });
    });
}

/// Keeps a view's filters in the address bar (`?q=…&state=…`, empty ones
/// left out), replacing the history entry rather than adding one per key
/// press, so a reload or a shared link opens the same view.
pub(crate) fn keep_in_url(pairs: impl Fn() -> Vec<(&'static str, String)> + Send + Sync + 'static) {
    let navigate = leptos_router::hooks::use_navigate();
    let location = leptos_router::hooks::use_location();
    Effect::new(move |_| {
        let query: Vec<String> = pairs()
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={}", js_sys::encode_uri_component(&v)))
            .collect();
        let wanted = query.join("&");
        let current = location.search.get_untracked();
        if wanted != current.trim_start_matches('?') {
            let path = location.pathname.get_untracked();
            let href = if wanted.is_empty() {
                path
            } else {
                format!("{path}?{wanted}")
            };
            navigate(
                &href,
                leptos_router::NavigateOptions {
                    replace: true,
                    scroll: false,
                    ..Default::default()
                },
            );
        }
    });
}

/// Prose with its `backticked` words set as inline code.
pub(crate) fn prose(text: &str) -> impl IntoView + use<> {
    crate::format::code_spans(text)
        .into_iter()
        .map(|(code, t)| {
            if code {
                view! { <code>{t}</code> }.into_any()
            } else {
                t.into_any()
            }
        })
        .collect_view()
}

/// The interface language, tracked when read inside a reactive view.
fn lang() -> Lang {
    use_context::<RwSignal<Lang>>().map_or(Lang::En, |l| l.get())
}

/// Items per second in the chosen language's units.
fn rate(x: f64) -> String {
    crate::format::rate(x, lang())
}

/// Asks for confirmation before an abort, saying how many items would go
/// to the leftovers file.
fn confirm_abort(in_flight: u64) -> bool {
    web_sys::window()
        .and_then(|w| {
            w.confirm_with_message(&match Lang::stored() {
                Lang::En => format!(
                    "Abort? {in_flight} queued or in-flight items will go to the leftovers file."
                ),
                zh => format!(
                    "{} {in_flight}",
                    t(
                        zh,
                        "Abort? Queued or in-flight items will go to the leftovers file:"
                    )
                ),
            })
            .ok()
        })
        .unwrap_or(false)
}

/// Stops a job (an abort asks first); a failure lands in `message`.
fn stop_job(id: String, mode: StopMode, in_flight: u64, message: RwSignal<String>) {
    if mode == StopMode::Abort && !confirm_abort(in_flight) {
        return;
    }
    leptos::task::spawn_local(async move {
        let req = StopRequest {
            mode,
            deadline_ms: None,
        };
        // The answer is the job in full; the live frames show what changed.
        let path = format!("/api/v1/jobs/{id}/stop");
        let sent = api::send::<_, serde::de::IgnoredAny>("POST", &path, &req);
        match sent.await {
            Ok(_) => {
                message.try_set(String::new());
            }
            Err(e) => {
                message.try_set(e);
            }
        }
    });
}
