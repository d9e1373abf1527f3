//! Interface text in English and Chinese (the article's readers), switched
//! in Settings and remembered by the browser. Data (job states, stage
//! names, figures) is shown as the server sends it.

/// An interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// 简体中文.
    Zh,
}

/// Key of the chosen language in `localStorage`.
pub const LANG_KEY: &str = "queuelab.lang";

impl Lang {
    /// The stored choice, English by default.
    pub fn stored() -> Self {
        let stored = web_sys::window()
            .and_then(|w| w.local_storage().ok().flatten())
            .and_then(|s| s.get_item(LANG_KEY).ok().flatten());
        match stored.as_deref() {
            Some("zh") => Lang::Zh,
            _ => Lang::En,
        }
    }

    /// Remembers this choice.
    pub fn store(self) {
        if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
            let _ = s.set_item(LANG_KEY, self.code());
        }
    }

    /// `en` or `zh`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
}

/// The text for `key` (the English text) in `lang`.
pub fn t(lang: Lang, key: &'static str) -> &'static str {
    if lang == Lang::En {
        return key;
    }
    match key {
        "Jobs" => "任务",
        "New job" => "新建任务",
        "History" => "历史",
        "Settings" => "设置",
        "Start" => "启动",
        "Validate" => "校验",
        "Drain" => "排空停止",
        "Abort" => "立即中止",
        "Apply" => "应用",
        "Save" => "保存",
        "Name" => "名称",
        "Template" => "模板",
        "State" => "状态",
        "Throughput" => "吞吐",
        "Elapsed" => "耗时",
        "Sunk / produced" => "写入 / 生产",
        "Produced" => "生产",
        "Sunk" => "写入",
        "Dead letters" => "死信",
        "Leftovers" => "遗留",
        "API token" => "API 令牌",
        "Language" => "语言",
        "Write a spec (TOML)" => "编写规格（TOML）",
        "throughput" => "吞吐",
        "items queued" => "排队数",
        "end-to-end p99" => "端到端 P99",
        "memory (RSS)" => "内存（RSS）",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_is_the_key_and_chinese_covers_the_navigation() {
        assert_eq!(t(Lang::En, "Jobs"), "Jobs");
        for key in ["Jobs", "New job", "History", "Settings", "Drain", "Abort"] {
            assert_ne!(t(Lang::Zh, key), key, "{key}");
        }
        assert_eq!(t(Lang::Zh, "untranslated"), "untranslated");
    }
}
