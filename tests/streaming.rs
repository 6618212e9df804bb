//! Bodies stream through the proxy: 1 GiB each way while escale's resident
//! memory stays small.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

const GIB: u64 = 1 << 30;
const RSS_LIMIT_KIB: u64 = 64 * 1024;

fn setup() -> (Whoami, Escale) {
    let w = Whoami::start("stream");
    let yaml = format!(
        "http:\n  routers:\n    r:\n      rule: \"PathPrefix(`/`)\"\n      service: w\n  services:\n    w:\n      loadBalancer:\n        servers:\n          - url: \"{}\"\n",
        w.url()
    );
    let esc = Escale::start(&yaml, &[]);
    (w, esc)
}

async fn wait_ready(esc: &Escale) {
    let url = esc.url("/health");
    wait_status("config applied", &url, "", 200, Duration::from_secs(5)).await;
}

/// Samples escale's RSS while `work` runs; returns the peak in KiB.
async fn peak_rss_during<F: std::future::Future<Output = ()>>(esc: &Escale, work: F) -> u64 {
    let pid = esc.proc.pid();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        loop {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let rss = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
            peak = peak.max(rss);
            tokio::select! {
                _ = &mut stop_rx => return peak,
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    });
    work.await;
    let _ = stop_tx.send(());
    sampler.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_download_streams() {
    let (_w, esc) = setup();
    wait_ready(&esc).await;
    let url = esc.url(&format!("/data?size={GIB}"));
    let peak = peak_rss_during(&esc, async {
        let req = http::Request::get(&url)
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        let res = client().request(req).await.expect("download starts");
        assert_eq!(res.status(), 200);
        let mut body = res.into_body();
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.expect("body frame").into_data() {
                total += data.len() as u64;
            }
        }
        assert_eq!(total, GIB, "every byte arrives");
    })
    .await;
    assert!(peak > 0, "RSS was sampled");
    assert!(
        peak < RSS_LIMIT_KIB,
        "peak RSS {peak} KiB must stay under {RSS_LIMIT_KIB} KiB"
    );
    eprintln!("download 1 GiB: peak escale RSS {peak} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_upload_streams() {
    let (_w, esc) = setup();
    wait_ready(&esc).await;
    let url = esc.url("/upload");
    let peak = peak_rss_during(&esc, async {
        const CHUNK: usize = 64 * 1024;
        let chunk = Bytes::from(vec![b'x'; CHUNK]);
        let chunks = (GIB as usize) / CHUNK;
        let stream = futures_util::stream::iter(0..chunks)
            .map(move |_| Ok::<_, std::convert::Infallible>(Frame::data(chunk.clone())));
        let body = StreamBody::new(stream);
        let req = http::Request::post(&url).body(body).unwrap();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<StreamBody<_>>();
        let res = client.request(req).await.expect("upload completes");
        assert_eq!(res.status(), 200);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains(&GIB.to_string()),
            "backend counted every byte: {text}"
        );
    })
    .await;
    assert!(
        peak < RSS_LIMIT_KIB,
        "peak RSS {peak} KiB must stay under {RSS_LIMIT_KIB} KiB"
    );
    eprintln!("upload 1 GiB: peak escale RSS {peak} KiB");
}
