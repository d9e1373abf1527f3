//! The tuning lab's bundle: sweeps, capacity searches and soaks, and their comparison.
//! Starts the shell with this bundle's routes; `boot.js` picks the bundle
//! by path.

use frontend::pages::{SweepComparePage, SweepPage, TuningPage};
use frontend::{elsewhere, start};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

fn main() {
    start(|| {
        view! {
            <Routes fallback=elsewhere("tuning")>
                <Route path=path!("/tuning") view=TuningPage />
                <Route path=path!("/tuning/:id") view=SweepPage />
                <Route path=path!("/tuning/compare/:a/:b") view=SweepComparePage />
            </Routes>
        }
    });
}
