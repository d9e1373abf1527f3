//! The job page's bundle: one job's nodes, charts, live knobs, report and
//! records. Starts the shell with this bundle's routes; `boot.js` picks the
//! bundle by path.

use frontend::pages::JobPage;
use frontend::{elsewhere, start};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

fn main() {
    start(|| {
        view! {
            <Routes fallback=elsewhere("job")>
                <Route path=path!("/jobs/:id") view=JobPage />
            </Routes>
        }
    });
}
