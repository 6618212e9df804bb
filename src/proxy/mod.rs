//! The proxy: entrypoint listeners, request handling, forwarding to backends.

pub mod accept;
pub mod access_log;
pub mod body;
pub mod error;
pub mod forward;
pub mod h1;
pub mod handler;
pub mod headers;
pub mod observe;
pub mod pool;
pub mod prefixed;
pub mod server;
pub mod spread;
pub mod threads;
pub mod transport;
pub mod watchdog;
