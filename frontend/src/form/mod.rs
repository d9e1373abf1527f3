//! The spec form: every knob of a pipeline (source, stages, sink) as a
//! labelled field, checked by the server's validation endpoint as one
//! types, with each problem shown beside the field it concerns.
//!
//! The spec is held as JSON ([`serde_json::Value`]) rather than as a
//! `PipelineSpec`, because a half-typed spec is not a valid one: the form
//! keeps what the user typed, and the server says what is wrong and where.
//! Fields address the spec by the server's own path spelling
//! (`stages[0].workers`, see [`path`]), so an error's path finds its field.

pub mod limit;
pub mod path;

use std::collections::HashMap;

use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use serde_json::{Value, json};

use crate::api;
use crate::i18n::{Lang, t};
use limit::Mode;
use path::{display, dom_id, get, list, number, parent, set};

/// What the form shares with its fields.
#[derive(Debug, Clone, Copy)]
pub struct FormCtx {
    /// The spec being edited.
    pub spec: RwSignal<Value>,
    /// The server's latest verdict: `(path, message)` of each problem.
    pub problems: RwSignal<Vec<(String, String)>>,
    /// Bumped when the form's shape changes (a stage added, a kind
    /// switched): the fields are laid out again from the spec.
    pub shape: RwSignal<u32>,
    /// Paths some visible field shows errors for; the rest are listed
    /// under the form.
    claimed: RwSignal<HashMap<String, u32>>,
}

impl FormCtx {
    /// A form holding `spec`.
    pub fn new(spec: Value) -> Self {
        Self {
            spec: RwSignal::new(spec),
            problems: RwSignal::new(Vec::new()),
            shape: RwSignal::new(0),
            claimed: RwSignal::new(HashMap::new()),
        }
    }

    /// Replaces the whole spec (a template loaded into the form).
    pub fn load(&self, spec: Value) {
        self.spec.set(spec);
        self.shape.update(|n| *n += 1);
    }

    fn claim(&self, path: &str, by: i32) {
        // `try_`: a field's cleanup may run after the form's own signals
        // were disposed with the page.
        self.claimed.try_update(|m| {
            let n = m.entry(path.to_owned()).or_default();
            *n = n.saturating_add_signed(by);
            if *n == 0 {
                m.remove(path);
            }
        });
    }

    fn edit(&self, path: &str, value: Option<Value>) {
        self.spec.update(|v| set(v, path, value));
    }

    /// Lays the form out again, then puts the focus back on `path`'s field.
    fn reshape(&self, keep_focus: &str) {
        self.shape.update(|n| *n += 1);
        let id = dom_id(keep_focus);
        request_animation_frame(move || {
            use wasm_bindgen::JsCast;
            if let Some(el) = document()
                .get_element_by_id(&id)
                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
            {
                let _ = el.focus();
            }
        });
    }
}

/// The spec a new form starts with.
pub fn starter_spec() -> Value {
    json!({
        "name": "my-pipeline",
        "source": {"kind": "synthetic", "count": 10000},
        "stages": [stage_defaults(0)],
        "sink": {"kind": "null"}
    })
}

fn stage_defaults(i: usize) -> Value {
    json!({
        "name": format!("stage{}", i + 1),
        "runtime": "thread",
        "workers": 4,
        "op": op_defaults("sleep")
    })
}

fn source_defaults(kind: &str) -> Value {
    match kind {
        "file" => json!({"kind": "file", "path": ""}),
        "http_ingest" => json!({"kind": "http_ingest"}),
        "tcp" => json!({"kind": "tcp", "bind": "127.0.0.1:9400"}),
        _ => json!({"kind": "synthetic", "count": 10000}),
    }
}

