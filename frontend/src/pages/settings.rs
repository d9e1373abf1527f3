//! Settings: the API token and the interface language.

use leptos::prelude::*;

use super::tr;
use crate::api;
use crate::i18n::Lang;

/// The API token this browser sends (kept in `localStorage`).
#[component]
pub fn SettingsPage() -> impl IntoView {
    let lang = expect_context::<RwSignal<Lang>>();
    super::page_title(move || crate::i18n::t(lang.get(), "Settings").to_owned());
    let token = RwSignal::new(api::token().unwrap_or_default());
    let saved = RwSignal::new(false);
    let link = expect_context::<crate::live::LiveLink>();
    let save = move |_| {
        if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
            let t = token.get_untracked();
            let _ = if t.is_empty() {
                storage.remove_item(api::TOKEN_KEY)
            } else {
                storage.set_item(api::TOKEN_KEY, &t)
            };
            saved.set(true);
            // A live link turned away for want of a token tries again now.
            link.reconnect_now();
        }
    };
    view! {
        <section class="card" data-testid="page-settings">
            <h1>{tr("Settings")}</h1>
            <label for="token">{tr("API token")}</label>
            <p class="hint">{tr("Needed when the server asks for tokens (queuelab token create). Kept in this browser only.")}</p>
            <input id="token" type="password" data-testid="token" prop:value=move || token.get()
                on:input=move |ev| { saved.set(false); token.set(event_target_value(&ev)); } />
            <button data-testid="save-token" on:click=save>{tr("Save")}</button>
            <Show when=move || saved.get()><span class="hint" data-testid="saved">{tr("Saved.")}</span></Show>
            <p>
                <label for="lang">{tr("Language")}" "</label>
                <select id="lang" data-testid="lang"
                    on:change=move |ev| {
                        let l = if event_target_value(&ev) == "zh" { Lang::Zh } else { Lang::En };
                        l.store();
                        lang.set(l);
                    }>
                    <option value="en" selected=move || lang.get() == Lang::En>"English"</option>
                    <option value="zh" selected=move || lang.get() == Lang::Zh>"中文"</option>
                </select>
            </p>
        </section>
    }
}
