//! The first view's bundle: the live job table and settings.
//! Starts the shell with this bundle's routes; `boot.js` picks the bundle
//! by path.

use frontend::pages::{JobsPage, SettingsPage};
use frontend::{elsewhere, start};
use leptos::prelude::*;
use leptos_router::components::{Redirect, Route, Routes};
use leptos_router::path;

fn main() {
    start(|| {
        view! {
            <Routes fallback=elsewhere("jobs")>
                <Route path=path!("/") view=|| view! { <Redirect path="/jobs" /> } />
                <Route path=path!("/jobs") view=JobsPage />
                <Route path=path!("/settings") view=SettingsPage />
            </Routes>
        }
    });
}
