//! TLS to backends: `https://` servers with the `serversTransport` TLS
//! settings (`insecureSkipVerify`, `rootCAs`, `serverName`, `certificates`,
//! `disableHTTP2`), HTTP/2 by ALPN, upgrades over HTTP/1.1, health checks
//! over TLS, and broken settings reported. The backends are whoami serving
//! TLS on loopback.

mod common;

use std::time::Duration;

use common::*;

/// A CA, and files for certificates it signs, in a directory of the test's.
struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "escale test CA");
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca: rcgen::CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// Writes the CA's certificate; returns its path.
    fn ca_file(&self) -> String {
        self.write("ca.pem", &self.ca.pem())
    }

    /// A certificate for `names` signed by the CA: (cert path, key path).
    fn issue(&self, file: &str, names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        (
            self.write(&format!("{file}.pem"), &cert.pem()),
            self.write(&format!("{file}.key"), &key.serialize_pem()),
        )
    }

    fn write(&self, name: &str, content: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }
}

fn https_url(w: &Whoami) -> String {
    format!("https://{}", w.addr)
}

fn router(name: &str, host: &str, service: &str) -> String {
    format!("    {name}:\n      rule: \"Host(`{host}`)\"\n      service: {service}\n")
}

fn service(name: &str, url: &str, transport: Option<&str>) -> String {
    let mut s = lb(name, &[url.to_string()]);
    if let Some(t) = transport {
        s.push_str(&format!("        serversTransport: {t}\n"));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_servers_are_verified_as_configured() {
    let pki = Pki::new();
    let (cert, key) = pki.issue("backend", &["backend.test"]);
    let verified = Whoami::start_with("verified", 0, &["--tls-cert", &cert, "--tls-key", &key]);
    let self_signed = Whoami::start_with("self-signed", 0, &["--tls-self-signed"]);
    let ca = pki.ca_file();

    let routers = [
        router("trusted", "trusted.test", "trusted"),
        router("wrongname", "wrongname.test", "wrongname"),
        router("untrusted", "untrusted.test", "untrusted"),
        router("insecure", "insecure.test", "insecure"),
        router("http1", "http1.test", "http1"),
        router("plain", "plain.test", "plain"),
    ]
    .concat();
    let plain = Whoami::start("plain");
    let services = [
        service("trusted", &https_url(&verified), Some("byca")),
        service("wrongname", &https_url(&verified), Some("wrongname")),
        // The default transport checks against the system's CAs, which did
        // not sign this certificate.
        service("untrusted", &https_url(&self_signed), None),
        service("insecure", &https_url(&self_signed), Some("insecure")),
        service("http1", &https_url(&self_signed), Some("http1")),
        service("plain", &plain.url(), None),
    ]
    .concat();
    let transports = format!(
        "  serversTransports:\n\
         \x20   byca:\n      serverName: backend.test\n      rootCAs: [\"{ca}\"]\n\
         \x20   wrongname:\n      serverName: other.test\n      rootCAs: [\"{ca}\"]\n\
         \x20   insecure:\n      insecureSkipVerify: true\n\
         \x20   http1:\n      insecureSkipVerify: true\n      disableHTTP2: true\n"
    );
    let config = format!("{}{transports}", routes_yaml(&routers, &services, ""));
    let escale = Escale::start(&config, &[]);
    escale.routed("plain.test", Duration::from_secs(10)).await;

    // Verified by the CA, with the serverName as SNI; HTTP/2 chosen by ALPN.
    let a = get(&escale.url("/x"), "trusted.test").await;
    assert_eq!(a.status, 200, "{}\n{}", a.body, escale.log_text());
    assert_eq!(a.echo("Name").as_deref(), Some("verified"));
    assert_eq!(a.echo("TLS-Sni").as_deref(), Some("backend.test"));
    assert!(a.body.contains("GET /x HTTP/2.0"), "{}", a.body);
    assert_eq!(a.echo("Host").as_deref(), Some("trusted.test"));

    // A certificate for another name, or from an unknown CA: a 500 as in
    // Traefik (a matter of configuration), and the log says why.
    let a = get(&escale.url("/"), "wrongname.test").await;
    assert_eq!((a.status, a.body.as_str()), (500, "Internal Server Error"));
    let a = get(&escale.url("/"), "untrusted.test").await;
    assert_eq!(a.status, 500, "{}", a.body);
    let log = escale.log_text();
    assert!(
        log.contains("TLS handshake with") && log.contains("not valid for name \"other.test\""),
        "{log}"
    );
    assert!(log.contains("UnknownIssuer"), "{log}");

    // insecureSkipVerify takes the self-signed one; an IP URL sends no SNI.
    let a = get(&escale.url("/y"), "insecure.test").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.echo("TLS-Sni").as_deref(), Some("-"));
    assert!(a.body.contains("GET /y HTTP/2.0"), "{}", a.body);

    // disableHTTP2 offers HTTP/1.1 only; the connection is kept and reused.
    // One client connection, so both requests are served by one of
    // escale's threads, whose pool holds the backend connection.
    // A connection of its own: a pooled client may open a second one when
    // the first is not back in its pool yet.
    let stream = tokio::net::TcpStream::connect(escale.web).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut answers = Vec::new();
    for _ in 0..2 {
        let req = http::Request::get("/z")
            .header("host", "http1.test")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        sender.ready().await.unwrap();
        let res = sender.send_request(req).await.unwrap();
        let status = res.status().as_u16();
        let body = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        answers.push(Answer {
            status,
            headers: http::HeaderMap::new(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    let (first, second) = (&answers[0], &answers[1]);
    assert_eq!((first.status, second.status), (200, 200), "{}", first.body);
    assert!(first.body.contains("GET /z HTTP/1.1"), "{}", first.body);
    assert_eq!(
        first.echo("RemoteAddr"),
        second.echo("RemoteAddr"),
        "one pooled TLS connection"
    );

    // Plain backends next to them are untouched.
    assert_eq!(get(&escale.url("/"), "plain.test").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_reach_servers_that_require_them() {
    let pki = Pki::new();
    let (cert, key) = pki.issue("backend", &["backend.test"]);
    let (client_cert, client_key) = pki.issue("client", &["escale.client"]);
    let ca = pki.ca_file();
    let backend = Whoami::start_with(
        "mtls",
        0,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--tls-client-ca",
            &ca,
        ],
    );
    let routers = [
        router("with", "with.test", "with"),
        router("without", "without.test", "without"),
    ]
    .concat();
    let services = [
        service("with", &https_url(&backend), Some("withcert")),
        service("without", &https_url(&backend), Some("nocert")),
    ]
    .concat();
    let transports = format!(
        "  serversTransports:\n\
         \x20   withcert:\n      serverName: backend.test\n      rootCAs: [\"{ca}\"]\n\
         \x20     certificates:\n        - certFile: \"{client_cert}\"\n          keyFile: \"{client_key}\"\n\
         \x20   nocert:\n      serverName: backend.test\n      rootCAs: [\"{ca}\"]\n"
    );
    let config = format!("{}{transports}", routes_yaml(&routers, &services, ""));
    let escale = Escale::start(&config, &[]);
    escale.routed("with.test", Duration::from_secs(10)).await;

    let a = get(&escale.url("/"), "with.test").await;
    assert_eq!(a.echo("TLS-Client-Cert").as_deref(), Some("true"));
    // In TLS 1.3 the server checks the client's certificate after the
    // client's handshake is done: its refusal comes as the request goes
    // out, a 502.
    let a = get(&escale.url("/"), "without.test").await;
    assert_eq!(a.status, 502, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_to_https_servers_go_over_http1() {
    let backend = Whoami::start_with("ws", 0, &["--tls-self-signed"]);
    let routers = router("ws", "ws.test", "ws");
    let services = service("ws", &https_url(&backend), Some("insecure"));
    let config = format!(
        "{}  serversTransports:\n    insecure:\n      insecureSkipVerify: true\n",
        routes_yaml(&routers, &services, "")
    );
    let escale = Escale::start(&config, &[]);
    escale.routed("ws.test", Duration::from_secs(10)).await;

    let mut ws = common::ws::ws_connect(escale.web, "ws.test").await;
    use tokio::io::AsyncWriteExt;
    ws.write_all(&common::ws::client_frame(0x1, b"over TLS"))
        .await
        .unwrap();
    let (fin, opcode, payload) =
        tokio::time::timeout(Duration::from_secs(5), common::ws::server_frame(&mut ws))
            .await
            .expect("echo within 5 s");
    assert!(fin);
    assert_eq!(opcode, 0x1);
    assert_eq!(payload, b"over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_probe_https_servers_over_tls() {
    let backend = Whoami::start_with("probed", 0, &["--tls-self-signed"]);
    let routers = [
        router("up", "up.test", "up"),
        router("down", "down.test", "down"),
    ]
    .concat();
    let check = |status: u16| {
        format!(
            "        healthCheck:\n          path: /health\n          interval: 100ms\n          timeout: 2s\n          status: {status}\n"
        )
    };
    let services = format!(
        "{}{}{}{}",
        service("up", &https_url(&backend), Some("insecure")),
        check(200),
        service("down", &https_url(&backend), Some("insecure")),
        check(204),
    );
    let config = format!(
        "{}  serversTransports:\n    insecure:\n      insecureSkipVerify: true\n",
        routes_yaml(&routers, &services, "")
    );
    let escale = Escale::start(&config, &[]);
    escale.routed("up.test", Duration::from_secs(10)).await;

    // The probe expecting 204 fails on the 200 it gets over TLS: probes
    // complete HTTP exchanges with the TLS server.
    eventually(
        "the probe of `down` fails",
        Duration::from_secs(10),
        || async {
            escale
                .log_text()
                .contains("server DOWN service=down@file server=https://127.0.0.1")
        },
    )
    .await;
    assert!(
        escale
            .log_text()
            .contains("received status code 200, expected 204"),
        "{}",
        escale.log_text()
    );
    // The other one passes many probes, which a plain-text probe of a TLS
    // port would fail.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let a = get(&escale.url("/"), "up.test").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let log = escale.log_text();
    assert!(!log.contains("service=up@file"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_tls_settings_disable_only_their_services() {
    let backend = Whoami::start_with("tls", 0, &["--tls-self-signed"]);
    let plain = Whoami::start("plain");
    let routers = [
        router("broken", "broken.test", "broken"),
        router("plain", "plain.test", "plain"),
    ]
    .concat();
    let services = [
        service("broken", &https_url(&backend), Some("missingca")),
        // The same broken transport does not matter to plain servers.
        service("plain", &plain.url(), Some("missingca")),
    ]
    .concat();
    let config = format!(
        "{}  serversTransports:\n    missingca:\n      rootCAs: [\"/nonexistent/ca.pem\"]\n",
        routes_yaml(&routers, &services, "")
    );
    let escale = Escale::start(&config, &[]);
    escale.routed("plain.test", Duration::from_secs(10)).await;
    let a = get(&escale.url("/"), "broken.test").await;
    assert_eq!(a.status, 404, "{}", a.body);
    let log = escale.log_text();
    assert!(
        log.contains(
            "service broken@file (broken@file): serversTransport \"missingca@file\" cannot make \
             TLS connections to its https servers: rootCAs: cannot read CA file `/nonexistent/ca.pem`"
        ),
        "{log}"
    );
    assert!(!log.contains("service plain@file"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_servers_transport_settings_apply_to_the_default_transport() {
    let pki = Pki::new();
    let (cert, key) = pki.issue("backend", &["127.0.0.1"]);
    let backend = Whoami::start_with("byip", 0, &["--tls-cert", &cert, "--tls-key", &key]);
    let other = Whoami::start_with("anything", 0, &["--tls-self-signed"]);
    let routers = [
        router("byip", "byip.test", "byip"),
        router("other", "other.test", "other"),
    ]
    .concat();
    let services = [
        service("byip", &https_url(&backend), None),
        service("other", &https_url(&other), None),
    ]
    .concat();
    let config = routes_yaml(&routers, &services, "");
    let ca = pki.ca_file();
    let escale = Escale::start(&config, &[&format!("--serversTransport.rootCAs={ca}")]);
    // Verified against the static rootCAs, by the IP address in the URL.
    wait_status(
        "byip routed",
        &escale.url("/"),
        "byip.test",
        200,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(get(&escale.url("/"), "other.test").await.status, 500);

    let escale = Escale::start(&config, &["--serversTransport.insecureSkipVerify=true"]);
    wait_status(
        "other routed",
        &escale.url("/"),
        "other.test",
        200,
        Duration::from_secs(10),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_auth_asks_https_auth_servers() {
    // whoami answers 200 to anything: an auth server that lets all through.
    let auth = Whoami::start_with("auth", 0, &["--tls-self-signed"]);
    let app = Whoami::start("app");
    let routers = String::from(
        "    trusted:\n      rule: \"Host(`trusted.test`)\"\n      service: app\n      middlewares: [auth-insecure]\n\
         \x20   checked:\n      rule: \"Host(`checked.test`)\"\n      service: app\n      middlewares: [auth-checked]\n",
    );
    let services = lb("app", &[app.url()]);
    let address = format!("https://{}/verify", auth.addr);
    let middlewares = format!(
        "    auth-insecure:\n      forwardAuth:\n        address: \"{address}\"\n        tls:\n          insecureSkipVerify: true\n\
         \x20   auth-checked:\n      forwardAuth:\n        address: \"{address}\"\n"
    );
    let escale = Escale::start(&routes_yaml(&routers, &services, &middlewares), &[]);
    wait_status(
        "trusted routed",
        &escale.url("/"),
        "trusted.test",
        200,
        Duration::from_secs(10),
    )
    .await;
    let a = get(&escale.url("/page"), "trusted.test").await;
    assert_eq!(a.echo("Name").as_deref(), Some("app"), "{}", a.body);
    // The self-signed certificate is refused by the default check: the
    // auth server cannot be asked, and the request is not let through.
    let a = get(&escale.url("/page"), "checked.test").await;
    assert_eq!(a.status, 500, "{}", a.body);
    let log = escale.log_text();
    assert!(
        log.contains("forwardAuth: error calling the auth server") && log.contains("UnknownIssuer"),
        "{log}"
    );
}
