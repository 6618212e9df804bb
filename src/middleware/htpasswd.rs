//! Password hashes of htpasswd files, as Traefik checks them: bcrypt
//! (`$2a$`, `$2b$`, `$2x$`, `$2y$`), SHA-1 (`{SHA}base64`), and MD5-crypt
//! for anything else of the form `$magic$salt$hash` (`$apr1$`, `$1$`).

use base64::Engine as _;
use md5::{Digest as _, Md5};
use sha1::Sha1;

/// A stored hash, parsed once at build time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hash {
    Bcrypt(String),
    Sha1(String),
    Md5Crypt {
        magic: String,
        salt: String,
        full: String,
    },
}

/// Why a stored hash is not one Traefik can ever match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("unrecognized password hash (expected bcrypt, apr1/md5-crypt or {{SHA}})")]
    Unrecognized,
    #[error("malformed bcrypt hash")]
    Bcrypt,
}

impl Hash {
    pub fn parse(secret: &str) -> Result<Hash, HashError> {
        if secret.starts_with("{SHA}") {
            return Ok(Hash::Sha1(secret.to_owned()));
        }
        if ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| secret.starts_with(p))
        {
            // What the bcrypt crate accepts: 60 ASCII bytes.
            if secret.len() != 60 || !secret.is_ascii() {
                return Err(HashError::Bcrypt);
            }
            return Ok(Hash::Bcrypt(secret.to_owned()));
        }
        // Go splits on `$` into 4 parts and rebuilds `$magic$salt$hash`:
        // only a hash starting with `$` can ever match.
        let parts: Vec<&str> = secret.splitn(4, '$').collect();
        match parts.as_slice() {
            ["", magic, salt, _] => Ok(Hash::Md5Crypt {
                magic: format!("${magic}$"),
                salt: (*salt).to_owned(),
                full: secret.to_owned(),
            }),
            _ => Err(HashError::Unrecognized),
        }
    }

    /// Whether bcrypt's deliberate slowness applies.
    pub fn is_slow(&self) -> bool {
        matches!(self, Hash::Bcrypt(_))
    }

    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            Hash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
            Hash::Sha1(h) => {
                let digest = Sha1::digest(password);
                let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
                constant_time_eq(&h.as_bytes()[5..], encoded.as_bytes())
            }
            Hash::Md5Crypt { magic, salt, full } => constant_time_eq(
                full.as_bytes(),
                &md5_crypt(password, salt.as_bytes(), magic.as_bytes()),
            ),
        }
    }
}

