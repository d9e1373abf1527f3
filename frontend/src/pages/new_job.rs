//! Starting a job: the lessons, the template gallery, the form, and the
//! spec editor (TOML or JSON).

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use shared::api::TemplateInfo;

use super::lessons::LessonGallery;
use super::tr;
use crate::api;
use crate::form::{FormCtx, SpecForm, starter_spec, verdict_text};
use crate::i18n::{Lang, template_text};

/// New job: the article's scenarios (start one, or customize it in the
/// form), the form, and the spec editor.
#[component]
pub fn NewJobPage() -> impl IntoView {
    let lang = expect_context::<RwSignal<Lang>>();
    super::page_title(move || crate::i18n::t(lang.get(), "New job").to_owned());
    let templates = LocalResource::new(|| api::get::<Vec<TemplateInfo>>("/api/v1/templates"));
    let error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let start = move |name: String| {
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let body = serde_json::json!({"template": name});
            match api::send::<_, api::Created>("POST", "/api/v1/jobs", &body).await {
                Ok(d) => navigate(&format!("/jobs/{}", d.id), Default::default()),
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        });
    };
    let editor = RwSignal::new(String::from(
        "name = \"my-pipeline\"\nsource = { kind = \"synthetic\", count = 10000 }\n\n[[stages]]\nname = \"work\"\nruntime = \"thread\"\nworkers = 4\nop = { kind = \"sleep\", latency = { dist = \"uniform\", min_ms = 1.0, max_ms = 5.0 } }\n",
    ));
    let problems = RwSignal::new(Vec::<(String, String)>::new());
    let verdict = RwSignal::new(String::new());
    let navigate2 = use_navigate();
    let check = move |start_it: bool| {
        let navigate = navigate2.clone();
        let toml = editor.get_untracked();
        leptos::task::spawn_local(async move {
            let path = if start_it {
                "/api/v1/jobs"
            } else {
                "/api/v1/validate"
            };
            if start_it {
                match api::post_text::<api::Created>(path, &toml).await {
                    Ok(d) => navigate(&format!("/jobs/{}", d.id), Default::default()),
                    Err(e) => {
                        verdict.set(e.message.clone());
                        problems.set(e.fields);
                    }
                }
            } else {
                let result = api::post_text::<serde_json::Value>(path, &toml).await;
                verdict.set(verdict_text(lang.get_untracked(), &result));
                problems.set(result.err().map(|e| e.fields).unwrap_or_default());
            }
        });
    };
    let check2 = check.clone();
    let form = FormCtx::new(starter_spec());
    let navigate3 = use_navigate();
    let on_started =
        Callback::new(move |id: String| navigate3(&format!("/jobs/{id}"), Default::default()));
    // A template goes into the form as the server reads it (defaults
    // filled in), so its fields show what will run.
    let customize = move |toml_text: String| {
        leptos::task::spawn_local(async move {
            match api::post_text::<serde_json::Value>("/api/v1/validate", &toml_text).await {
                Ok(v) => {
                    form.load(v["spec"].clone());
                    if let Some(el) = document().get_element_by_id("f-name") {
                        el.scroll_into_view();
                    }
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    view! {
        <section data-testid="page-new">
            <h1>{tr("New job")}</h1>
            <Show when=move || error.get().is_some()>
                <p class="error" data-testid="error">{move || error.get()}</p>
            </Show>
            <LessonGallery />
            <h2>{tr("Templates")}</h2>
            <Suspense fallback=move || view! { <p>{tr("Loading templates…")}</p> }>
                <div class="gallery">
                    {move || templates.get().map(|r| match r {
                        Ok(list) => list.into_iter().map(|t| {
                            let name = t.name.clone();
                            let start = start.clone();
                            let toml_text = t.toml.clone();
                            let name_for_text = t.name.clone();
                            let description = t.description.clone();
                            view! {
                                <article class="card template" data-testid=format!("template-{}", t.name)>
                                    <h2>{t.name.clone()}</h2>
                                    <p>{move || super::prose(&template_text(lang.get(), &name_for_text, &description))}</p>
                                    <div class="actions">
                                        <button data-testid="start" on:click=move |_| start(name.clone())>{tr("Start")}</button>
                                        <button class="secondary" data-testid="customize" on:click=move |_| customize(toml_text.clone())>{tr("Customize")}</button>
                                    </div>
                                </article>
                            }
                        }).collect_view().into_any(),
                        Err(e) => view! { <p class="error">{e}</p> }.into_any(),
                    })}
                </div>
            </Suspense>
            <SpecForm ctx=form on_started=on_started />
            <details class="card editor" data-testid="editor">
                <summary>{tr("Write a spec (TOML or JSON)")}</summary>
                <label for="spec">{tr("Spec")}</label>
                <textarea id="spec" rows="12" data-testid="spec" prop:value=move || editor.get()
                    on:input=move |ev| editor.set(event_target_value(&ev))></textarea>
                <div class="actions">
                    <button data-testid="validate" on:click=move |_| check(false)>{tr("Validate")}</button>
                    <button data-testid="start-spec" on:click=move |_| check2(true)>{tr("Start")}</button>
                    <span class="hint" data-testid="verdict">{move || verdict.get()}</span>
                </div>
                <ul class="problems">
                    {move || problems.get().into_iter().map(|(path, message)| view! {
                        <li data-testid="problem"><code data-testid="problem-path">{path}</code>": "{
                            // A TOML error keeps its line, column and caret.
                            if message.contains('\n') {
                                view! { <pre class="caret" data-testid="problem-caret">{message}</pre> }.into_any()
                            } else {
                                message.into_any()
                            }
                        }</li>
                    }).collect_view()}
                </ul>
            </details>
        </section>
    }
}
