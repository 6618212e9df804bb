//! TLS to backends (`https://` servers), configured by a `serversTransport`:
//! `serverName`, `insecureSkipVerify`, `rootCAs`, `certificates` (client
//! certificates), `cipherSuites`, `minVersion`, `maxVersion` and
//! `disableHTTP2`, as Traefik reads them.
//!
//! As Go's client does, the server's certificate is checked against the
//! system's CAs unless `rootCAs` names others, and against the server URL's
//! host unless `serverName` names another; HTTP/2 is offered by ALPN unless
//! `disableHTTP2` is set. In an image with no CA bundle (escale's own is
//! `FROM scratch`) the system's CAs are Mozilla's, compiled in.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::dynamic::TlsCertificate;

/// How long a TLS handshake with a backend may take (Go's
/// `TLSHandshakeTimeout`, which Traefik keeps).
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A transport's TLS settings, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    pub server_name: String,
    pub insecure_skip_verify: bool,
    pub root_cas: Vec<String>,
    pub certificates: Vec<TlsCertificate>,
    pub cipher_suites: Vec<String>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub disable_http2: bool,
    /// Settings escale cannot honour (`peerCertURI`, `peerCertSANs`,
    /// `spiffe`): each would narrow what is trusted, so a transport that
    /// sets one makes no TLS connection rather than a laxer one.
    pub unsupported: Vec<&'static str>,
}

/// Ready-made client configurations for one transport.
pub struct TlsClient {
    /// Offers HTTP/2 and HTTP/1.1 by ALPN (only HTTP/1.1 with
    /// `disableHTTP2`).
    any: TlsConnector,
    /// Offers only HTTP/1.1: for upgrades, which HTTP/2 does not carry.
    http1: TlsConnector,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ClientSettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a transport's TLS settings cannot be used; names the setting.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSettingsError(pub String);

impl std::fmt::Display for ClientSettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TlsClient {
    pub fn build(s: &ClientSettings) -> Result<Self, ClientSettingsError> {
        Self::build_inner(s).map_err(ClientSettingsError)
    }

    fn build_inner(s: &ClientSettings) -> Result<Self, String> {
        if let Some(key) = s.unsupported.first() {
            return Err(format!(
                "{key} is not supported by escale: its servers' certificates would be checked less than asked"
            ));
        }
        let mut provider = rustls::crypto::ring::default_provider();
        if !s.cipher_suites.is_empty() {
            provider.cipher_suites = super::options::cipher_suites(&provider, &s.cipher_suites)?;
        }
        let versions =
            super::options::versions(s.min_version.as_deref(), s.max_version.as_deref())?;
        let algorithms = provider.signature_verification_algorithms;
        let provider = Arc::new(provider);
        let verifier: Arc<dyn ServerCertVerifier> = if s.insecure_skip_verify {
            Arc::new(AnyServerCert { algorithms })
        } else {
            let roots = if s.root_cas.is_empty() {
                system_roots()
            } else {
                Arc::new(super::ca_store(&s.root_cas, "rootCAs")?)
            };
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("rootCAs: {e}"))?
        };
        let certs = s
            .certificates
            .iter()
            .map(|c| super::load_certificate(c).map_err(|e| format!("certificates: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let server_name =
            match s.server_name.as_str() {
                "" => None,
                name => Some(ServerName::try_from(name.to_string()).map_err(|_| {
                    format!("serverName `{name}` is not a DNS name or an IP address")
                })?),
            };
        let config = |alpn: &[&[u8]]| -> Result<TlsConnector, String> {
            let builder = ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&versions)
                .map_err(|e| format!("minVersion/maxVersion with cipherSuites: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone());
            let mut config = if certs.is_empty() {
                builder.with_no_client_auth()
            } else {
                builder.with_client_cert_resolver(Arc::new(ClientCerts(certs.clone())))
            };
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(TlsConnector::from(Arc::new(config)))
        };
        let http1 = config(&[b"http/1.1"])?;
        let any = if s.disable_http2 {
            http1.clone()
        } else {
            config(&[b"h2", b"http/1.1"])?
        };
        Ok(TlsClient {
            any,
            http1,
            server_name,
        })
    }

    /// Runs the handshake over a connected socket. `host` is the server
    /// URL's host, used when no `serverName` is set; `http1_only` offers
    /// HTTP/1.1 alone.
    pub async fn connect(
        &self,
        host: &str,
        tcp: TcpStream,
        http1_only: bool,
    ) -> io::Result<TlsStream<TcpStream>> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => url_host_name(host)?,
        };
        let connector = if http1_only { &self.http1 } else { &self.any };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no TLS handshake within {HANDSHAKE_TIMEOUT:?}"),
            )),
        }
    }
}

