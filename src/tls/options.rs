//! Traefik's TLS options (`tls.options.<name>`) as rustls server
//! configurations: protocol versions, TLS 1.2 cipher suites, key exchange
//! groups, client certificates, ALPN, SNI strictness, session tickets.
//!
//! rustls speaks TLS 1.2 and 1.3 only: a `minVersion` of TLS 1.0 or 1.1
//! means 1.2. Suites and groups rustls does not have are errors naming
//! them, rather than options silently weaker than written.

use std::sync::Arc;

use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::config::dynamic::{ClientAuth, TlsOptions};

/// A server configuration for these options, with `resolver` for the
/// certificates; `Err` names the setting at fault.
pub fn server_config(
    opts: &TlsOptions,
    resolver: Arc<dyn ResolvesServerCert>,
) -> Result<Arc<ServerConfig>, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if !opts.cipher_suites.is_empty() {
        provider.cipher_suites = cipher_suites(&provider, &opts.cipher_suites)?;
    }
    if !opts.curve_preferences.is_empty() {
        provider.kx_groups = kx_groups(&provider, &opts.curve_preferences)?;
    }
    let versions = versions(opts.min_version.as_deref(), opts.max_version.as_deref())?;
    let algorithms = provider.signature_verification_algorithms;
    let builder = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("minVersion/maxVersion with cipherSuites: {e}"))?;
    let verifier = client_verifier(opts.client_auth.as_ref(), algorithms)?;
    let mut config = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    }
    .with_cert_resolver(resolver);
    config.alpn_protocols = if opts.alpn_protocols.is_empty() {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        opts.alpn_protocols
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect()
    };
    if opts.disable_session_tickets {
        config.send_tls13_tickets = 0;
    }
    Ok(Arc::new(config))
}

/// Every options set's problems, without serving (for `escale check`).
pub fn check(opts: &std::collections::BTreeMap<String, TlsOptions>) -> Vec<(String, String)> {
    opts.iter()
        .filter_map(|(name, o)| {
            server_config(o, Arc::new(NoCertificate))
                .err()
                .map(|e| (name.clone(), e))
        })
        .collect()
}

/// A resolver with no certificate, for configurations built only to be checked.
#[derive(Debug)]
struct NoCertificate;

impl ResolvesServerCert for NoCertificate {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
}

fn version(name: &str, key: &str) -> Result<u8, String> {
    match name {
        // rustls has no TLS 1.0 or 1.1: 1.2 is the oldest it speaks.
        "VersionTLS10" | "VersionTLS11" | "VersionTLS12" => Ok(2),
        "VersionTLS13" => Ok(3),
        other => Err(format!(
            "{key} `{other}` is not one of VersionTLS10, VersionTLS11, VersionTLS12, VersionTLS13"
        )),
    }
}

pub(super) fn versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let low = min
        .filter(|m| !m.is_empty())
        .map_or(Ok(2), |m| version(m, "minVersion"))?;
    let high = max
        .filter(|m| !m.is_empty())
        .map_or(Ok(3), |m| version(m, "maxVersion"))?;
    if low > high {
        return Err(format!(
            "minVersion `{}` is above maxVersion `{}`",
            min.unwrap_or(""),
            max.unwrap_or("")
        ));
    }
    let mut out = Vec::new();
    if high >= 3 {
        out.push(&rustls::version::TLS13);
    }
    if low <= 2 {
        out.push(&rustls::version::TLS12);
    }
    Ok(out)
}

/// The provider's suites: every TLS 1.3 one (Go does not let them be
/// chosen, and ignores their names here) and the TLS 1.2 ones named.
pub(super) fn cipher_suites(
    provider: &CryptoProvider,
    names: &[String],
) -> Result<Vec<rustls::SupportedCipherSuite>, String> {
    let named = |s: &rustls::SupportedCipherSuite| {
        let own = suite_name(&format!("{:?}", s.suite()));
        names.iter().any(|n| suite_name(n) == own)
    };
    if let Some(unknown) = names.iter().find(|n| {
        !provider
            .cipher_suites
            .iter()
            .any(|s| suite_name(&format!("{:?}", s.suite())) == suite_name(n))
    }) {
        return Err(format!(
            "cipherSuites: `{unknown}` is not a suite escale offers (TLS 1.2: ECDHE with AES-GCM or ChaCha20-Poly1305)"
        ));
    }
    Ok(provider
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13 || named(s))
        .copied()
        .collect())
}

/// A suite's name as Go writes it: rustls says `TLS13_` for TLS 1.3
/// suites, and Go also takes the ChaCha20 suites without `_SHA256`.
fn suite_name(name: &str) -> String {
    let name = name.replacen("TLS13_", "TLS_", 1);
    if name.ends_with("CHACHA20_POLY1305") {
        format!("{name}_SHA256")
    } else {
        name
    }
}

fn kx_groups(
    provider: &CryptoProvider,
    names: &[String],
) -> Result<Vec<&'static dyn rustls::crypto::SupportedKxGroup>, String> {
    let mut out = Vec::new();
    for name in names {
        let group = match name.as_str() {
            "X25519" => rustls::NamedGroup::X25519,
            "CurveP256" => rustls::NamedGroup::secp256r1,
            "CurveP384" => rustls::NamedGroup::secp384r1,
            other => {
                return Err(format!(
                    "curvePreferences: `{other}` is not one of X25519, CurveP256, CurveP384"
                ));
            }
        };
        if let Some(g) = provider.kx_groups.iter().find(|g| g.name() == group) {
            out.push(*g);
        }
    }
    Ok(out)
}