fn op_defaults(kind: &str) -> Value {
    match kind {
        "sleep" | "blocking_sleep" => {
            json!({"kind": kind, "latency": dist_defaults("uniform")})
        }
        "spin" => json!({"kind": "spin", "micros": 200}),
        "filter" => {
            json!({"kind": "filter", "field": "level", "values": ["debug"], "mode": "drop"})
        }
        "http" => json!({"kind": "http", "url": ""}),
        "fail" => json!({"kind": "fail", "share": 0.1}),
        other => json!({ "kind": other }),
    }
}

fn dist_defaults(dist: &str) -> Value {
    match dist {
        "fixed" => json!({"dist": "fixed", "ms": 5.0}),
        "exponential" => json!({"dist": "exponential", "mean_ms": 5.0}),
        "log_normal" => json!({"dist": "log_normal", "median_ms": 5.0, "sigma": 0.5}),
        _ => json!({"dist": "uniform", "min_ms": 1.0, "max_ms": 5.0}),
    }
}

fn sink_defaults(kind: &str) -> Value {
    match kind {
        "file" => json!({"kind": "file", "path": "out.jsonl"}),
        "sqlite" => json!({"kind": "sqlite", "path": "out.db"}),
        "postgres" => json!({"kind": "postgres", "url": "postgres://127.0.0.1/test"}),
        "http" => json!({"kind": "http", "url": ""}),
        _ => json!({"kind": "null"}),
    }
}

/// The server's verdict on a spec in a few words: "valid", or how many
/// problems it has.
pub fn verdict_text<T>(lang: Lang, result: &Result<T, api::ApiError>) -> String {
    match result {
        Ok(_) => t(lang, "valid").to_owned(),
        Err(e) => format!("{} {}", e.fields.len().max(1), t(lang, "problem(s)")),
    }
}

/// How a field is typed in.
#[derive(Debug, Clone, Copy)]
pub enum Input {
    /// Free text.
    Text,
    /// A number (text that is no number is sent as is, for the server to
    /// name); empty leaves the key out so the default applies.
    Number,
    /// Comma-separated words.
    List,
    /// A yes/no box.
    Check,
    /// One of these words (the first is the server's default).
    Select(&'static [&'static str]),
    /// One of these words, on which other fields depend (a stage's
    /// runtime): choosing one lays the form out again.
    Shape(&'static [&'static str]),
    /// One of these words, which reshapes the form: changing it resets the
    /// enclosing object to that choice's defaults.
    Kind(&'static [&'static str], fn(&str) -> Value),
    /// A stage's `workers` or `concurrency`: a number, or "auto" (the
    /// engine chooses) with an optional range, switched by a select before
    /// it (see [`limit`]).
    Limit,
}

