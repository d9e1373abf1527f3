//! The workers bundle: the worker processes and what each runs.
//! Mounts the shell with this bundle's routes; `boot.js` picks the bundle
//! by path.

use frontend::pages::WorkersPage;
use frontend::{Shell, elsewhere};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(|| {
        view! {
            <Shell>
                <Routes fallback=elsewhere("workers")>
                    <Route path=path!("/workers") view=WorkersPage />
                </Routes>
            </Shell>
        }
    });
}