/// What `clientAuthType` asks of clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuthType {
    None,
    Request,
    RequireAny,
    VerifyIfGiven,
    RequireAndVerify,
}

fn client_verifier(
    auth: Option<&ClientAuth>,
    algorithms: WebPkiSupportedAlgorithms,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    let kind = match auth.client_auth_type.as_deref().unwrap_or("") {
        "" | "NoClientCert" => ClientAuthType::None,
        "RequestClientCert" => ClientAuthType::Request,
        "RequireAnyClientCert" => ClientAuthType::RequireAny,
        "VerifyClientCertIfGiven" => ClientAuthType::VerifyIfGiven,
        "RequireAndVerifyClientCert" => ClientAuthType::RequireAndVerify,
        other => {
            return Err(format!(
                "clientAuth.clientAuthType `{other}` is not one of NoClientCert, RequestClientCert, \
                 RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
            ));
        }
    };
    match kind {
        ClientAuthType::None => Ok(None),
        ClientAuthType::Request | ClientAuthType::RequireAny => Ok(Some(Arc::new(AnyClientCert {
            mandatory: kind == ClientAuthType::RequireAny,
            algorithms,
        }))),
        ClientAuthType::VerifyIfGiven | ClientAuthType::RequireAndVerify => {
            let roots = ca_roots(&auth.ca_files)?;
            let builder = WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                Arc::new(rustls::crypto::ring::default_provider()),
            );
            let builder = if kind == ClientAuthType::VerifyIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder
                .build()
                .map(|v| Some(v as Arc<dyn ClientCertVerifier>))
                .map_err(|e| format!("clientAuth: {e}"))
        }
    }
}

/// The CAs of `caFiles` (paths or PEM text).
fn ca_roots(files: &[String]) -> Result<RootCertStore, String> {
    if files.is_empty() {
        return Err("clientAuth.caFiles is empty: verifying client certificates needs the CAs that sign them".into());
    }
    super::ca_store(files, "clientAuth.caFiles")
}

/// Go's `RequestClientCert` and `RequireAnyClientCert`: a certificate is
/// asked for (or required) but not checked against any CA; the client
/// must still prove it holds its key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(opts: &TlsOptions) -> Result<Arc<ServerConfig>, String> {
        server_config(opts, Arc::new(NoCertificate))
    }

    #[test]
    fn versions_follow_min_and_max() {
        assert_eq!(versions(None, None).unwrap().len(), 2);
        let only13 = versions(Some("VersionTLS13"), None).unwrap();
        assert_eq!(only13.len(), 1);
        assert_eq!(only13[0].version, rustls::ProtocolVersion::TLSv1_3);
        let only12 = versions(Some("VersionTLS10"), Some("VersionTLS12")).unwrap();
        assert_eq!(only12[0].version, rustls::ProtocolVersion::TLSv1_2);
        assert!(
            versions(Some("VersionTLS13"), Some("VersionTLS12"))
                .unwrap_err()
                .contains("above")
        );
        assert!(
            versions(Some("TLS1.3"), None)
                .unwrap_err()
                .starts_with("minVersion `TLS1.3`")
        );
    }

    #[test]
    fn cipher_suites_and_curves_by_go_names() {
        let provider = rustls::crypto::ring::default_provider();
        let suites = cipher_suites(
            &provider,
            &[
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into(),
            ],
        )
        .unwrap();
        let tls12: Vec<String> = suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(tls12.len(), 2, "{tls12:?}");
        assert_eq!(suites.len() - tls12.len(), 3, "every TLS 1.3 suite stays");
        // TLS 1.3 names are taken and change nothing, as in Go.
        let same = cipher_suites(
            &provider,
            &[
                "TLS_AES_256_GCM_SHA384".into(),
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".into(),
            ],
        )
        .unwrap();
        assert_eq!(same.len(), 4, "3 TLS 1.3 suites and the ChaCha20 one");
        let e = cipher_suites(&provider, &["TLS_RSA_WITH_AES_128_CBC_SHA".into()]).unwrap_err();
        assert!(e.contains("TLS_RSA_WITH_AES_128_CBC_SHA"), "{e}");
        assert_eq!(
            kx_groups(&provider, &["CurveP256".into()]).unwrap().len(),
            1
        );
        assert!(
            kx_groups(&provider, &["CurveP521".into()])
                .unwrap_err()
                .contains("CurveP521")
        );
    }

    #[test]
    fn client_auth_types_and_their_errors() {
        let with = |kind: &str, ca: &[&str]| TlsOptions {
            client_auth: Some(ClientAuth {
                ca_files: ca.iter().map(|s| s.to_string()).collect(),
                client_auth_type: Some(kind.into()),
            }),
            ..Default::default()
        };
        assert!(build(&with("NoClientCert", &[])).is_ok());
        assert!(build(&with("RequireAnyClientCert", &[])).is_ok());
        let e = build(&with("RequireAndVerifyClientCert", &[])).unwrap_err();
        assert!(e.contains("caFiles is empty"), "{e}");
        let e = build(&with(
            "RequireAndVerifyClientCert",
            &["/nonexistent/ca.pem"],
        ))
        .unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let e = build(&with("Sometimes", &[])).unwrap_err();
        assert!(e.contains("`Sometimes`"), "{e}");
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        assert!(build(&with("VerifyClientCertIfGiven", &[&ca.cert.pem()])).is_ok());
    }

    #[test]
    fn alpn_and_tickets() {
        let c = build(&TlsOptions::default()).unwrap();
        assert_eq!(c.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        let c = build(&TlsOptions {
            alpn_protocols: vec!["http/1.1".into()],
            disable_session_tickets: true,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert_eq!(c.send_tls13_tickets, 0);
    }
}
