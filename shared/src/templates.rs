//! Built-in pipeline specs: the article's scenarios, ready to run.
//!
//! Each template is a TOML file under `shared/templates/`, compiled into
//! the binary; its `description` explains what it shows.

use crate::spec::{PipelineSpec, SpecError, SpecFormat};

/// A built-in spec, by name.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// Name used on the command line and in the API.
    pub name: &'static str,
    /// The spec as TOML.
    pub toml: &'static str,
}

impl Template {
    /// The parsed, validated spec.
    pub fn spec(&self) -> Result<PipelineSpec, SpecError> {
        PipelineSpec::parse(self.toml, SpecFormat::Toml)
    }

    /// First sentence of the description, for lists.
    pub fn summary(&self) -> String {
        let spec = self.spec().ok();
        let description = spec.and_then(|s| s.description).unwrap_or_default();
        match description.find(". ") {
            Some(i) => description[..=i].to_owned(),
            None => description,
        }
    }
}

macro_rules! template {
    ($name:literal) => {
        Template {
            name: $name,
            toml: include_str!(concat!("../templates/", $name, ".toml")),
        }
    };
}

/// Every built-in template, in the order the article meets them.
pub const ALL: &[Template] = &[
    template!("thread-io-pool"),
    template!("async-fanout"),
    template!("async-to-thread-bridge"),
    template!("cpu-on-threads"),
    template!("blocking-in-async"),
    template!("unbounded-queue"),
    template!("log-clean-threads"),
    template!("log-clean-async"),
    template!("backpressure"),
    template!("when-full"),
    template!("timeouts"),
    template!("retries"),
    template!("rate-limit"),
    template!("graceful-shutdown"),
    template!("non-idempotent-writes"),
    template!("auto-knee"),
];

/// Looks a template up by name.
pub fn get(name: &str) -> Option<&'static Template> {
    ALL.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_validates_and_is_named_after_its_file() {
        for t in ALL {
            let spec = t.spec().unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert_eq!(spec.name, t.name);
            assert!(
                spec.description.as_deref().is_some_and(|d| d.len() > 100),
                "{}",
                t.name
            );
            assert!(!t.summary().is_empty());
        }
        assert!(get("thread-io-pool").is_some());
        assert!(get("nope").is_none());
    }
}