/// Compares without an early exit, so timing does not reveal how much of a
/// secret matched. Lengths are not secret.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// MD5-crypt (Poul-Henning Kamp's algorithm, Apache's `$apr1$` variant is
/// the same with another magic): returns `magic + salt + "$" + hash`.
pub fn md5_crypt(password: &[u8], salt: &[u8], magic: &[u8]) -> Vec<u8> {
    let mut d = Md5::new();
    d.update(password);
    d.update(magic);
    d.update(salt);

    let mut d2 = Md5::new();
    d2.update(password);
    d2.update(salt);
    d2.update(password);
    let mixin = d2.finalize();
    for i in 0..password.len() {
        d.update([mixin[i % 16]]);
    }

    let mut i = password.len();
    while i != 0 {
        if i & 1 == 0 {
            d.update([password[0]]);
        } else {
            d.update([0u8]);
        }
        i >>= 1;
    }
    let mut fin: [u8; 16] = d.finalize().into();

    for i in 0..1000 {
        let mut d2 = Md5::new();
        if i & 1 == 0 {
            d2.update(fin);
        } else {
            d2.update(password);
        }
        if i % 3 != 0 {
            d2.update(salt);
        }
        if i % 7 != 0 {
            d2.update(password);
        }
        if i & 1 == 0 {
            d2.update(password);
        } else {
            d2.update(fin);
        }
        fin = d2.finalize().into();
    }

    const SWAPS: [usize; 16] = [12, 6, 0, 13, 7, 1, 14, 8, 2, 15, 9, 3, 5, 10, 4, 11];
    let mut out = Vec::with_capacity(magic.len() + salt.len() + 23);
    out.extend_from_slice(magic);
    out.extend_from_slice(salt);
    out.push(b'$');
    let (mut v, mut bits) = (0u32, 0u32);
    for i in SWAPS {
        v |= u32::from(fin[i]) << bits;
        bits += 8;
        while bits > 6 {
            out.push(ITOA64[(v & 0x3f) as usize]);
            v >>= 6;
            bits -= 6;
        }
    }
    out.push(ITOA64[(v & 0x3f) as usize]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(secret: &str, password: &str) -> bool {
        Hash::parse(secret).unwrap().verify(password.as_bytes())
    }

    #[test]
    fn md5_crypt_vectors() {
        // From go-http-auth's tests (htpasswd -m and crypt(3) $1$).
        for (password, hash) in [
            ("apache", "$apr1$J.w5a/..$IW9y6DR0oO/ADuhlMF5/X1"),
            ("pass", "$1$YeNsbWdH$wvOF8JdqsoiLix754LTW90"),
            ("topsecret", "$apr1$JI4wh3am$AmhephVqLTUyAVpFQeHZC0"),
            // From `openssl passwd -apr1|-1 -salt ...`.
            ("", "$apr1$aBcD1234$gfLVWNf7aXtAuI6l7TkSd."),
            ("pässwörd", "$apr1$xyz$L9NqCAHT3AatJtVhf/ISl."),
            (
                "a very long password that is longer than sixteen bytes",
                "$1$12345678$4ZPu1XpOzP7yWHC/KN4Mn1",
            ),
        ] {
            let Hash::Md5Crypt { magic, salt, .. } = Hash::parse(hash).unwrap() else {
                panic!("{hash} is md5-crypt");
            };
            let got = md5_crypt(password.as_bytes(), salt.as_bytes(), magic.as_bytes());
            assert_eq!(String::from_utf8(got).unwrap(), hash);
        }
    }

    #[test]
    fn verify_all_formats() {
        assert!(check("{SHA}qvTGHdzF6KLavt4PO0gs2a6pQ00=", "hello"));
        assert!(!check("{SHA}qvTGHdzF6KLavt4PO0gs2a6pQ00=", "hello!"));
        assert!(check("$apr1$a0j62R97$mYqFkloXH0/UOaUnAiV2b0", "hello2"));
        assert!(!check("$apr1$a0j62R97$mYqFkloXH0/UOaUnAiV2b0", "hello"));
        assert!(check("$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/", "test"));
        assert!(check(
            "$2y$05$ih3C91zUBSTFcAh2mQnZYuob0UOZVEf16wl/ukgjDhjvj.xgM1WwS",
            "hello3"
        ));
        assert!(!check(
            "$2y$05$ih3C91zUBSTFcAh2mQnZYuob0UOZVEf16wl/ukgjDhjvj.xgM1WwS",
            "hello"
        ));
        assert!(check(
            "$2a$04$.8sTYfcxbSplCtoxt5TdJOgpBYkarKtZYsYfYxQ1edbYRuO1DNi0e",
            "test"
        ));
        let b = bcrypt::hash_with_salt("secret", 4, [7u8; 16]).unwrap();
        assert!(check(
            &b.format_for_version(bcrypt::Version::TwoB),
            "secret"
        ));
        assert!(check(
            &b.format_for_version(bcrypt::Version::TwoX),
            "secret"
        ));
    }

    #[test]
    fn unusable_hashes_are_refused() {
        assert_eq!(Hash::parse("plaintext"), Err(HashError::Unrecognized));
        assert_eq!(Hash::parse("ab$cd$ef$gh"), Err(HashError::Unrecognized));
        assert_eq!(
            Hash::parse("$apr10.KbAJur$4G9MiqUjDLCuihkMfmg6e1"),
            Err(HashError::Unrecognized)
        );
        assert_eq!(Hash::parse("$2y$05$short"), Err(HashError::Bcrypt));
        // {SHA} with a short digest parses but never matches (and never panics).
        assert!(!check("{SHA}", "x"));
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
