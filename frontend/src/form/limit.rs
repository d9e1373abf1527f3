//! A stage's `workers` or `concurrency` as the form edits it: a fixed
//! number, or `"auto"` with an optional range (`{ min, max }`), as the spec
//! spells a `shared::spec::Limit`. A spec loaded with `"auto"` stays
//! automatic: the form never turns it into a number unless the user
//! chooses "fixed".

use serde_json::{Map, Value};

use super::path::{display, number};

/// Fixed, or chosen by the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A number (or nothing yet: the server's default).
    Fixed,
    /// `"auto"` or `{ min, max }`.
    Auto,
}

impl Mode {
    /// The word of the form's select.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Fixed => "fixed",
            Mode::Auto => "auto",
        }
    }

    /// The mode the select's word names.
    pub fn from_word(word: &str) -> Self {
        if word == "auto" {
            Mode::Auto
        } else {
            Mode::Fixed
        }
    }
}

/// Whether the value is automatic: the word `"auto"` or a range object.
/// Anything else (a number, text the user typed that is no number, nothing)
/// is edited as a fixed number.
pub fn mode(v: Option<&Value>) -> Mode {
    match v {
        Some(Value::String(s)) if s == "auto" => Mode::Auto,
        Some(Value::Object(_)) => Mode::Auto,
        _ => Mode::Fixed,
    }
}

/// One end of an automatic range as the form shows it (`min` or `max`);
/// empty when the range leaves it to the engine.
pub fn bound(v: Option<&Value>, end: &str) -> String {
    match v {
        Some(Value::Object(o)) => display(o.get(end)),
        _ => String::new(),
    }
}

/// The value after switching to automatic: kept as it is when already
/// automatic, else `"auto"` over the whole span.
pub fn to_auto(v: Option<&Value>) -> Value {
    match v {
        Some(v) if mode(Some(v)) == Mode::Auto => v.clone(),
        _ => Value::String("auto".into()),
    }
}

/// The value after switching to fixed: kept when already fixed; else the
/// number the field had before it was made automatic (`remembered`), or
/// the range's low end, or nothing (the server's default).
pub fn to_fixed(v: Option<&Value>, remembered: Option<&Value>) -> Option<Value> {
    match v {
        Some(v) if mode(Some(v)) == Mode::Fixed => Some(v.clone()),
        None => None,
        Some(v) => remembered
            .cloned()
            .or_else(|| v.get("min").filter(|m| m.is_number()).cloned()),
    }
}

/// The automatic value after one end of its range was typed (`text`
/// empty: that end is left to the engine). A range with neither end is
/// plain `"auto"`.
pub fn with_bound(v: Option<&Value>, end: &str, text: &str) -> Value {
    let mut range = match v {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    match number(text) {
        Some(n) => {
            range.insert(end.to_owned(), n);
        }
        None => {
            range.remove(end);
        }
    }
    if range.is_empty() {
        Value::String("auto".into())
    } else {
        Value::Object(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::spec::{AutoRange, Limit};

    /// What the engine reads from the form's value.
    fn limit(v: &Value) -> Limit {
        serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    #[test]
    fn auto_values_stay_auto_and_numbers_stay_numbers() {
        assert_eq!(mode(Some(&json!("auto"))), Mode::Auto);
        assert_eq!(mode(Some(&json!({"min": 2, "max": 32}))), Mode::Auto);
        assert_eq!(mode(Some(&json!({}))), Mode::Auto);
        assert_eq!(mode(Some(&json!(8))), Mode::Fixed);
        assert_eq!(mode(Some(&json!("lots"))), Mode::Fixed, "typed text");
        assert_eq!(mode(None), Mode::Fixed);
        assert_eq!(bound(Some(&json!({"min": 2, "max": 32})), "min"), "2");
        assert_eq!(bound(Some(&json!({"max": 32})), "min"), "");
        assert_eq!(bound(Some(&json!("auto")), "max"), "");
        assert_eq!(Mode::from_word(Mode::Auto.as_str()), Mode::Auto);
        assert_eq!(Mode::from_word(Mode::Fixed.as_str()), Mode::Fixed);
    }

    #[test]
    fn a_spec_with_auto_round_trips_through_the_form() {
        // A template's spec, as the server sends it, loaded into the form.
        let spec = shared::spec::PipelineSpec::parse(
            "name = \"k\"\nsource = { kind = \"synthetic\", count = 10 }\n\
             [[stages]]\nname = \"a\"\nworkers = \"auto\"\nop = { kind = \"spin\", micros = 1 }\n\
             [[stages]]\nname = \"b\"\nruntime = \"async\"\nworkers = 4\nconcurrency = { min = 2, max = 64 }\nop = { kind = \"spin\", micros = 1 }\n",
            shared::spec::SpecFormat::Toml,
        )
        .unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        let workers = &v["stages"][0]["workers"];
        let concurrency = &v["stages"][1]["concurrency"];
        assert_eq!(mode(Some(workers)), Mode::Auto);
        assert_eq!(mode(Some(concurrency)), Mode::Auto);
        assert_eq!(mode(Some(&v["stages"][1]["workers"])), Mode::Fixed);
        assert_eq!(bound(Some(concurrency), "max"), "64");
        // Nothing the form does to other fields changes them; switching to
        // auto again keeps the range.
        assert_eq!(to_auto(Some(concurrency)), *concurrency);
        let back: shared::spec::PipelineSpec = serde_json::from_value(v).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn switching_modes_and_typing_a_range_give_what_the_engine_reads() {
        // Fixed 4 → auto → a range typed → fixed again: the 4 comes back.
        let four = json!(4);
        let auto = to_auto(Some(&four));
        assert_eq!(limit(&auto), Limit::AUTO);
        let max = with_bound(Some(&auto), "max", "32");
        assert_eq!(max, json!({"max": 32}));
        let both = with_bound(Some(&max), "min", " 2 ");
        assert_eq!(
            limit(&both),
            Limit::Auto(AutoRange {
                min: Some(2),
                max: Some(32)
            })
        );
        assert_eq!(to_fixed(Some(&both), Some(&four)), Some(json!(4)));
        // Without a remembered number, the range's low end; without one,
        // the server's default.
        assert_eq!(to_fixed(Some(&both), None), Some(json!(2)));
        assert_eq!(to_fixed(Some(&json!("auto")), None), None);
        assert_eq!(to_fixed(Some(&four), None), Some(json!(4)));
        assert_eq!(to_fixed(None, Some(&four)), None);
        // Emptying both ends leaves plain "auto".
        let cleared = with_bound(Some(&both), "min", "");
        let cleared = with_bound(Some(&cleared), "max", " ");
        assert_eq!(cleared, json!("auto"));
        // Text that is no number goes to the server as typed, which names it.
        assert_eq!(with_bound(Some(&auto), "min", "x"), json!({"min": "x"}));
    }
}
