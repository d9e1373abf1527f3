//! The diagnosis in words: what the recent snapshots show.

use crate::i18n::t;

/// Snapshots the diagnosis reads (about two seconds at the default rate).
pub(super) const DIAGNOSIS_WINDOW: usize = 8;

/// A finding of the diagnosis in words.
pub fn finding_text(lang: crate::i18n::Lang, f: &shared::metrics::Finding) -> String {
    use shared::metrics::Finding;
    match f {
        Finding::Bottleneck { stage, held_up } if held_up.is_empty() => {
            t(lang, "Bottleneck: `{stage}` sets the pace of the pipeline.").replace("{stage}", stage)
        }
        Finding::Bottleneck { stage, held_up } => t(
            lang,
            "Bottleneck: `{stage}` sets the pace; it holds up {held}. Give it more workers or make its work cheaper.",
        )
        .replace("{stage}", stage)
        .replace("{held}", &held_up.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")),
        Finding::BlockingCall { stages, lag_ms } => t(
            lang,
            "Blocking call: the event loop stalls about {lag} ms at a time{inside}. Every async stage of the job waits; move the call to a thread stage or await it.",
        )
        .replace("{lag}", &crate::format::count(*lag_ms as i64))
        .replace(
            "{inside}",
            &if stages.is_empty() {
                String::new()
            } else {
                format!(" ({})", stages.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))
            },
        ),
        Finding::UnboundedGrowth { stage, grew_by } => t(
            lang,
            "Memory risk: the unbounded queue in front of `{stage}` only grows (+{n} items in the last few seconds). Bound it, with `when_full = \"block\"` to slow the producer.",
        )
        .replace("{stage}", stage)
        .replace("{n}", &crate::format::count(*grew_by as i64)),
    }
}
