//! Placeholder: the case-insensitive configuration tree decoder lands here.

use serde::{Deserialize, Serialize};

/// A Traefik key that escale accepts but does not implement. It keeps the raw
/// value (for `/api/rawdata`) and is reported as a warning naming the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Unsupported(pub serde_json::Value);
