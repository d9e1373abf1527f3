//! The history bundle: finished runs and the comparison of two.
//! Starts the shell with this bundle's routes; `boot.js` picks the bundle
//! by path.

use frontend::pages::{ComparePage, HistoryPage};
use frontend::{elsewhere, start};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

fn main() {
    start(|| {
        view! {
            <Routes fallback=elsewhere("history")>
                <Route path=path!("/history") view=HistoryPage />
                <Route path=path!("/compare/:a/:b") view=ComparePage />
            </Routes>
        }
    });
}
