//! escale: an edge reverse proxy for Docker Swarm, built to replace Traefik.
//!
//! # Layout
//! - [`config`]: static configuration (Traefik keys), dynamic model, decoding.
//! - [`goregex`]: Go `regexp` syntax and replacement semantics on the `regex` crate.
//! - [`percent`]: percent-decoding shared by rule matchers and path middlewares.
//! - [`rules`]: rule grammars (Traefik v3 expressions and v1 `Matcher:args`), matchers.
//! - [`labels`]: swarm service labels (Traefik v1 and v2/v3) to the dynamic model.
//! - [`middleware`]: request/response middlewares (strip prefix, headers, auth, ...).
//! - [`provider`]: sources of dynamic configuration (file, swarm) and their snapshots.
//! - [`routing`]: compiles the model into an immutable, host-indexed `RouteTable`.
//! - [`balance`]: load-balancing strategies, per-server state, passive health, sticky cookies.
//! - [`health`]: active health checks and the probes that re-admit ejected servers.
//! - [`proxy`]: entrypoint listeners, forwarding, upgrades, error classification, access log.
//! - [`app`]: assembles providers, the config pipeline and entrypoints; graceful shutdown.
//! - [`stack`]: `escale stack`, deploys the platform from one file (networks, proxy, services, tenants).
//! - [`check`]: `escale check` (offline validation) and `escale healthcheck` (ping probe).
//! - [`telemetry`]: application and access logs from the static configuration.
//! - [`tls`]: TLS termination (certificates by SNI, the generated default certificate, TLS options) and TLS to `https://` backends.
//! - [`admin`]: Traefik-compatible API, dashboard, Prometheus metrics, ping.

pub mod admin;
pub mod app;
pub mod balance;
pub mod check;
pub mod config;
pub mod goregex;
pub mod health;
pub mod labels;
pub mod middleware;
pub mod percent;
pub mod provider;
pub mod proxy;
pub mod routing;
pub mod rules;
pub mod stack;
pub mod telemetry;
pub mod tls;
