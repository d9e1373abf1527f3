//! The live knobs of a running job.

use leptos::prelude::*;
use shared::metrics::{JobSnapshot, NodeSnapshot, TuneRequest};

use crate::api;
use crate::i18n::{Lang, t};
use crate::pages::tr;

/// Sends a tune of `job`; what the server answers lands in `message`.
fn send(job: String, req: TuneRequest, message: RwSignal<String>, lang: RwSignal<Lang>) {
    leptos::task::spawn_local(async move {
        match api::send::<_, serde::de::IgnoredAny>("PATCH", &format!("/api/v1/jobs/{job}"), &req)
            .await
        {
            Ok(_) => {
                message.try_set(t(lang.get_untracked(), "applied").into());
            }
            Err(e) => {
                message.try_set(e);
            }
        }
    });
}

/// Live knobs of a running job: one stage's workers, concurrency and rate
/// limit, or the sink's batching; for a stage whose limit the engine
/// chooses, a pin at its current value and a way back to auto. Kept apart
/// from the node cards, which are redrawn with every snapshot, so what one
/// types is not reset.
#[component]
pub(super) fn TunePanel(
    job: String,
    spec: shared::spec::PipelineSpec,
    /// The newest snapshot, for showing each knob's current value.
    current: Signal<Option<JobSnapshot>>,
) -> impl IntoView {
    // Name, async, and the field the engine chooses when it does.
    let stages: Vec<(String, bool, Option<&'static str>)> = spec
        .stages
        .iter()
        .map(|s| {
            let auto = s.auto_range().map(|_| s.auto_field());
            (
                s.name.clone(),
                s.runtime == shared::spec::Runtime::Async,
                auto,
            )
        })
        .collect();
    let batches = spec.sink.batch().is_some();
    let first = stages.first().map(|s| s.0.clone()).unwrap_or_default();
    let stage = RwSignal::new(first);
    let lang = expect_context::<RwSignal<Lang>>();
    let workers = RwSignal::new(String::new());
    let concurrency = RwSignal::new(String::new());
    let rate_limit = RwSignal::new(String::new());
    let batch = RwSignal::new(String::new());
    let message = RwSignal::new(String::new());
    let is_async = {
        let stages = stages.clone();
        move || stages.iter().any(|(n, a, _)| *a && *n == stage.get())
    };
    // The selected node's live settings, shown as placeholders.
    let now = move |f: fn(&NodeSnapshot) -> Option<String>| {
        let st = stage.get();
        current
            .get()
            .and_then(|s| s.nodes.iter().find(|n| n.name == st).and_then(f))
            .unwrap_or_default()
    };
    let sink_batch = spec
        .sink
        .batch()
        .map(|b| b.size.to_string())
        .unwrap_or_default();
    let job = StoredValue::new(job);
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let num = |s: RwSignal<String>| -> Result<Option<f64>, String> {
            let v = s.get_untracked();
            if v.trim().is_empty() {
                return Ok(None);
            }
            v.trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| format!("`{v}` is not a number"))
        };
        let req = (|| -> Result<TuneRequest, String> {
            let st = stage.get_untracked();
            if st == "sink" {
                return Ok(TuneRequest {
                    stage: st,
                    batch_size: num(batch)?.map(|x| x as u32),
                    ..Default::default()
                });
            }
            Ok(TuneRequest {
                stage: st,
                workers: num(workers)?.map(|x| x as u32),
                concurrency: num(concurrency)?.map(|x| x as u32),
                rate_limit: num(rate_limit)?,
                ..Default::default()
            })
        })();
        match req {
            Ok(r) => send(job.get_value(), r, message, lang),
            Err(e) => message.set(e),
        }
    };
    // A stage whose limit the engine chooses, as the controller reports
    // it (the field, and whether a manual tune pinned it) or else as the
    // spec says (pinned unknown).
    let auto = {
        let stages = stages.clone();
        Memo::new(move |_| -> Option<(String, Option<bool>)> {
            let st = stage.get();
            let live = current.with(|s| {
                s.as_ref()
                    .and_then(|s| s.nodes.iter().find(|n| n.name == st))
                    .and_then(|n| n.auto.as_ref())
                    .map(|a| (a.field.clone(), Some(a.pinned)))
            });
            live.or_else(|| {
                stages
                    .iter()
                    .find(|s| s.0 == st)
                    .and_then(|s| s.2)
                    .map(|f| (f.to_owned(), None))
            })
        })
    };
    let pinned = move || auto.with(|a| a.as_ref().and_then(|a| a.1));
    let drives_concurrency =
        move || auto.with(|a| a.as_ref().is_some_and(|a| a.0 == "concurrency"));
    let switch_auto = move |on: bool| {
        let req = TuneRequest {
            stage: stage.get_untracked(),
            auto: Some(on),
            ..Default::default()
        };
        send(job.get_value(), req, message, lang);
    };
    let options = stages
        .iter()
        .map(|(n, ..)| view! { <option value=n.clone()>{n.clone()}</option> })
        .collect_view();
    view! {
        <form class="tune" data-testid="tune" novalidate=true on:submit=apply>
            <fieldset>
                <legend>{tr("Tune")}</legend>
                <label>{tr("stage")}" "
                    <select data-testid="tune-stage" on:change=move |ev| {
                        // What was typed for one stage must not go to another.
                        for field in [workers, concurrency, rate_limit, batch] {
                            field.set(String::new());
                        }
                        message.set(String::new());
                        stage.set(event_target_value(&ev));
                    }>
                        {options}
                        {batches.then(|| view! { <option value="sink">"sink"</option> })}
                    </select>
                </label>
                <Show when=move || stage.get() != "sink">
                    <label>{tr("workers")}" "<input type="number" min="1" data-testid="tune-workers" prop:value=move || workers.get()
                        placeholder=move || now(|n| Some(n.workers.to_string()))
                        on:input=move |ev| workers.set(event_target_value(&ev)) /></label>
                    <label>{tr("rate limit/s")}" "<input type="number" min="0" step="any" data-testid="tune-rate" prop:value=move || rate_limit.get()
                        placeholder=move || now(|n| n.rate_limit.map(|r| r.to_string()))
                        on:input=move |ev| rate_limit.set(event_target_value(&ev)) /></label>
                </Show>
                <Show when=is_async.clone()>
                    <label>{tr("concurrency")}" "<input type="number" min="1" data-testid="tune-concurrency" prop:value=move || concurrency.get()
                        placeholder=move || now(|n| n.concurrency.map(|c| c.to_string()))
                        on:input=move |ev| concurrency.set(event_target_value(&ev)) /></label>
                </Show>
                <Show when=move || stage.get() == "sink">
                    <label>{tr("batch size")}" "<input type="number" min="1" data-testid="tune-batch" prop:value=move || batch.get()
                        placeholder=sink_batch.clone()
                        on:input=move |ev| batch.set(event_target_value(&ev)) /></label>
                </Show>
                <button type="submit" data-testid="tune-apply">{tr("Apply")}</button>
                <span class="hint" role="status" data-testid="tune-message">{move || message.get()}</span>
                <Show when=move || auto.with(Option::is_some)>
                    <div class="tune-auto" data-testid="tune-auto">
                        <span class="auto-badge">{tr("auto")}</span>
                        <span>{move || if drives_concurrency() {
                            t(lang.get(), "The engine chooses this stage's concurrency; setting it here pins it at that value.")
                        } else {
                            t(lang.get(), "The engine chooses this stage's workers; setting them here pins them at that value.")
                        }}</span>
                        <Show when=move || pinned() == Some(true)>
                            <strong data-testid="tune-pinned">{tr("pinned (manual tune)")}</strong>
                        </Show>
                        <button type="button" class="secondary" data-testid="tune-pin" disabled=move || pinned() == Some(true)
                            title="keep the value the engine chose now" on:click=move |_| switch_auto(false)>{tr("Pin here")}</button>
                        <button type="button" data-testid="tune-auto-on" disabled=move || pinned() == Some(false)
                            title="let the engine choose again" on:click=move |_| switch_auto(true)>{tr("Back to auto")}</button>
                    </div>
                </Show>
            </fieldset>
        </form>
    }
}
