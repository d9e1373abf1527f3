//! The article's lessons in the dashboard: a gallery on New job (start a
//! lesson, or start all its variants side by side) and, on the page of a
//! job started from one, a banner saying what to do and what to watch, the
//! parts of the page concerned outlined, and its variants one click away.

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use shared::lessons::{self, Focus, Lesson, Text};

use super::tr;
use crate::api;
use crate::i18n::Lang;

/// A lesson text in the chosen language.
fn say(lang: Lang, text: &Text) -> &'static str {
    match lang {
        Lang::En => text.en,
        Lang::Zh => text.zh,
    }
}

/// Starts a lesson (or one of its variants) and returns the new job's id.
/// The spec comes from the server (`GET /api/v1/lessons`), which builds it
/// from the template: the dashboard carries no TOML parser.
async fn start(lesson: &Lesson, variant: Option<&str>) -> Result<String, String> {
    let list = api::get::<Vec<serde_json::Value>>("/api/v1/lessons").await?;
    let info = list
        .iter()
        .find(|l| l["id"] == lesson.id)
        .ok_or_else(|| format!("the server has no lesson {}", lesson.id))?;
    let spec = match variant {
        None => &info["spec"],
        Some(v) => {
            let i = lesson
                .variants
                .iter()
                .position(|x| x.id == v)
                .ok_or_else(|| format!("no variant {v}"))?;
            &info["variant_specs"][i]
        }
    };
    api::send::<_, api::Created>("POST", "/api/v1/jobs", spec)
        .await
        .map(|d| d.id)
}

/// Starts a lesson the way its card says: alone (then its job page opens),
/// or with every variant beside it (then the jobs list shows them all).
fn launch(lesson: &'static Lesson, variant: Option<&'static str>, error: RwSignal<Option<String>>) {
    let navigate = use_navigate();
    leptos::task::spawn_local(async move {
        if lesson.side_by_side && variant.is_none() {
            let mut ids = Vec::new();
            for v in std::iter::once(None).chain(lesson.variants.iter().map(|v| Some(v.id))) {
                match start(lesson, v).await {
                    Ok(id) => ids.push(id),
                    Err(e) => {
                        error.try_set(Some(e));
                        return;
                    }
                }
            }
            navigate(&format!("/jobs?q={}", lesson.template), Default::default());
        } else {
            match start(lesson, variant).await {
                Ok(id) => navigate(&format!("/jobs/{id}"), Default::default()),
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        }
    });
}

/// The gallery of lessons on New job.
#[component]
pub fn LessonGallery() -> impl IntoView {
    let lang = expect_context::<RwSignal<Lang>>();
    let error = RwSignal::new(None::<String>);
    view! {
        <section class="lessons" data-testid="lessons">
            <h2>{tr("Lessons")}</h2>
            <p class="hint">{tr("Each lesson runs one of the article's pipelines and shows what to watch while it runs.")}</p>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert" data-testid="lesson-error">{move || error.get()}</p>
            </Show>
            <div class="gallery">
                {lessons::ALL.iter().enumerate().map(|(i, l)| view! {
                    <article class="card lesson" data-testid=format!("lesson-{}", l.id)>
                        <h3><span class="lesson-n">{i + 1}". "</span>{move || say(lang.get(), &l.title)}" "<small class="hint">{l.section}</small></h3>
                        <p>{move || super::prose(say(lang.get(), &l.explain))}</p>
                        <p class="lesson-todo"><strong>{tr("Do")}": "</strong>{move || super::prose(say(lang.get(), &l.todo))}</p>
                        <div class="actions">
                            <button data-testid="lesson-start" on:click=move |_| launch(l, None, error)>
                                {move || if l.side_by_side { tr("Start side by side")() } else { tr("Start")() }}
                            </button>
                        </div>
                    </article>
                }).collect_view()}
            </div>
        </section>
    }
}

/// Whether the lesson outlines the chart `testid`.
pub fn focuses_chart(testid: &str, lesson: Option<&Lesson>) -> bool {
    lesson.is_some_and(|l| {
        l.focus
            .iter()
            .any(|f| matches!(f, Focus::Chart(c) if *c == testid))
    })
}

/// Whether the lesson outlines the node `name`.
pub fn focuses_node(name: &str, lesson: Option<&Lesson>) -> bool {
    lesson.is_some_and(|l| {
        l.focus
            .iter()
            .any(|f| matches!(f, Focus::Node(n) if *n == name))
    })
}

/// The banner on a lesson's job page: what to do, what to watch, and the
/// variants to start next.
#[component]
pub fn LessonBanner(lesson: &'static Lesson, finished: Memo<bool>) -> impl IntoView {
    let lang = expect_context::<RwSignal<Lang>>();
    let error = RwSignal::new(None::<String>);
    view! {
        <aside class="card lesson-banner" data-testid="lesson-banner">
            <h2>{tr("Lesson")}": "{move || say(lang.get(), &lesson.title)}" "<small class="hint">{lesson.section}</small></h2>
            <p data-testid="lesson-todo"><strong>{tr("Do")}": "</strong>{move || super::prose(say(lang.get(), &lesson.todo))}</p>
            <p data-testid="lesson-signal" class="lesson-signal"><strong>{tr("Watch")}": "</strong>{move || super::prose(say(lang.get(), &lesson.signal))}</p>
            <Show when=move || finished.get() && lesson.focus.contains(&Focus::Report)>
                <p class="hint">{tr("The report below shows it.")}</p>
            </Show>
            {(!lesson.variants.is_empty()).then(|| view! {
                <div class="actions">
                    {lesson.variants.iter().map(|v| view! {
                        <button class="secondary" data-testid=format!("lesson-variant-{}", v.id)
                            on:click=move |_| launch(lesson, Some(v.id), error)>
                            {tr("Start")}" "{move || say(lang.get(), &v.label)}
                        </button>
                    }).collect_view()}
                </div>
            })}
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get()}</p>
            </Show>
        </aside>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lesson_outlines_the_nodes_and_charts_it_names() {
        let l = lessons::get("backpressure");
        assert!(focuses_node("slow", l));
        assert!(focuses_node("parse", l));
        assert!(!focuses_node("sink", l));
        assert!(focuses_chart("chart-depth", l));
        assert!(!focuses_chart("chart-lag", l));
        assert!(!focuses_node("slow", None));
        // Letting the engine find the knee: the limit chart and the stage.
        let knee = lessons::get("auto-knee");
        assert!(focuses_chart("chart-limit", knee));
        assert!(focuses_node("call", knee));
    }
}
