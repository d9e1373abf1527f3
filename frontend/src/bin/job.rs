//! The job page's bundle: one job's nodes, charts, live knobs, report and
//! records. Mounts the shell with this bundle's routes; `boot.js` picks the
//! bundle by path.

use frontend::pages::JobPage;
use frontend::{Shell, elsewhere};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(|| {
        view! {
            <Shell>
                <Routes fallback=elsewhere("job")>
                    <Route path=path!("/jobs/:id") view=JobPage />
                </Routes>
            </Shell>
        }
    });
}
