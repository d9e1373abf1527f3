//! Pure formatting helpers, kept free of the DOM so they test natively.

/// A compact human duration: `950ms`, `42s`, `3m 05s`, `2h 07m`, `3d 04h`.
pub fn duration_ms(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Microseconds, in the unit that reads best: `950µs`, `1.2ms`, `3.40s`.
pub fn micros(v: u64) -> String {
    match v {
        0..1_000 => format!("{v}µs"),
        1_000..1_000_000 => format!("{:.1}ms", v as f64 / 1e3),
        _ => format!("{:.2}s", v as f64 / 1e6),
    }
}

/// A wall-clock time (milliseconds since the Unix epoch) in the browser's
/// own time zone and language; `—` when unknown.
pub fn local_time(ms: u64) -> String {
    if ms == 0 {
        return "—".into();
    }
    #[cfg(target_arch = "wasm32")]
    {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
        String::from(date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        format!("{ms}")
    }
}

/// A count with its thousands grouped, as both interface languages write
/// them (`12,345`; Chinese groups by thousands too in figures).
pub fn count(n: impl Into<i128>) -> String {
    let n: i128 = n.into();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A chart figure that is usually a count: whole numbers grouped
/// (`12,000`), a fraction (an axis tick between 0 and 1) with one decimal.
pub fn figure(x: f64) -> String {
    if !x.is_finite() {
        "—".into()
    } else if (x - x.round()).abs() < 1e-9 {
        count(x.round() as i128)
    } else {
        format!("{x:.1}")
    }
}

/// Items per second, compact in the language's own units: `950/s`,
/// `12.3k/s`, `1.25M/s`; in Chinese `950/秒`, `1.2万/秒`, `1.25亿/秒`.
pub fn rate(x: f64, lang: crate::i18n::Lang) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    match lang {
        crate::i18n::Lang::En => match x {
            x if x >= 1e6 => format!("{:.2}M/s", x / 1e6),
            x if x >= 1e4 => format!("{:.1}k/s", x / 1e3),
            x => format!("{x:.0}/s"),
        },
        crate::i18n::Lang::Zh => match x {
            x if x >= 1e8 => format!("{:.2}亿/秒", x / 1e8),
            x if x >= 1e4 => format!("{:.1}万/秒", x / 1e4),
            x => format!("{x:.0}/秒"),
        },
    }
}

/// Prose split at its backticks: `(is_code, text)` runs, so the page can
/// set `runtime = "thread"` in code type. An unmatched backtick is kept
/// as text.
pub fn code_spans(text: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        let Some(len) = rest[open + 1..].find('`') else {
            break;
        };
        if open > 0 {
            out.push((false, rest[..open].to_owned()));
        }
        out.push((true, rest[open + 1..open + 1 + len].to_owned()));
        rest = &rest[open + len + 2..];
    }
    if !rest.is_empty() {
        out.push((false, rest.to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{code_spans, count, duration_ms, rate};

    #[test]
    fn backticks_mark_inline_code() {
        assert_eq!(
            code_spans("set `runtime = \"thread\"` and `id`."),
            vec![
                (false, "set ".into()),
                (true, "runtime = \"thread\"".into()),
                (false, " and ".into()),
                (true, "id".into()),
                (false, ".".into()),
            ]
        );
        assert_eq!(code_spans("no code"), vec![(false, "no code".into())]);
        assert_eq!(code_spans("a ` b"), vec![(false, "a ` b".into())]);
        assert!(code_spans("").is_empty());
    }
    use crate::i18n::Lang;

    #[test]
    fn figures_keep_their_fractions() {
        assert_eq!(super::figure(0.5), "0.5");
        assert_eq!(super::figure(12_000.0), "12,000");
        assert_eq!(super::figure(0.0), "0");
    }

    #[test]
    fn counts_group_thousands() {
        assert_eq!(count(0u64), "0");
        assert_eq!(count(999u64), "999");
        assert_eq!(count(1_000u64), "1,000");
        assert_eq!(count(1_234_567u64), "1,234,567");
        assert_eq!(count(-12_345i64), "-12,345");
    }

    #[test]
    fn rates_use_each_languages_units() {
        assert_eq!(rate(950.0, Lang::En), "950/s");
        assert_eq!(rate(12_345.0, Lang::En), "12.3k/s");
        assert_eq!(rate(1_250_000.0, Lang::En), "1.25M/s");
        assert_eq!(rate(950.0, Lang::Zh), "950/秒");
        assert_eq!(rate(12_345.0, Lang::Zh), "1.2万/秒");
        assert_eq!(rate(125_000_000.0, Lang::Zh), "1.25亿/秒");
        assert_eq!(rate(f64::NAN, Lang::En), "—");
    }

    #[test]
    fn picks_the_two_largest_units() {
        assert_eq!(duration_ms(0), "0ms");
        assert_eq!(duration_ms(999), "999ms");
        assert_eq!(duration_ms(1_000), "1s");
        assert_eq!(duration_ms(59_999), "59s");
        assert_eq!(duration_ms(65_000), "1m 05s");
        assert_eq!(duration_ms(3_600_000 + 7 * 60_000), "1h 07m");
        assert_eq!(duration_ms(86_400_000 * 3 + 4 * 3_600_000), "3d 04h");
    }
}
