//! Load balancing: per-server live state and the strategies that pick a
//! server for each request.
//!
//! Server state (`ServerState`) outlives route-table rebuilds: the compiler
//! hands the previous table's states to the new one for servers that remain,
//! so in-flight counts, health and statistics survive a reload.

pub mod server;
pub mod stats;
pub mod wrr;

pub use server::{ServerState, Upstream};
pub use wrr::SmoothWrr;
