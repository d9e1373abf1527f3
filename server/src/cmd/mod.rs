//! The headless verbs of the `queuelab` binary: `run`, `sweep`, `soak`,
//! `templates`, `validate`. They drive the engine directly, with no server;
//! `worker` runs broker stages for one.

pub mod client;
pub mod lab;
pub mod run;
pub mod worker;

use std::path::Path;

use anyhow::{Context, bail};
use shared::spec::{PipelineSpec, SpecFormat};
use shared::{lessons, templates};

/// Loads a spec from a file (`.toml` or `.json`) or, when no such file
/// exists, a built-in template of that name. Returns every problem found.
pub fn load_spec(arg: &str) -> anyhow::Result<PipelineSpec> {
    load(arg).map(|(spec, _)| spec)
}

/// [`load_spec`], also saying whether the spec is a built-in template
/// (whose relative paths belong in the data directory, not wherever the
/// command happens to run).
pub fn load(arg: &str) -> anyhow::Result<(PipelineSpec, bool)> {
    if let Some(id) = arg.strip_prefix("lesson:") {
        return Ok((lesson_spec(id)?, true));
    }
    let path = Path::new(arg);
    let (text, format, what, template) = if path.is_file() {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {arg}"))?;
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => SpecFormat::Json,
            Some(ext) if ext.eq_ignore_ascii_case("toml") => SpecFormat::Toml,
            _ => SpecFormat::sniff(&text),
        };
        (text, format, arg.to_owned(), false)
    } else if let Some(t) = templates::get(arg) {
        (
            t.toml.to_owned(),
            SpecFormat::Toml,
            format!("template {arg}"),
            true,
        )
    } else {
        let names: Vec<&str> = templates::ALL.iter().map(|t| t.name).collect();
        bail!(
            "no file or template named `{arg}`\n  templates: {}",
            names.join(", ")
        );
    };
    let spec = PipelineSpec::parse(&text, format).map_err(|e| {
        let lines: Vec<String> = e.errors.iter().map(|f| format!("  {f}")).collect();
        anyhow::anyhow!(
            "{what} has {} problem{}:\n{}",
            e.errors.len(),
            if e.errors.len() == 1 { "" } else { "s" },
            lines.join("\n")
        )
    })?;
    Ok((spec, template))
}

/// The spec of `lesson:ID` or `lesson:ID/VARIANT`.
pub fn lesson_spec(id: &str) -> anyhow::Result<PipelineSpec> {
    let (id, variant) = match id.split_once('/') {
        Some((id, v)) => (id, Some(v)),
        None => (id, None),
    };
    let Some(lesson) = lessons::get(id) else {
        bail!("no lesson `{id}`; see `queuelab lessons`");
    };
    lesson
        .spec(variant)
        .map_err(|e| anyhow::anyhow!("lesson {id}: {e}"))
}

/// `queuelab lessons`: each lesson with what to do and what to watch; with
/// an id, the lesson in full and how to run it and its variants.
pub fn list_lessons(id: Option<&str>, zh: bool) -> anyhow::Result<String> {
    use std::fmt::Write;
    let pick = |t: &lessons::Text| if zh { t.zh } else { t.en };
    let mut out = String::new();
    match id {
        None => {
            for (i, l) in lessons::ALL.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{:>2}. {:<28} {} {}",
                    i + 1,
                    l.id,
                    l.section,
                    pick(&l.title)
                );
                let _ = writeln!(out, "    do:    {}", pick(&l.todo));
                let _ = writeln!(out, "    watch: {}", pick(&l.signal));
            }
            let _ = writeln!(
                out,
                "
run one: queuelab run lesson:ID   (details: queuelab lessons ID)"
            );
        }
        Some(id) => {
            let Some(l) = lessons::get(id) else {
                bail!("no lesson `{id}`; see `queuelab lessons`");
            };
            let _ = writeln!(
                out,
                "{} ({})

{}
",
                pick(&l.title),
                l.section,
                pick(&l.explain)
            );
            let _ = writeln!(
                out,
                "do:    {}
watch: {}
",
                pick(&l.todo),
                pick(&l.signal)
            );
            let _ = writeln!(out, "run:   queuelab run lesson:{}", l.id);
            for v in l.variants {
                let _ = writeln!(
                    out,
                    "       queuelab run lesson:{}/{}   ({})",
                    l.id,
                    v.id,
                    pick(&v.label)
                );
            }
        }
    }
    Ok(out)
}

/// `queuelab templates`: one line per built-in template.
pub fn list_templates() -> String {
    let width = templates::ALL
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0);
    templates::ALL
        .iter()
        .map(|t| format!("{:width$}  {}\n", t.name, t.summary()))
        .collect()
}

/// `queuelab validate`: a one-line summary of a valid spec.
pub fn describe(spec: &PipelineSpec) -> String {
    let stages: Vec<String> = spec
        .stages
        .iter()
        .map(|s| format!("{} ({} ×{})", s.name, s.runtime, s.workers))
        .collect();
    format!(
        "valid: `{}` — source {} → {} → sink {}",
        spec.name,
        spec.source.kind(),
        if stages.is_empty() {
            "(no stages)".to_owned()
        } else {
            stages.join(" → ")
        },
        spec.sink.kind()
    )
}