/// One labelled input bound to the spec at `path`, with the server's
/// problems about that path (or about `anchor`, the object it belongs to)
/// right beside it.
#[component]
pub fn Field(
    /// The label (translated).
    label: &'static str,
    /// Where in the spec the value lives.
    #[prop(into)]
    path: String,
    /// How it is typed in.
    input: Input,
    /// An enclosing path whose problems this field also shows.
    #[prop(optional, into)]
    anchor: Option<String>,
) -> impl IntoView {
    let ctx = expect_context::<FormCtx>();
    let lang = expect_context::<RwSignal<Lang>>();
    ctx.claim(&path, 1);
    if let Some(a) = &anchor {
        ctx.claim(a, 1);
    }
    {
        let (path, anchor) = (path.clone(), anchor.clone());
        on_cleanup(move || {
            ctx.claim(&path, -1);
            if let Some(a) = &anchor {
                ctx.claim(a, -1);
            }
        });
    }
    let id = dom_id(&path);
    let err_id = format!("{id}-err");
    let current = ctx.spec.with_untracked(|v| display(get(v, &path)));
    let errors = {
        let (path, anchor) = (path.clone(), anchor.clone());
        Memo::new(move |_| {
            ctx.problems.with(|ps| {
                ps.iter()
                    .filter(|(p, _)| *p == path || Some(p) == anchor.as_ref())
                    .map(|(_, m)| m.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
    };
    let invalid = move || !errors.get().is_empty();
    let p = path.clone();
    let control = match input {
        Input::Text | Input::Number | Input::List => {
            // Number fields are numbers to the browser too (its keypad,
            // its steppers); `step="any"` admits fractions such as 0.25.
            let (kind, step) = if matches!(input, Input::Number) {
                ("number", Some("any"))
            } else {
                ("text", None)
            };
            view! {
                <input id=id.clone() type=kind step=step value=current
                    aria-invalid=move || invalid().to_string() aria-describedby=err_id.clone()
                    on:input=move |ev| {
                        let text = event_target_value(&ev);
                        let v = match input {
                            Input::Number => number(&text),
                            Input::List => list(&text),
                            // Text stays, even empty: the server says what
                            // an empty name or path means.
                            _ => Some(Value::String(text)),
                        };
                        ctx.edit(&p, v);
                    } />
            }
            .into_any()
        }
        Input::Limit => limit_control(label, p, id.clone(), err_id.clone(), invalid).into_any(),
        Input::Check => view! {
            <input id=id.clone() type="checkbox" checked=current == "true"
                aria-invalid=move || invalid().to_string() aria-describedby=err_id.clone()
                on:change=move |ev| ctx.edit(&p, Some(Value::Bool(event_target_checked(&ev)))) />
        }
        .into_any(),
        Input::Select(options) | Input::Shape(options) | Input::Kind(options, _) => {
            let chosen = if current.is_empty() {
                options[0].to_owned()
            } else {
                current
            };
            let opts = options
                .iter()
                .map(|o| view! { <option value=*o selected=chosen == *o>{*o}</option> })
                .collect_view();
            view! {
                <select id=id.clone()
                    aria-invalid=move || invalid().to_string() aria-describedby=err_id.clone()
                    on:change=move |ev| {
                        let v = event_target_value(&ev);
                        match input {
                            Input::Kind(_, defaults) => {
                                ctx.edit(parent(&p), Some(defaults(&v)));
                                ctx.reshape(&p);
                            }
                            Input::Shape(_) => {
                                ctx.edit(&p, Some(Value::String(v)));
                                ctx.reshape(&p);
                            }
                            _ => ctx.edit(&p, Some(Value::String(v))),
                        }
                    }>
                    {opts}
                </select>
            }
            .into_any()
        }
    };
    view! {
        <div class="field" class:invalid=invalid data-testid=format!("field-{path}")>
            <label for=id>{move || t(lang.get(), label)}</label>
            {control}
            <span class="field-error" id=err_id data-testid="field-error" data-path=path.clone()>
                {move || errors.get()}
            </span>
        </div>
    }
}

/// The control of an [`Input::Limit`] field at `path`: the fixed/auto
/// select, then the number, or the range's two ends. Switching to auto
/// remembers the number, and switching back gives it back.
fn limit_control(
    label: &'static str,
    path: String,
    id: String,
    err_id: String,
    invalid: impl Fn() -> bool + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let ctx = expect_context::<FormCtx>();
    let lang = expect_context::<RwSignal<Lang>>();
    let path = StoredValue::new(path);
    let read = move || {
        ctx.spec
            .with_untracked(|v| get(v, &path.read_value()).cloned())
    };
    let initial = read();
    let mode = RwSignal::new(limit::mode(initial.as_ref()));
    // The number it had, for a switch to auto and back.
    let remembered = StoredValue::new(initial.filter(|v| limit::mode(Some(v)) == Mode::Fixed));
    let switch = move |ev: leptos::ev::Event| {
        let to = Mode::from_word(&event_target_value(&ev));
        let now = read();
        let next = match to {
            Mode::Auto => {
                if mode.get_untracked() == Mode::Fixed {
                    remembered.set_value(now.clone());
                }
                Some(limit::to_auto(now.as_ref()))
            }
            Mode::Fixed => remembered.with_value(|r| limit::to_fixed(now.as_ref(), r.as_ref())),
        };
        ctx.edit(&path.read_value(), next);
        mode.set(to);
    };
    // The inputs: the number, or the range's ends (`None`: the number).
    let input = move |end: Option<&'static str>, id: String| {
        let now = read();
        let value = match end {
            Some(end) => limit::bound(now.as_ref(), end),
            None => display(now.as_ref()),
        };
        // The ends are named by their own label; the number by the field's.
        let aria = end.map(|e| {
            format!(
                "{} {}",
                t(lang.get_untracked(), label),
                t(lang.get_untracked(), e)
            )
        });
        let placeholder = end.map(|e| t(lang.get_untracked(), e));
        view! {
            <input id=id type="number" step="any" value=value placeholder=placeholder aria-label=aria
                data-testid=end.map(|e| format!("limit-{e}"))
                aria-invalid=move || invalid().to_string() aria-describedby=err_id.clone()
                on:input=move |ev| {
                    let text = event_target_value(&ev);
                    ctx.spec.update(|v| {
                        let p = path.read_value();
                        let next = match end {
                            Some(end) => Some(limit::with_bound(get(v, &p), end, &text)),
                            None => number(&text),
                        };
                        set(v, &p, next);
                    });
                } />
        }
    };
    let inputs = move || match mode.get() {
        Mode::Fixed => input(None, id.clone()).into_any(),
        Mode::Auto => view! {
            {input(Some("min"), id.clone())}
            <span aria-hidden="true">"–"</span>
            {input(Some("max"), format!("{id}-max"))}
        }
        .into_any(),
    };
    let chosen = move |m: Mode| mode.get_untracked() == m;
    let word = move |m: Mode| t(lang.get_untracked(), m.as_str());
    view! {
        <div class="limit-row" data-mode=move || mode.get().as_str()>
            <select data-testid="limit-mode" on:change=switch
                aria-label=format!("{}: {}", t(lang.get_untracked(), label), t(lang.get_untracked(), "fixed or auto"))
                title="fixed: this many; auto: the engine finds the knee and follows it, within min–max">
                <option value="fixed" selected=chosen(Mode::Fixed)>{word(Mode::Fixed)}</option>
                <option value="auto" selected=chosen(Mode::Auto)>{word(Mode::Auto)}</option>
            </select>
            {inputs}
        </div>
    }
}

/// The source's kind and the parameters of that kind.
#[component]
fn SourceFields() -> impl IntoView {
    let ctx = expect_context::<FormCtx>();
    let kind = ctx.spec.with_untracked(|v| display(get(v, "source.kind")));
    let params = match kind.as_str() {
        "file" => view! {
            <Field label="path" path="source.path" input=Input::Text />
            <Field label="follow" path="source.follow" input=Input::Check />
        }
        .into_any(),
        "http_ingest" => view! { <Field label="bind" path="source.bind" input=Input::Text /> }.into_any(),
        "tcp" => view! {
            <Field label="bind" path="source.bind" input=Input::Text />
            <Field label="connections" path="source.connections" input=Input::Number />
        }
        .into_any(),
        _ => view! {
            <Field label="count" path="source.count" input=Input::Number />
            <Field label="rate/s" path="source.rate" input=Input::Number />
            <Field label="duration ms" path="source.duration_ms" input=Input::Number />
            <Field label="payload" path="source.payload" input=Input::Select(&["log_line", "counter"]) />
            <Field label="malformed share" path="source.malformed_share" input=Input::Number />
        }
        .into_any(),
    };
    view! {
        <fieldset class="group" data-testid="form-source">
            <legend>{crate::pages::tr("Source")}</legend>
            <Field label="kind" path="source.kind" anchor="source"
                input=Input::Kind(&["synthetic", "file", "http_ingest", "tcp"], source_defaults) />
            {params}
        </fieldset>
    }
}

/// One stage: its runtime and queue, its operation, and its resilience.
#[component]
fn StageFields(index: usize) -> impl IntoView {
    let ctx = expect_context::<FormCtx>();
    let at = move |rest: &str| format!("stages[{index}].{rest}");
    let read = move |rest: &str| ctx.spec.with_untracked(|v| display(get(v, &at(rest))));
    let is_async = read("runtime") == "async";
    let op = read("op.kind");
    let params = match op.as_str() {
        "sleep" | "blocking_sleep" => {
            let dist = read("op.latency.dist");
            let dist_fields = match dist.as_str() {
                "fixed" => view! { <Field label="ms" path=at("op.latency.ms") input=Input::Number /> }.into_any(),
                "exponential" => view! { <Field label="mean ms" path=at("op.latency.mean_ms") input=Input::Number /> }.into_any(),
                "log_normal" => view! {
                    <Field label="median ms" path=at("op.latency.median_ms") input=Input::Number />
                    <Field label="sigma" path=at("op.latency.sigma") input=Input::Number />
                }
                .into_any(),
                _ => view! {
                    <Field label="min ms" path=at("op.latency.min_ms") input=Input::Number />
                    <Field label="max ms" path=at("op.latency.max_ms") input=Input::Number />
                }
                .into_any(),
            };
            view! {
                <Field label="latency" path=at("op.latency.dist") anchor=at("op.latency")
                    input=Input::Kind(&["uniform", "fixed", "exponential", "log_normal"], dist_defaults) />
                {dist_fields}
            }
            .into_any()
        }
        "spin" => view! { <Field label="micros" path=at("op.micros") input=Input::Number /> }.into_any(),
        "parse_json" => view! { <Field label="required fields" path=at("op.require") input=Input::List /> }.into_any(),
        "filter" => view! {
            <Field label="field" path=at("op.field") input=Input::Text />
            <Field label="values" path=at("op.values") input=Input::List />
            <Field label="mode" path=at("op.mode") input=Input::Select(&["keep", "drop"]) />
        }
        .into_any(),
        "http" => view! {
            <Field label="method" path=at("op.method") input=Input::Select(&["GET", "POST"]) />
            <Field label="url" path=at("op.url") input=Input::Text />
        }
        .into_any(),
        "fail" => view! {
            <Field label="share" path=at("op.share") input=Input::Number />
            <Field label="retryable" path=at("op.retryable") input=Input::Check />
        }
        .into_any(),
        _ => view! { <p class="hint">{crate::pages::tr("Its parameters are set in the TOML editor.")}</p> }.into_any(),
    };
    let remove = move |_| {
        ctx.spec
            .update(|v| set(v, &format!("stages[{index}]"), None));
        ctx.reshape("add-stage");
    };
    view! {
        <fieldset class="group stage" data-testid=format!("form-stage-{index}")>
            <legend>{crate::pages::tr("Stage")}" "{index + 1}</legend>
            <Field label="name" path=at("name") anchor=format!("stages[{index}]") input=Input::Text />
            <Field label="runtime" path=at("runtime") input=Input::Shape(&["thread", "async"]) />
            <Field label="workers" path=at("workers") input=Input::Limit />
            {is_async.then(|| view! { <Field label="concurrency" path=at("concurrency") input=Input::Limit /> })}
            <Field label="capacity" path=at("queue.capacity") anchor=at("queue") input=Input::Number />
            <Field label="when full" path=at("queue.when_full") input=Input::Select(&["block", "drop_newest", "drop_oldest", "reject"]) />
            <Field label="op" path=at("op.kind") anchor=at("op")
                input=Input::Kind(&["sleep", "blocking_sleep", "spin", "parse_json", "filter", "map", "http", "fail"], op_defaults) />
            {params}
            <Field label="timeout ms" path=at("timeout_ms") input=Input::Number />
            <Field label="retries" path=at("retry.max_attempts") anchor=at("retry") input=Input::Number />
            <Field label="jitter" path=at("retry.jitter") input=Input::Select(&["full", "equal", "none"]) />
            <Field label="rate limit/s" path=at("rate_limit") input=Input::Number />
            <Field label="on error" path=at("on_error") input=Input::Select(&["dead_letter", "drop", "fail_job"]) />
            <button type="button" class="secondary" data-testid="remove-stage" on:click=remove>
                {crate::pages::tr("Remove stage")}
            </button>
        </fieldset>
    }
}

/// The sink's kind, its parameters and its batching.
#[component]
fn SinkFields() -> impl IntoView {
    let ctx = expect_context::<FormCtx>();
    let kind = ctx.spec.with_untracked(|v| display(get(v, "sink.kind")));
    let params = match kind.as_str() {
        "file" => view! { <Field label="path" path="sink.path" input=Input::Text /> }.into_any(),
        "sqlite" => view! {
            <Field label="path" path="sink.path" input=Input::Text />
            <Field label="table" path="sink.table" input=Input::Text />
            <Field label="key" path="sink.key" input=Input::Text />
        }
        .into_any(),
        "postgres" => view! {
            <Field label="url" path="sink.url" input=Input::Text />
            <Field label="table" path="sink.table" input=Input::Text />
            <Field label="key" path="sink.key" input=Input::Text />
        }
        .into_any(),
        "http" => view! { <Field label="url" path="sink.url" input=Input::Text /> }.into_any(),
        _ => ().into_any(),
    };
    let batches = !matches!(kind.as_str(), "" | "null");
    view! {
        <fieldset class="group" data-testid="form-sink">
            <legend>{crate::pages::tr("Sink")}</legend>
            <Field label="kind" path="sink.kind" anchor="sink"
                input=Input::Kind(&["null", "file", "sqlite", "postgres", "http"], sink_defaults) />
            {params}
            {batches.then(|| view! {
                <Field label="batch size" path="sink.batch.size" anchor="sink.batch" input=Input::Number />
                <Field label="linger ms" path="sink.batch.linger_ms" input=Input::Number />
            })}
        </fieldset>
    }
}

/// The whole form: name, source, stages, sink; live validation; start.
/// The page's origin (`http://host:port`), for command lines that reach
/// this server.
fn origin() -> String {
    window().location().origin().unwrap_or_default()
}

/// A text as one shell word in single quotes.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The spec as a `curl` call of `POST /api/v1/jobs` and as a `queuelab
/// jobs start` line, both against `origin`, the token from
/// `$QUEUELAB_TOKEN`.
pub fn export_lines(origin: &str, spec: &Value) -> (String, String) {
    let json = shell_quote(&spec.to_string());
    let curl = format!(
        "curl -X POST {origin}/api/v1/jobs \\\n  -H 'content-type: application/json' \\\n  -H \"authorization: Bearer $QUEUELAB_TOKEN\" \\\n  --data {json}"
    );
    let cli =
        format!("echo {json} > spec.json\nQUEUELAB_URL={origin} queuelab jobs start spec.json");
    (curl, cli)
}

#[component]
pub fn SpecForm(
    /// The form's state (kept by the page, so a template can be loaded).
    ctx: FormCtx,
    /// Called with the created job's id.
    on_started: Callback<String>,
) -> impl IntoView {
    provide_context(ctx);
    let verdict = RwSignal::new(String::new());
    // The spec as the server reads it, in TOML, from the latest validation
    // (the dashboard carries no TOML writer of its own).
    let toml = RwSignal::new(String::new());
    let lang = expect_context::<RwSignal<Lang>>();
    let checking = StoredValue::new(0_u64);
    // Ask the server about the spec a moment after each edit; answers to
    // older edits are ignored.
    Effect::new(move |_| {
        let spec = ctx.spec.get();
        let ticket = checking.get_value() + 1;
        checking.set_value(ticket);
        leptos::task::spawn_local(async move {
            // `try_`: the page may have been left meanwhile.
            TimeoutFuture::new(300).await;
            if checking.try_get_value() != Some(ticket) {
                return;
            }
            let result = api::post_spec::<Value>("/api/v1/validate", &spec).await;
            if checking.try_get_value() != Some(ticket) {
                return;
            }
            verdict.try_set(verdict_text(lang.get_untracked(), &result));
            match result {
                Ok(valid) => {
                    ctx.problems.try_set(Vec::new());
                    toml.try_set(valid["toml"].as_str().unwrap_or_default().to_owned());
                }
                Err(e) => {
                    ctx.problems.try_set(if e.fields.is_empty() {
                        vec![(String::new(), e.message)]
                    } else {
                        e.fields
                    });
                }
            }
        });
    });
    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let spec = ctx.spec.get_untracked();
        leptos::task::spawn_local(async move {
            match api::post_spec::<api::Created>("/api/v1/jobs", &spec).await {
                Ok(d) => on_started.run(d.id),
                Err(e) => {
                    verdict.try_set(e.message.clone());
                    ctx.problems.try_set(e.fields);
                }
            }
        });
    };
    let add_stage = move |_| {
        ctx.spec.update(|v| {
            let n = v["stages"].as_array().map_or(0, Vec::len);
            match v["stages"].as_array_mut() {
                Some(a) => a.push(stage_defaults(n)),
                None => v["stages"] = json!([stage_defaults(0)]),
            }
        });
        ctx.reshape("add-stage");
    };
    let unclaimed = move || {
        let claimed = ctx.claimed.get();
        ctx.problems
            .get()
            .into_iter()
            .filter(|(p, _)| !claimed.contains_key(p))
            .map(|(p, m)| view! { <li data-testid="form-problem"><code>{p}</code>" "{m}</li> })
            .collect_view()
    };
    let body = move || {
        ctx.shape.track();
        let stages = ctx
            .spec
            .with_untracked(|v| v["stages"].as_array().map_or(0, Vec::len));
        view! {
            <Field label="name" path="name" input=Input::Text />
            <SourceFields />
            {(0..stages).map(|i| view! { <StageFields index=i /> }).collect_view()}
            <button type="button" class="secondary" id="f-add-stage" data-testid="add-stage" on:click=add_stage>
                {crate::pages::tr("Add stage")}
            </button>
            <SinkFields />
        }
    };
    view! {
        <form class="card spec-form" data-testid="spec-form" on:submit=start novalidate=true>
            <h2>{crate::pages::tr("Build a pipeline")}</h2>
            {body}
            <ul class="problems">{unclaimed}</ul>
            <div class="actions">
                <button type="submit" data-testid="form-start">{crate::pages::tr("Start")}</button>
                <span class="hint" role="status" data-testid="form-verdict">{move || verdict.get()}</span>
            </div>
            <details class="export" data-testid="export">
                <summary>{crate::pages::tr("Start it from a script")}</summary>
                <p class="hint">{crate::pages::tr("The same spec, as the REST API and the CLI take it:")}</p>
                <pre data-testid="export-curl">{move || export_lines(&origin(), &ctx.spec.get()).0}</pre>
                <pre data-testid="export-cli">{move || export_lines(&origin(), &ctx.spec.get()).1}</pre>
                <p class="hint">{crate::pages::tr("As a spec file (every default filled in), for queuelab run or the editor:")}</p>
                <pre data-testid="export-toml">{move || toml.get()}</pre>
            </details>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_lines_carry_the_spec_through_a_real_shell_unchanged() {
        let spec =
            serde_json::json!({"name": "it's-mine", "source": {"kind": "synthetic", "count": 5}});
        let (curl, cli) = export_lines("http://127.0.0.1:9000", &spec);
        assert!(
            curl.starts_with("curl -X POST http://127.0.0.1:9000/api/v1/jobs"),
            "{curl}"
        );
        assert!(cli.ends_with("QUEUELAB_URL=http://127.0.0.1:9000 queuelab jobs start spec.json"));
        // The quoted spec is one shell word that the shell turns back into
        // exactly the JSON, even with a quote inside.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote(&spec.to_string())))
            .output()
            .unwrap();
        let back: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(back, spec);
    }
}
