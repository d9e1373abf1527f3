//! The workers bundle: the worker processes and what each runs.
//! Starts the shell with this bundle's routes; `boot.js` picks the bundle
//! by path.

use frontend::pages::WorkersPage;
use frontend::{elsewhere, start};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

fn main() {
    start(|| {
        view! {
            <Routes fallback=elsewhere("workers")>
                <Route path=path!("/workers") view=WorkersPage />
            </Routes>
        }
    });
}
