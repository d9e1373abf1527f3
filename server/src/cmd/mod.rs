//! The headless verbs of the `queuelab` binary: `run`, `templates`,
//! `validate`. They drive the engine directly, with no server.

pub mod client;
pub mod run;

use std::path::Path;

use anyhow::{Context, bail};
use shared::spec::{PipelineSpec, SpecFormat};
use shared::templates;

/// Loads a spec from a file (`.toml` or `.json`) or, when no such file
/// exists, a built-in template of that name. Returns every problem found.
pub fn load_spec(arg: &str) -> anyhow::Result<PipelineSpec> {
    load(arg).map(|(spec, _)| spec)
}

/// [`load_spec`], also saying whether the spec is a built-in template
/// (whose relative paths belong in the data directory, not wherever the
/// command happens to run).
pub fn load(arg: &str) -> anyhow::Result<(PipelineSpec, bool)> {
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
