//! TLS termination: certificates from the dynamic file chosen by SNI, TLS
//! and plain routers side by side, HTTP/2 by ALPN, entrypoint redirection.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};

struct Cert {
    pem: String,
    key: String,
    der: CertificateDer<'static>,
}

fn cert(names: &[&str]) -> Cert {
    let c =
        rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    Cert {
        pem: c.cert.pem(),
        key: c.signing_key.serialize_pem(),
        der: c.cert.der().clone(),
    }
}

/// What a TLS client saw: the peer's certificate, the ALPN protocol, the answer.
struct TlsAnswer {
    peer_cert: CertificateDer<'static>,
    alpn: Option<Vec<u8>>,
    status: u16,
    body: String,
}

/// A TLS connection to `addr` with SNI `sni`, offering the ALPN protocol `alpn`.
async fn tls_connect(
    addr: std::net::SocketAddr,
    sni: &str,
    trust: &[&CertificateDer<'static>],
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in trust {
        roots.add((*c).clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    connector
        .connect(ServerName::try_from(sni.to_string()).unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

async fn https_get(
    addr: std::net::SocketAddr,
    sni: &str,
    trust: &[&CertificateDer<'static>],
    h2: bool,
    path: &str,
) -> TlsAnswer {
    let alpn: &[u8] = if h2 { b"h2" } else { b"http/1.1" };
    let tls = tls_connect(addr, sni, trust, alpn).await;
    let (_, session) = tls.get_ref();
    let peer_cert = session.peer_certificates().unwrap()[0].clone();
    let alpn = session.alpn_protocol().map(|p| p.to_vec());
    let req = http::Request::get(path)
        .header("host", sni)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = if h2 {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = req;
        *req.uri_mut() = format!("https://{sni}{path}").parse().unwrap();
        send.send_request(req).await.unwrap()
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        send.send_request(req).await.unwrap()
    };
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    TlsAnswer {
        peer_cert,
        alpn,
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminates_tls_by_sni_next_to_plain_routes() {
    let secure = Whoami::start("secure");
    let plain = Whoami::start("plain");
    let a = cert(&["a.test"]);
    let b = cert(&["*.b.test"]);
    let dir = tempfile::tempdir().unwrap();
    let (a_cert, a_key) = (dir.path().join("a.crt"), dir.path().join("a.key"));
    std::fs::write(&a_cert, &a.pem).unwrap();
    std::fs::write(&a_key, &a.key).unwrap();
    let yaml = format!(
        r#"http:
  routers:
    secure-a:
      rule: "Host(`a.test`)"
      service: secure
      tls: {{}}
    secure-b:
      rule: "HostRegexp(`^[a-z]+\\.b\\.test$`)"
      service: secure
      tls: {{}}
    plain-a:
      rule: "Host(`a.test`)"
      service: plain
  services:
    secure:
      loadBalancer:
        servers:
          - url: "{}"
    plain:
      loadBalancer:
        servers:
          - url: "{}"
tls:
  certificates:
    - certFile: "{}"
      keyFile: "{}"
    - certFile: |
{}
      keyFile: |
{}
"#,
        secure.url(),
        plain.url(),
        a_cert.display(),
        a_key.display(),
        indent(&b.pem, 8),
        indent(&b.key, 8),
    );
    let esc = Escale::start(&yaml, &[]);
    esc.routed("a.test", Duration::from_secs(5)).await;

    // Plain HTTP on the same entrypoint reaches the plain router.
    assert_eq!(
        get(&esc.url("/"), "a.test").await.echo("Name").as_deref(),
        Some("plain")
    );

    // TLS with SNI a.test: certificate a, the TLS router, X-Forwarded-Proto https.
    let r = https_get(esc.web, "a.test", &[&a.der], false, "/hello").await;
    assert_eq!(r.peer_cert, a.der);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Name: secure"), "{}", r.body);
    assert!(r.body.contains("X-Forwarded-Proto: https"), "{}", r.body);
    assert!(r.body.contains("X-Forwarded-Port: 443"), "{}", r.body);

    // Wildcard certificate (inline PEM) by SNI, over HTTP/2 negotiated by ALPN.
    let r = https_get(esc.web, "x.b.test", &[&b.der], true, "/h2").await;
    assert_eq!(r.peer_cert, b.der);
    assert_eq!(r.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Name: secure"), "{}", r.body);
}

fn indent(text: &str, n: usize) -> String {
    text.lines()
        .map(|l| format!("{}{l}", " ".repeat(n)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrypoint_redirection_to_https() {
    let w = Whoami::start("w");
    let secure_port = free_port();
    let yaml = format!(
        "http:\n  routers:\n    r:\n      rule: \"Host(`r.test`)\"\n      service: w\n      tls: {{}}\n  services:\n    w:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
        w.url()
    );
    let esc = Escale::start(
        &yaml,
        &[
            &format!("--entrypoints.websecure.address=127.0.0.1:{secure_port}"),
            "--entrypoints.web.http.redirections.entrypoint.to=websecure",
            "--entrypoints.web.http.redirections.entrypoint.scheme=https",
        ],
    );
    let url = esc.url("/path?q=1");
    wait_status(
        "redirect router ready",
        &url,
        "r.test",
        301,
        Duration::from_secs(5),
    )
    .await;
    let r = get(&esc.url("/path?q=1"), "r.test").await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.headers["location"],
        format!("https://r.test:{secure_port}/path?q=1")
    );
    // The default self-signed certificate answers on the TLS side.
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAny))
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", secure_port))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("r.test").unwrap(), tcp)
        .await
        .expect("handshake with the default certificate");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let res = send
        .send_request(
            http::Request::get("/x")
                .header("host", "r.test")
                .body(Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// Accepts any server certificate (the test checks routing, not trust).
#[derive(Debug)]
struct AcceptAny;

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Over TLS too, a request answered before its body was read (basic auth's
/// 401) lets its client finish sending and read the answer: escale
/// half-closes (close_notify) and reads the rest away instead of resetting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_upload_answered_before_its_body_is_read_gets_its_answer() {
    let w = Whoami::start("w");
    let c = cert(&["up.test"]);
    let yaml = format!(
        r#"http:
  routers:
    up:
      rule: "Host(`up.test`)"
      service: w
      middlewares: [auth]
      tls: {{}}
    plain:
      rule: "Host(`up.test`)"
      service: w
  middlewares:
    auth:
      basicAuth:
        users: ["sha:{{SHA}}0DPiKuNIrrVmD8IUCuw1hQxNqZc="]
  services:
    w:
      loadBalancer:
        servers:
          - url: "{}"
tls:
  certificates:
    - certFile: |
{}
      keyFile: |
{}
"#,
        w.url(),
        indent(&c.pem, 8),
        indent(&c.key, 8),
    );
    let esc = Escale::start(&yaml, &[]);
    // Applied whole: once the plain route answers, the TLS one does.
    esc.routed("up.test", Duration::from_secs(5)).await;

    let mut tls = tls_connect(esc.web, "up.test", &[&c.der], b"http/1.1").await;
    let answer = upload_until_close(&mut tls, "up.test", "/upload", 16 << 20).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

/// A TLS client with a chosen protocol version and, optionally, a client
/// certificate; `Err` when the handshake (or the first exchange) fails.
async fn tls_exchange(
    addr: std::net::SocketAddr,
    sni: &str,
    trust: &CertificateDer<'static>,
    tls13_only: Option<bool>,
    client_cert: Option<(&CertificateDer<'static>, &rcgen::KeyPair)>,
) -> Result<(u16, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trust.clone()).unwrap();
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = match tls13_only {
        None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
        Some(true) => vec![&rustls::version::TLS13],
        Some(false) => vec![&rustls::version::TLS12],
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&versions)
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![cert.clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from(sni.to_string()).unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(conn);
    let req = http::Request::get("/")
        .header("host", sni)
        .body(Empty::<Bytes>::new())
        .unwrap();
    // With TLS 1.3 a refused client certificate shows on the first read.
    let res = tokio::time::timeout(Duration::from_secs(5), send.send_request(req))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| format!("request: {e}"))?;
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

/// TLS options: the default ones for every name (here TLS 1.3 only), and a
/// router's own (client certificates signed by a CA) for its host only; a
/// router naming options that do not exist is disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_apply_by_sni() {
    let app = Whoami::start("app");
    let server = cert(&["open.test", "mtls.test", "legacy.test"]);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let client_cert = rcgen::CertificateParams::new(vec!["client.test".to_string()])
        .unwrap()
        .signed_by(&client_key, &ca)
        .unwrap();
    let stranger_key = rcgen::KeyPair::generate().unwrap();
    let stranger = rcgen::CertificateParams::new(vec!["stranger.test".to_string()])
        .unwrap()
        .self_signed(&stranger_key)
        .unwrap();
    let yaml = format!(
        r#"http:
  routers:
    open:
      rule: "Host(`open.test`)"
      service: app
      tls: {{}}
    guarded:
      rule: "Host(`mtls.test`)"
      service: app
      middlewares: [pass-cert]
      tls:
        options: clients@file
    broken:
      rule: "Host(`broken.test`)"
      service: app
      tls:
        options: nowhere
  services:
    app:
      loadBalancer:
        servers:
          - url: "{}"
  middlewares:
    pass-cert:
      passTLSClientCert:
        pem: true
tls:
  certificates:
    - certFile: |
{}
      keyFile: |
{}
  options:
    default:
      minVersion: VersionTLS13
    clients:
      clientAuth:
        clientAuthType: RequireAndVerifyClientCert
        caFiles:
          - |
{}
"#,
        app.url(),
        indent(&server.pem, 8),
        indent(&server.key, 8),
        indent(&ca.pem(), 12),
    );
    let esc = Escale::start(&yaml, &[]);
    let open = |tls13: Option<bool>| tls_exchange(esc.web, "open.test", &server.der, tls13, None);
    let mut ready = false;
    for _ in 0..100 {
        if open(None).await.is_ok_and(|(s, _)| s == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "open.test answers over TLS: {}", esc.log_text());

    // The default options: TLS 1.3 only.
    assert_eq!(open(Some(true)).await.map(|(s, _)| s), Ok(200));
    let old = open(Some(false)).await;
    assert!(
        old.as_ref().is_err_and(|e| e.starts_with("handshake")),
        "{old:?}"
    );

    // The router's options: a client certificate signed by the CA.
    let signed = tls_exchange(
        esc.web,
        "mtls.test",
        &server.der,
        None,
        Some((client_cert.der(), &client_key)),
    )
    .await;
    let (status, body) = signed.expect("a signed client certificate is accepted");
    assert_eq!(status, 200, "{body}");
    // passTLSClientCert: the certificate, base64 of its DER, to the backend.
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(client_cert.der());
    assert!(
        body.contains(&format!("X-Forwarded-Tls-Client-Cert: {expected}")),
        "{body}"
    );
    let none = tls_exchange(esc.web, "mtls.test", &server.der, None, None).await;
    assert!(none.is_err(), "no client certificate: {none:?}");
    let unknown = tls_exchange(
        esc.web,
        "mtls.test",
        &server.der,
        None,
        Some((stranger.der(), &stranger_key)),
    )
    .await;
    assert!(unknown.is_err(), "a certificate of another CA: {unknown:?}");
    // Other names keep the default options: no certificate asked.
    assert_eq!(open(None).await.map(|(s, _)| s), Ok(200));

    assert!(
        esc.log_text().contains("unknown TLS options: nowhere"),
        "{}",
        esc.log_text()
    );
}

/// `escale check` builds every TLS options set and names the broken ones.
#[test]
fn check_names_broken_tls_options() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dynamic.yml");
    std::fs::write(
        &file,
        "tls:\n  options:\n    fine:\n      minVersion: VersionTLS12\n    mtls:\n      clientAuth:\n        clientAuthType: RequireAndVerifyClientCert\n        caFiles: [/nonexistent/ca.pem]\n    odd:\n      cipherSuites: [TLS_RSA_WITH_RC4_128_SHA]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_escale"))
        .args([
            "check",
            "--entrypoints.web.address=:1",
            &format!("--providers.file.filename={}", file.display()),
        ])
        .output()
        .expect("run escale check");
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "check must fail:\n{report}");
    assert!(report.contains("/nonexistent/ca.pem"), "{report}");
    assert!(report.contains("TLS_RSA_WITH_RC4_128_SHA"), "{report}");
    assert!(!report.contains("tls options fine"), "{report}");
}
