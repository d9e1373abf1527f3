//! A finished job's dead letters and leftovers as paged tables (reason,
//! stage, attempts, payload), with a JSON-lines download, read from the
//! API's pages (`GET /api/v1/jobs/{id}/dead_letters` and `…/leftovers`).

use leptos::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use super::tr;
use crate::api;

/// Rows per page of the table.
const PAGE: usize = 20;

/// Records per request when downloading everything (the API's maximum).
const DOWNLOAD_PAGE: usize = 1000;

/// A page as the API answers it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
struct RecordPage {
    records: Vec<Value>,
    total: usize,
}

/// Which records a table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Items that failed for good, with why.
    DeadLetters,
    /// Items queued or in flight at an abort, as their original lines.
    Leftovers,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::DeadLetters => "dead_letters",
            Kind::Leftovers => "leftovers",
        }
    }
}

/// A payload shortened for a table cell.
pub fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars().take(max).chain(std::iter::once('…')).collect()
    }
}

/// The columns of one dead letter: stage, reason, attempts, payload.
pub fn dead_letter_row(r: &Value) -> [String; 4] {
    let s = |k: &str| match &r[k] {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        v => v.to_string(),
    };
    [s("stage"), s("error"), s("attempts"), s("item")]
}

/// Downloads every record of the job as a JSON-lines file, page by page;
/// a link would not carry the API token.
async fn download(job: String, kind: Kind) -> Result<(), String> {
    let mut lines = String::new();
    let mut offset = 0;
    loop {
        let page: RecordPage = api::get(&format!(
            "/api/v1/jobs/{job}/{}?offset={offset}&limit={DOWNLOAD_PAGE}",
            kind.path()
        ))
        .await?;
        for r in &page.records {
            match r {
                Value::String(line) => lines.push_str(line),
                other => lines.push_str(&other.to_string()),
            }
            lines.push('\n');
        }
        offset += page.records.len();
        if page.records.is_empty() || offset >= page.total {
            break;
        }
    }
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(&lines));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/x-ndjson");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|_| "cannot make the file".to_owned())?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|_| "cannot make the file".to_owned())?;
    let a = document()
        .create_element("a")
        .map_err(|_| "cannot make the link".to_owned())?;
    let _ = a.set_attribute("href", &url);
    let _ = a.set_attribute("download", &format!("{job}-{}.jsonl", kind.path()));
    if let Ok(a) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(a) {
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// A paged table of a finished job's dead letters or leftovers.
#[component]
pub fn Records(job: String, kind: Kind) -> impl IntoView {
    let offset = RwSignal::new(0_usize);
    let message = RwSignal::new(String::new());
    let job_for_page = job.clone();
    let page = LocalResource::new(move || {
        let path = format!(
            "/api/v1/jobs/{}/{}?offset={}&limit={PAGE}",
            job_for_page,
            kind.path(),
            offset.get()
        );
        async move { api::get::<RecordPage>(&path).await }
    });
    let testid = format!("records-{}", kind.path());
    let title = match kind {
        Kind::DeadLetters => tr("Dead letters"),
        Kind::Leftovers => tr("Leftovers"),
    };
    let total = move || page.get().and_then(|p| p.ok()).map_or(0, |p| p.total);
    let rows = move || {
        page.get().map(|p| match p {
            Ok(p) => p
                .records
                .iter()
                .map(|r| match kind {
                    Kind::DeadLetters => {
                        let [stage, reason, attempts, item] = dead_letter_row(r);
                        view! {
                            <tr data-testid="record-row"><td>{stage}</td><td class="reason">{reason}</td>
                            <td class="num">{attempts}</td><td><code title=item.clone()>{short(&item, 80)}</code></td></tr>
                        }
                        .into_any()
                    }
                    Kind::Leftovers => {
                        let line = r.as_str().map_or_else(|| r.to_string(), str::to_owned);
                        view! { <tr data-testid="record-row"><td colspan="4"><code title=line.clone()>{short(&line, 120)}</code></td></tr> }
                            .into_any()
                    }
                })
                .collect_view()
                .into_any(),
            Err(e) => view! { <tr><td colspan="4" class="error">{e}</td></tr> }.into_any(),
        })
    };
    let job_for_download = job.clone();
    view! {
        <section class="records" data-testid=testid>
            <h3>{title}" "<span class="hint" data-testid="records-total">{total}</span></h3>
            <table class="jobs records-table">
                {(kind == Kind::DeadLetters).then(|| view! {
                    <thead><tr><th>{tr("stage")}</th><th>{tr("reason")}</th><th>{tr("attempts")}</th><th>{tr("payload")}</th></tr></thead>
                })}
                <tbody>{rows}</tbody>
            </table>
            <div class="actions">
                <button type="button" class="secondary" data-testid="records-prev"
                    disabled=move || { offset.get() == 0 }
                    on:click=move |_| offset.update(|o| *o = o.saturating_sub(PAGE))>{tr("Previous")}</button>
                <span class="hint" data-testid="records-range">{move || {
                    let t = total();
                    let from = if t == 0 { 0 } else { offset.get() + 1 };
                    format!("{from}–{} / {t}", (offset.get() + PAGE).min(t))
                }}</span>
                <button type="button" class="secondary" data-testid="records-next"
                    disabled=move || { offset.get() + PAGE >= total() }
                    on:click=move |_| offset.update(|o| *o += PAGE)>{tr("Next")}</button>
                <button type="button" data-testid="records-download" on:click=move |_| {
                    let job = job_for_download.clone();
                    leptos::task::spawn_local(async move {
                        if let Err(e) = download(job, kind).await {
                            message.try_set(e);
                        }
                    });
                }>{tr("Download JSON lines")}</button>
                <span class="hint error" role="status">{move || message.get()}</span>
            </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_stage_reason_attempts_and_a_short_payload() {
        let r = serde_json::json!({"stage": "parse", "error": "level: expected string, got integer",
            "attempts": 1, "item": "{\"id\":1}"});
        assert_eq!(
            dead_letter_row(&r),
            [
                "parse".to_owned(),
                "level: expected string, got integer".to_owned(),
                "1".to_owned(),
                "{\"id\":1}".to_owned()
            ]
        );
        assert_eq!(short("abcdef", 3), "abc…");
        assert_eq!(short("ab", 3), "ab");
    }
}
