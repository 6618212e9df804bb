//! `passTLSClientCert`: the certificates a TLS client sent (with the TLS
//! options' `clientAuth`) go to the backend in `X-Forwarded-Tls-Client-Cert`,
//! as Traefik sends them: each certificate's DER in base64 (its PEM without
//! the armour and line breaks), comma-separated, leaf first.
//!
//! Unlike Traefik, the header is removed when the client sent none, so
//! that a client cannot pass a certificate of its choosing in a header.
//! The `info` part (subject, issuer, dates, names) is not supported: a
//! middleware asking for it is an error, rather than a header left out.

use base64::Engine as _;
use http::header::{HeaderName, HeaderValue};
use http::request;

use super::{Flow, Layer, MiddlewareError, RequestCtx};
use crate::config::dynamic;

const CERT: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert");
const CERT_INFO: HeaderName = HeaderName::from_static("x-forwarded-tls-client-cert-info");

#[derive(Debug)]
pub struct PassTlsClientCert {
    pem: bool,
}

impl PassTlsClientCert {
    pub fn new(name: &str, cfg: &dynamic::PassTlsClientCert) -> Result<Self, MiddlewareError> {
        if cfg.info.is_some() {
            return Err(MiddlewareError::new(
                name,
                "passTLSClientCert.info is not supported by escale (pem is)",
            ));
        }
        Ok(PassTlsClientCert { pem: cfg.pem })
    }
}

impl Layer for PassTlsClientCert {
    fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Flow {
        req.headers.remove(CERT);
        req.headers.remove(CERT_INFO);
        if !self.pem {
            return Flow::Continue;
        }
        let Some(certs) = ctx.client_certs.as_deref().filter(|c| !c.is_empty()) else {
            tracing::debug!("passTLSClientCert: the request came without a client certificate");
            return Flow::Continue;
        };
        let engine = base64::engine::general_purpose::STANDARD;
        let value: Vec<String> = certs.iter().map(|c| engine.encode(c.as_ref())).collect();
        // Base64 and commas: always a valid header value.
        if let Ok(v) = HeaderValue::from_str(&value.join(",")) {
            req.headers.insert(CERT, v);
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn certificates_in_base64_and_spoofed_headers_removed() {
        let mw = PassTlsClientCert::new(
            "p@file",
            &dynamic::PassTlsClientCert {
                pem: true,
                info: None,
            },
        )
        .unwrap();
        let run = |certs: Option<Vec<Vec<u8>>>| {
            let mut req = http::Request::builder()
                .header("x-forwarded-tls-client-cert", "spoofed")
                .body(())
                .unwrap()
                .into_parts()
                .0;
            let mut ctx = RequestCtx::new(Ipv4Addr::LOCALHOST.into(), "https");
            ctx.client_certs = certs.map(|c| {
                c.into_iter()
                    .map(rustls_pki_types::CertificateDer::from)
                    .collect::<Vec<_>>()
                    .into()
            });
            assert!(matches!(mw.on_request(&mut req, &mut ctx), Flow::Continue));
            req.headers
                .get(CERT)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(run(None), None, "no certificate: the client's header goes");
        assert_eq!(
            run(Some(vec![b"leaf".to_vec(), b"ca".to_vec()])).as_deref(),
            Some("bGVhZg==,Y2E=")
        );
    }

    #[test]
    fn info_is_refused_with_the_reason() {
        let err = PassTlsClientCert::new(
            "p@file",
            &dynamic::PassTlsClientCert {
                pem: true,
                info: Some(crate::config::tree::Unsupported(
                    serde_json::json!({"notAfter": true}),
                )),
            },
        )
        .unwrap_err();
        assert!(
            err.message.contains("info is not supported"),
            "{}",
            err.message
        );
    }
}
