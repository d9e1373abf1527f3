//! Integration tests of the HTTP and WebSocket API against a real server
//! listening on `127.0.0.1:0` (one test binary for the whole API area).

mod auth;
mod browser;
mod confinement;
mod contract;
mod errors;
mod health;
mod helpers;
mod hub;
mod ingest;
mod jobs;
mod limits;
mod persistence;
mod semantics;
mod sweeps;
mod workers;
mod ws;
