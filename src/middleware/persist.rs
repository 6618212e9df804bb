//! State of stateful middlewares (circuit breakers, rate-limit buckets,
//! in-flight counts) that outlives route-table rebuilds.
//!
//! Traefik rebuilds every middleware on each configuration change, so a
//! swarm event resets an open circuit breaker or a client's rate limit.
//! escale keeps the state of a middleware whose name and settings did not
//! change. The registry is only touched while compiling, never on the
//! request path.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

type Key = (&'static str, String, String);
type Registry = Mutex<HashMap<Key, Weak<dyn Any + Send + Sync>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// The live state for (`kind`, `name`, `settings`), or a new one from `make`.
pub fn shared<T: Send + Sync + 'static>(
    kind: &'static str,
    name: &str,
    settings: String,
    make: impl FnOnce() -> T,
) -> Arc<T> {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, w| w.strong_count() > 0);
    let key = (kind, name.to_string(), settings);
    if let Some(existing) = map.get(&key).and_then(Weak::upgrade)
        && let Ok(state) = existing.downcast::<T>()
    {
        return state;
    }
    let state = Arc::new(make());
    let erased: Arc<dyn Any + Send + Sync> = state.clone();
    map.insert(key, Arc::downgrade(&erased));
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_settings_share_state_until_dropped() {
        let a = shared("test", "persist-a", "x=1".into(), || 1u32);
        let b = shared("test", "persist-a", "x=1".into(), || 2u32);
        assert!(Arc::ptr_eq(&a, &b));
        let c = shared("test", "persist-a", "x=2".into(), || 3u32);
        assert_eq!(*c, 3, "changed settings: fresh state");
        drop((a, b));
        let d = shared("test", "persist-a", "x=1".into(), || 4u32);
        assert_eq!(*d, 4, "nobody held it: fresh state");
    }
}
