//! Bearer tokens with roles, for a team sharing one server.
//!
//! * **viewer** reads (every `GET`, and spec validation);
//! * **operator** also starts, tunes and stops jobs;
//! * **admin** also deletes jobs and reads the audit log.
//!
//! Tokens are random, shown once by `queuelab token create`, and stored
//! only as SHA-256 hashes. Auth is off by default when the server binds a
//! loopback address and on otherwise (`--auth on|off|auto`). Browsers pass
//! the token of a WebSocket as `?token=`, since they cannot set headers;
//! everywhere else `?token=` is ignored (a URL ends up in logs and
//! histories), so a REST call needs `Authorization: Bearer`.
//!
//! Unknown tokens are logged (the client's address and the first hex
//! digits of the token's hash, never the token) and throttled per client
//! address: [`FAILURES_PER_MINUTE`] failures in a burst, then that many a
//! minute; beyond that the address gets 429 with `Retry-After`, **good
//! tokens included**, until the limiter lets it try again. Refusing good
//! tokens too is the safer choice: a guesser who hits a valid token while
//! throttled learns nothing from the answer. (Behind a reverse proxy every
//! client has the proxy's address and shares its allowance.)
//!
//! Token checks go to the store on its own threads
//! ([`crate::store::StoreThreads`]); a token found there is remembered for
//! [`TOKEN_TTL`].
//!
//! [`tokens`] holds roles and identities, [`guard`] the throttling and the
//! token cache that [`crate::state::AppState`] keeps, and [`middleware`]
//! the check itself ([`require`]), which reads the state.

pub mod guard;
pub mod middleware;
pub mod tokens;

pub use guard::{FAILURES_PER_MINUTE, Guard, TOKEN_TTL};
pub use middleware::require;
pub use tokens::{AuthMode, Identity, Role, generate, hash};
