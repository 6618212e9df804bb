//! The probe behind `escale healthcheck` (Traefik's `traefik healthcheck`):
//! GET `/ping` on the ping entrypoint, healthy on 200.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot reach {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("no answer from {addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed answer from {0}")]
    Malformed(SocketAddr),
    #[error("{addr} answered {status}")]
    Status { addr: SocketAddr, status: u16 },
}

/// Where to probe a listener: an unspecified bind address (`:8080`,
/// `0.0.0.0`, `::`) is reached on loopback.
pub fn probe_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Sends `GET /ping` and succeeds on 200. Blocking, bounded by `timeout`,
/// so it runs before any runtime exists.
pub fn probe(listen: SocketAddr, timeout: Duration) -> Result<(), ProbeError> {
    let addr = probe_address(listen);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|source| ProbeError::Connect { addr, source })?;
    let io = |source| ProbeError::Io { addr, source };
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let request = format!(
        "GET /ping HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: escale-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    // The status line is all we need.
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| line.starts_with("HTTP/"))
        .ok_or(ProbeError::Malformed(addr))?;
    if status == 200 {
        Ok(())
    } else {
        Err(ProbeError::Status { addr, status })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static str) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(answer.as_bytes());
            }
        });
        addr
    }

    #[test]
    fn healthy_on_200_only() {
        let ok = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
        assert!(probe(ok, Duration::from_secs(2)).is_ok());
        let draining = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert!(matches!(
            probe(draining, Duration::from_secs(2)),
            Err(ProbeError::Status { status: 503, .. })
        ));
        let junk = serve_once("garbage\r\n");
        assert!(matches!(
            probe(junk, Duration::from_secs(2)),
            Err(ProbeError::Malformed(_))
        ));
    }

    #[test]
    fn unspecified_listen_address_is_probed_on_loopback() {
        let a = probe_address("0.0.0.0:8080".parse().unwrap());
        assert_eq!(a, "127.0.0.1:8080".parse().unwrap());
        let a = probe_address("[::]:8080".parse().unwrap());
        assert_eq!(a, "[::1]:8080".parse().unwrap());
    }
}
