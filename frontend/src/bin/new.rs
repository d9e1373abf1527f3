//! The New job bundle: the lessons, the template gallery, the form and the spec editor.
//! Mounts the shell with this bundle's routes; `boot.js` picks the bundle
//! by path.

use frontend::pages::NewJobPage;
use frontend::{Shell, elsewhere};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(|| {
        view! {
            <Shell>
                <Routes fallback=elsewhere("new")>
                    <Route path=path!("/new") view=NewJobPage />
                </Routes>
            </Shell>
        }
    });
}
