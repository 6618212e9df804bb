//! Highest random weight (rendezvous) hashing: each request key scores every
//! server and goes to the best one. Adding or removing one of N servers
//! moves only about 1/N of the keys, and removing a server moves only the
//! keys it had.
//!
//! The score follows Traefik (`pkg/server/service/loadbalancer/hrw`): a
//! 64-bit hash of the key followed by the server URL, mapped to
//! `1 / -ln(h / 2^64)` and multiplied by the weight. Traefik uses raw
//! FNV-1a, which spreads similar keys poorly (10,000 consecutive IPv4
//! addresses over 10 servers: 860 to 1,227 keys each); escale passes the
//! FNV-1a value through murmur3's 64-bit finalizer (991 to 1,049). The
//! assignment of a given key therefore differs from Traefik's.

use std::sync::Arc;

use super::ServerState;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// murmur3's fmix64: every input bit affects every output bit.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The score of `server_name` (its URL) for `key`; higher wins.
pub fn score(key: &[u8], server_name: &str, weight: u32) -> f64 {
    let h = fmix64(fnv1a(fnv1a(FNV_OFFSET, key), server_name.as_bytes()));
    let unit = h as f64 / 18_446_744_073_709_551_616.0;
    let log_score = 1.0 / -unit.ln();
    log_score * f64::from(weight)
}

/// The eligible server with the highest score for `key`.
pub fn pick<'a>(
    servers: &'a [Arc<ServerState>],
    key: &[u8],
    eligible: impl Fn(&ServerState) -> bool,
) -> Option<&'a Arc<ServerState>> {
    let mut best: Option<(&Arc<ServerState>, f64)> = None;
    for s in servers {
        if s.weight == 0 || !eligible(s) {
            continue;
        }
        let sc = score(key, &s.url, s.weight);
        if best.is_none_or(|(_, b)| sc > b) {
            best = Some((s, sc));
        }
    }
    best.map(|(s, _)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(n: usize) -> Vec<Arc<ServerState>> {
        (0..n)
            .map(|i| {
                Arc::new(ServerState::new(&format!("http://10.0.0.{}:80", i + 1), 1, None).unwrap())
            })
            .collect()
    }

    fn assign(servers: &[Arc<ServerState>], keys: &[String]) -> Vec<String> {
        keys.iter()
            .map(|k| pick(servers, k.as_bytes(), |_| true).unwrap().url.clone())
            .collect()
    }

    fn keys() -> Vec<String> {
        (0..10_000)
            .map(|i| format!("192.168.{}.{}", i / 256, i % 256))
            .collect()
    }

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn adding_an_eleventh_server_moves_about_one_key_in_eleven() {
        let keys = keys();
        let ten = servers(10);
        let eleven = servers(11);
        // The ten shared servers are the same objects' URLs.
        let before = assign(&ten, &keys);
        let after = assign(&eleven, &keys);
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        let new_url = &eleven[10].url;
        assert!(
            before
                .iter()
                .zip(&after)
                .all(|(a, b)| a == b || b == new_url),
            "keys only move to the new server"
        );
        let share = moved as f64 / keys.len() as f64;
        assert!(share <= 0.12 && share > 0.05, "moved {share}");
    }

    #[test]
    fn removing_a_server_moves_only_its_keys() {
        let keys = keys();
        let ten = servers(10);
        let before = assign(&ten, &keys);
        let removed = ten[3].url.clone();
        let nine: Vec<_> = ten.iter().filter(|s| s.url != removed).cloned().collect();
        let after = assign(&nine, &keys);
        for (a, b) in before.iter().zip(&after) {
            if a != &removed {
                assert_eq!(a, b, "a key of a remaining server moved");
            } else {
                assert_ne!(b, &removed);
            }
        }
        // The removed server held about a tenth of the keys, spread evenly.
        let held = before.iter().filter(|u| **u == removed).count();
        assert!((700..1300).contains(&held), "{held}");
    }

    #[test]
    fn spread_is_even_and_skips_ineligible() {
        let keys = keys();
        let ten = servers(10);
        let assigned = assign(&ten, &keys);
        for s in &ten {
            let n = assigned.iter().filter(|u| **u == s.url).count();
            assert!((900..1100).contains(&n), "{}: {n}", s.url);
        }
        let down = ten[0].url.clone();
        for k in keys.iter().take(500) {
            let p = pick(&ten, k.as_bytes(), |s| s.url != down).unwrap();
            assert_ne!(p.url, down);
        }
    }

    #[test]
    fn weight_scales_the_share() {
        let s = vec![
            Arc::new(ServerState::new("http://10.0.0.1:80", 3, None).unwrap()),
            Arc::new(ServerState::new("http://10.0.0.2:80", 1, None).unwrap()),
        ];
        let keys = keys();
        let heavy = assign(&s, &keys)
            .iter()
            .filter(|u| u.as_str() == "http://10.0.0.1:80")
            .count();
        let share = heavy as f64 / keys.len() as f64;
        assert!((0.70..0.80).contains(&share), "{share}");
    }
}
