//! The first view's bundle: the live job table and settings.
//! Mounts the shell with this bundle's routes; `boot.js` picks the bundle
//! by path.

use frontend::pages::{JobsPage, SettingsPage};
use frontend::{Shell, elsewhere};
use leptos::prelude::*;
use leptos_router::components::{Redirect, Route, Routes};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(|| {
        view! {
            <Shell>
                <Routes fallback=elsewhere("jobs")>
                    <Route path=path!("/") view=|| view! { <Redirect path="/jobs" /> } />
                    <Route path=path!("/jobs") view=JobsPage />
                    <Route path=path!("/settings") view=SettingsPage />
                </Routes>
            </Shell>
        }
    });
}
