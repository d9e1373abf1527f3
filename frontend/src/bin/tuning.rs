//! The tuning lab's bundle: sweeps, capacity searches and soaks, and their comparison.
//! Mounts the shell with this bundle's routes; `boot.js` picks the bundle
//! by path.

use frontend::pages::{SweepComparePage, SweepPage, TuningPage};
use frontend::{Shell, elsewhere};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(|| {
        view! {
            <Shell>
                <Routes fallback=elsewhere("tuning")>
                    <Route path=path!("/tuning") view=TuningPage />
                    <Route path=path!("/tuning/:id") view=SweepPage />
                    <Route path=path!("/tuning/compare/:a/:b") view=SweepComparePage />
                </Routes>
            </Shell>
        }
    });
}
