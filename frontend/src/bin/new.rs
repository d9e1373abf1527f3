//! The New job bundle: the lessons, the template gallery, the form and the spec editor.
//! Starts the shell with this bundle's routes; `boot.js` picks the bundle
//! by path.

use frontend::pages::NewJobPage;
use frontend::{elsewhere, start};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

fn main() {
    start(|| {
        view! {
            <Routes fallback=elsewhere("new")>
                <Route path=path!("/new") view=NewJobPage />
            </Routes>
        }
    });
}
