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

#[cfg(test)]
mod tests {
    use super::duration_ms;

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
