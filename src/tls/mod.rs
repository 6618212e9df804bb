//! TLS termination: certificates from the dynamic configuration (`tls`
//! section, files or inline PEM), chosen by SNI, with a generated self-signed
//! default certificate as Traefik has.
//!
//! Certificates are matched to names with webpki's own name check, so escale
//! needs no X.509 parser; the answer per SNI name is cached.
//!
//! Each TLS options set (`tls.options.<name>`, [`options`]) is a rustls
//! server configuration. A connection gets the one of the routers whose
//! `Host` names its SNI, as in Traefik; `default` otherwise.

pub mod client;
pub mod connector;
pub mod options;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rustls::crypto::ring::sign::any_supported_type;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::dynamic::{TlsCertificate, TlsConfig, TlsOptions};
use crate::provider::ConfigIssue;

/// Most SNI names whose certificate choice is remembered.
const SNI_CACHE_LIMIT: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} `{path}`: {source}")]
    Read {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} `{path}` holds no usable PEM {kind}")]
    Pem {
        what: &'static str,
        path: String,
        kind: &'static str,
    },
    #[error("the key in `{0}` is not supported: {1}")]
    Key(String, rustls::Error),
    #[error("cannot generate the default certificate: {0}")]
    Generate(String),
    #[error("cannot build the TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// `certFile`/`keyFile` are file paths, or the PEM text itself.
fn pem_bytes(value: &str, what: &'static str) -> Result<Vec<u8>, TlsError> {
    if value.trim_start().starts_with("-----BEGIN") {
        return Ok(value.as_bytes().to_vec());
    }
    std::fs::read(value).map_err(|source| TlsError::Read {
        what,
        path: value.to_string(),
        source,
    })
}

/// CA certificates from PEM files or PEM text; `key` names the setting in
/// errors.
fn ca_store(files: &[String], key: &str) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for file in files {
        let pem = pem_bytes(file, "CA file").map_err(|e| format!("{key}: {e}"))?;
        let shown = display_name(file);
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("{key} `{shown}`: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("{key} `{shown}`: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("{key} `{shown}` holds no PEM certificate"));
        }
    }
    Ok(roots)
}

fn display_name(value: &str) -> String {
    if value.trim_start().starts_with("-----BEGIN") {
        "<inline PEM>".to_string()
    } else {
        value.to_string()
    }
}

/// Loads one certificate chain and its private key.
pub fn load_certificate(cert: &TlsCertificate) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_pem = pem_bytes(&cert.cert_file, "certFile")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::Pem {
            what: "certFile",
            path: display_name(&cert.cert_file),
            kind: "certificate",
        });
    }
    let key_pem = pem_bytes(&cert.key_file, "keyFile")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::Pem {
        what: "keyFile",
        path: display_name(&cert.key_file),
        kind: "private key",
    })?;
    let signing =
        any_supported_type(&key).map_err(|e| TlsError::Key(display_name(&cert.key_file), e))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

/// Traefik's fallback: a self-signed certificate for unknown names.
pub fn generate_default() -> Result<Arc<CertifiedKey>, TlsError> {
    let generated = rcgen::generate_simple_self_signed(vec!["escale.default.invalid".to_string()])
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let key = PrivateKeyDer::try_from(generated.signing_key.serialize_der())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let signing = any_supported_type(&key).map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![generated.cert.der().clone()],
        signing,
    )))
}

/// The certificates of one configuration generation.
#[derive(Debug)]
pub struct CertStore {
    certs: Vec<Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
    by_name: RwLock<HashMap<String, Option<Arc<CertifiedKey>>>>,
}

impl CertStore {
    /// Builds the store from the merged `tls` section; problems become issues
    /// naming the certificate, and only that certificate is left out.
    pub fn build(
        tls: Option<&TlsConfig>,
        default: Arc<CertifiedKey>,
    ) -> (CertStore, Vec<ConfigIssue>) {
        let mut issues = Vec::new();
        let mut certs = Vec::new();
        let mut default = default;
        if let Some(tls) = tls {
            for (i, c) in tls.certificates.iter().enumerate() {
                match load_certificate(c) {
                    Ok(ck) => certs.push(ck),
                    Err(e) => issues.push(
                        ConfigIssue::error(
                            "file",
                            format!("tls certificate {}", display_name(&c.cert_file)),
                            e.to_string(),
                        )
                        .with_key(format!("tls.certificates[{i}]")),
                    ),
                }
            }
            if let Some(dc) = tls
                .stores
                .get("default")
                .and_then(|s| s.default_certificate.as_ref())
            {
                match load_certificate(dc) {
                    Ok(ck) => default = ck,
                    Err(e) => issues.push(
                        ConfigIssue::error("file", "tls store default", e.to_string())
                            .with_key("tls.stores.default.defaultCertificate"),
                    ),
                }
            }
        }
        let store = CertStore {
            certs,
            default,
            by_name: RwLock::new(HashMap::new()),
        };
        (store, issues)
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The certificate for an SNI name: first one valid for it, else the
    /// default (none with `sni_strict`).
    pub fn choose(&self, sni: Option<&str>, sni_strict: bool) -> Option<Arc<CertifiedKey>> {
        let Some(name) = sni.map(str::to_ascii_lowercase) else {
            return (!sni_strict).then(|| self.default.clone());
        };
        let cached = self.by_name.read().ok().and_then(|m| m.get(&name).cloned());
        let found = match cached {
            Some(found) => found,
            None => {
                let found = self.find_valid(&name);
                if let Ok(mut m) = self.by_name.write()
                    && m.len() < SNI_CACHE_LIMIT
                {
                    m.insert(name, found.clone());
                }
                found
            }
        };
        match found {
            Some(ck) => Some(ck),
            None if sni_strict => None,
            None => Some(self.default.clone()),
        }
    }

    fn find_valid(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let server_name = ServerName::try_from(name.to_string()).ok()?;
        self.certs
            .iter()
            .find(|ck| {
                ck.cert.first().is_some_and(|leaf| {
                    webpki::EndEntityCert::try_from(leaf)
                        .and_then(|ee| ee.verify_is_valid_for_subject_name(&server_name))
                        .is_ok()
                })
            })
            .cloned()
    }
}

/// rustls' hook: the certificate for the handshake's SNI.
#[derive(Debug)]
struct Resolver {
    certs: Arc<CertStore>,
    sni_strict: bool,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certs.choose(hello.server_name(), self.sni_strict)
    }
}

