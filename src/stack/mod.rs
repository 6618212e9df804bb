//! `escale stack`: deploys a whole platform (networks, the proxy, application
//! services and per-tenant instances of generic apps) from one TOML file,
//! idempotently, through the swarm API.
//!
//! The pipeline keeps every step but the last pure:
//! file → spanned tree ([`source`]) → definitions ([`file`], templates
//! instantiated per tenant) → desired swarm specs ([`model`], [`spec`],
//! [`labels`]) → field-by-field changes against what runs ([`diff`]) →
//! applied with bollard ([`engine`], [`apply`]).
//!
//! # Layout
//! - [`source`]: TOML → spanned tree; problems with `file:line`.
//! - [`decode`]: typed reads that report and go on; unknown keys with suggestions.
//! - [`file`]: the stack file schema; template × tenant instantiation.
//! - [`labels`]: a route in plain words → Traefik v3 labels.
//! - [`model`]: cross checks and environment checks → desired networks and services.
//! - [`spec`]: a service definition → bollard `ServiceSpec`.
//! - [`diff`]: normalized views of specs and the changes between them.
//! - [`engine`]: the Docker calls the stack needs (bollard, API 1.41).
//! - [`apply`]: plan, up (with convergence and route checks), ps, scale, down.
//! - [`probe`]: HTTP checks of routes through the proxy's published port.
//! - [`cli`]: `escale stack ...` arguments and output.

pub mod apply;
pub mod cli;
pub mod decode;
pub mod diff;
pub mod engine;
pub mod file;
pub mod labels;
pub mod model;
pub mod probe;
pub mod source;
pub mod spec;
