//! Configuration: the static config (entrypoints, providers, API), the dynamic
//! model (routers, services, middlewares) and the decoding shared by both.

pub mod duration;
pub mod dynamic;
pub mod file_format;
pub mod static_config;
pub mod traefik_keys;
pub mod tree;
pub mod yaml;