/// The server name for a URL's host: a DNS name, or an IP address (in
/// brackets for IPv6), for which no SNI is sent.
fn url_host_name(host: &str) -> io::Result<ServerName<'static>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{host}` is not a name TLS can check a certificate against"),
        )
    })
}

/// The system's CAs, read once; Mozilla's when the system has none.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                tracing::info!(
                    "no CA certificates on this system: backends' certificates are checked against Mozilla's CAs"
                );
            }
            Arc::new(roots)
        })
        .clone()
}

/// `insecureSkipVerify`: any certificate for any name is taken, as in Go;
/// the server must still prove it holds the certificate's key.
#[derive(Debug)]
struct AnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `certificates`: the first one whose key can sign with a scheme the
/// server accepts, as Go picks.
#[derive(Debug)]
struct ClientCerts(Vec<Arc<CertifiedKey>>);

impl ResolvesClientCert for ClientCerts {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0
            .iter()
            .find(|c| c.key.choose_scheme(sigschemes).is_some())
            .cloned()
    }

    fn has_certs(&self) -> bool {
        !self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(settings: ClientSettings) -> String {
        TlsClient::build(&settings).unwrap_err().0
    }

    #[test]
    fn settings_that_cannot_work_name_their_key() {
        assert!(TlsClient::build(&ClientSettings::default()).is_ok());
        let e = error_of(ClientSettings {
            root_cas: vec!["/nonexistent/ca.pem".into()],
            ..Default::default()
        });
        assert!(
            e.starts_with("rootCAs: cannot read CA file `/nonexistent/ca.pem`"),
            "{e}"
        );
        let e = error_of(ClientSettings {
            root_cas: vec![
                "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".into(),
            ],
            ..Default::default()
        });
        assert!(e.starts_with("rootCAs `<inline PEM>`"), "{e}");
        let e = error_of(ClientSettings {
            cipher_suites: vec!["TLS_RSA_WITH_RC4_128_SHA".into()],
            ..Default::default()
        });
        assert!(e.contains("`TLS_RSA_WITH_RC4_128_SHA`"), "{e}");
        let e = error_of(ClientSettings {
            min_version: Some("VersionTLS13".into()),
            max_version: Some("VersionTLS12".into()),
            ..Default::default()
        });
        assert!(
            e.contains("minVersion `VersionTLS13` is above maxVersion"),
            "{e}"
        );
        let e = error_of(ClientSettings {
            server_name: "not a name".into(),
            ..Default::default()
        });
        assert_eq!(
            e,
            "serverName `not a name` is not a DNS name or an IP address"
        );
        let e = error_of(ClientSettings {
            certificates: vec![TlsCertificate {
                cert_file: "/nonexistent/client.pem".into(),
                key_file: "/nonexistent/client.key".into(),
                stores: vec![],
            }],
            ..Default::default()
        });
        assert!(e.starts_with("certificates: cannot read certFile"), "{e}");
        let e = error_of(ClientSettings {
            insecure_skip_verify: true,
            unsupported: vec!["peerCertSANs"],
            ..Default::default()
        });
        assert!(
            e.starts_with("peerCertSANs is not supported by escale"),
            "{e}"
        );
    }

    #[test]
    fn url_hosts_become_server_names() {
        assert!(matches!(
            url_host_name("backend.internal").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            url_host_name("10.0.0.7").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            url_host_name("[fd00::7]").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(url_host_name("bad host").is_err());
    }
}