/// What TLS connections are served with: a server configuration per TLS
/// options set in use, and which one each SNI name gets.
#[derive(Debug)]
pub struct TlsSetup {
    certs: Arc<CertStore>,
    default: Arc<rustls::ServerConfig>,
    /// `None`: the options are broken, and their names are refused rather
    /// than served with weaker ones.
    named: HashMap<String, Option<Arc<rustls::ServerConfig>>>,
    /// Options name by SNI name (lowercase), from the routers' `Host` rules.
    by_host: HashMap<String, String>,
}

impl TlsSetup {
    /// `by_host` names options that exist (the routing table checked them).
    pub fn build(
        tls: Option<&TlsConfig>,
        certs: Arc<CertStore>,
        by_host: HashMap<String, String>,
    ) -> (TlsSetup, Vec<ConfigIssue>) {
        let mut issues = Vec::new();
        let configured = |name: &str| tls.and_then(|t| t.options.get(name));
        let build = |opts: &TlsOptions| {
            let resolver = Arc::new(Resolver {
                certs: certs.clone(),
                sni_strict: opts.sni_strict,
            });
            options::server_config(opts, resolver)
        };
        let issue = |name: &str, e: String| {
            ConfigIssue::error("file", format!("tls options {name}"), e)
                .with_key(format!("tls.options.{name}"))
        };
        let fallback = TlsOptions::default();
        let default = match build(configured("default").unwrap_or(&fallback)) {
            Ok(c) => c,
            Err(e) => {
                // Traefik's own defaults, rather than no TLS at all.
                issues.push(issue("default", e));
                build(&fallback).expect("the built-in TLS options build")
            }
        };
        let mut named = HashMap::new();
        for name in by_host.values() {
            if name == "default" || named.contains_key(name) {
                continue;
            }
            let built = match configured(name) {
                Some(opts) => build(opts).map_err(|e| issues.push(issue(name, e))).ok(),
                None => None,
            };
            named.insert(name.clone(), built);
        }
        let setup = TlsSetup {
            certs,
            default,
            named,
            by_host,
        };
        (setup, issues)
    }

    pub fn certs(&self) -> &Arc<CertStore> {
        &self.certs
    }

    /// The configuration for a handshake's SNI; `None` refuses it.
    pub fn config_for(&self, sni: Option<&str>) -> Option<Arc<rustls::ServerConfig>> {
        let name = sni
            .map(str::to_ascii_lowercase)
            .and_then(|host| self.by_host.get(rules_host(&host)).cloned());
        match name.as_deref() {
            None | Some("default") => Some(self.default.clone()),
            Some(name) => self.named.get(name).cloned().flatten(),
        }
    }
}

/// An SNI name as a `Host` rule writes it (no trailing dot).
fn rules_host(host: &str) -> &str {
    host.strip_suffix('.').unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> (String, String) {
        let c = rcgen::generate_simple_self_signed(
            names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    #[test]
    fn chooses_by_sni_with_wildcards_and_default() {
        let (a_cert, a_key) = self_signed(&["a.test"]);
        let (w_cert, w_key) = self_signed(&["*.wild.test"]);
        let tls = TlsConfig {
            certificates: vec![
                TlsCertificate {
                    cert_file: a_cert,
                    key_file: a_key,
                    stores: vec![],
                },
                TlsCertificate {
                    cert_file: w_cert,
                    key_file: w_key,
                    stores: vec![],
                },
            ],
            ..TlsConfig::default()
        };
        let default = generate_default().unwrap();
        let (store, issues) = CertStore::build(Some(&tls), default.clone());
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(store.len(), 2);
        let a = store.choose(Some("A.test"), false).unwrap();
        let w = store.choose(Some("x.wild.test"), false).unwrap();
        assert!(!Arc::ptr_eq(&a, &w));
        assert!(!Arc::ptr_eq(&a, &default));
        assert!(Arc::ptr_eq(
            &store.choose(Some("other.test"), false).unwrap(),
            &default
        ));
        assert!(Arc::ptr_eq(&store.choose(None, false).unwrap(), &default));
        assert!(
            store.choose(Some("other.test"), true).is_none(),
            "sniStrict"
        );
    }

    #[test]
    fn bad_certificate_is_reported_and_left_out() {
        let tls = TlsConfig {
            certificates: vec![TlsCertificate {
                cert_file: "/nonexistent/cert.pem".into(),
                key_file: "/nonexistent/key.pem".into(),
                stores: vec![],
            }],
            ..TlsConfig::default()
        };
        let (store, issues) = CertStore::build(Some(&tls), generate_default().unwrap());
        assert!(store.is_empty());
        assert_eq!(issues.len(), 1);
        assert!(
            issues[0].message.contains("/nonexistent/cert.pem"),
            "{}",
            issues[0].message
        );
        assert_eq!(issues[0].key.as_deref(), Some("tls.certificates[0]"));
    }
}
