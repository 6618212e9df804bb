//! A connector for hyper-util's pooled client that speaks TLS to `https`
//! URLs with a [`TlsClient`], and plain TCP to `http` ones. The proxy's own
//! path to backends does not use it (`proxy::pool`); side requests do, such
//! as `forwardAuth`'s to its auth server.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;

use super::client::TlsClient;
use crate::proxy::backend_io::BackendIo;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone)]
pub struct TlsConnector {
    http: HttpConnector,
    /// `None`: `https` URLs are refused.
    tls: Option<Arc<TlsClient>>,
}

impl TlsConnector {
    /// `http` must accept `https` URLs (`enforce_http(false)`); this is
    /// ensured here.
    pub fn new(mut http: HttpConnector, tls: Option<Arc<TlsClient>>) -> Self {
        http.enforce_http(false);
        TlsConnector { http, tls }
    }
}

/// A connection made by [`TlsConnector`].
pub struct Stream(TokioIo<BackendIo>);

impl tower_service::Service<Uri> for TlsConnector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().unwrap_or_default().to_string();
        let tls = self.tls.clone();
        let connecting = self.http.call(uri);
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            if !https {
                return Ok(Stream(TokioIo::new(BackendIo::Tcp(tcp))));
            }
            let tls = tls.ok_or("no TLS settings for an https address")?;
            // HTTP/1.1 only: the pooled client is set up for it.
            let stream = tls.connect(&host, tcp, true).await?;
            Ok(Stream(TokioIo::new(BackendIo::from(stream))))
        })
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Read for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl Write for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
