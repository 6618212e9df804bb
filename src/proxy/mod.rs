//! The proxy: entrypoint listeners, request handling, forwarding to backends.

pub mod body;
