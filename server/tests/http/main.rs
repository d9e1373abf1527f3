//! The built-in HTTP test target, and the engine's `http` operation and
//! sink against it, over real sockets on 127.0.0.1.

mod auto;
mod helpers;
mod ingest;
mod op;
mod sink;
mod target;
