//! The history bundle: finished runs and the comparison of two.
//! Mounts the shell with this bundle's routes; `boot.js` picks the bundle
//! by path.

use frontend::pages::{ComparePage, HistoryPage};
use frontend::{Shell, elsewhere};
use leptos::prelude::*;
use leptos_router::components::{Route, Routes};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(|| {
        view! {
            <Shell>
                <Routes fallback=elsewhere("history")>
                    <Route path=path!("/history") view=HistoryPage />
                    <Route path=path!("/compare/:a/:b") view=ComparePage />
                </Routes>
            </Shell>
        }
    });
}
