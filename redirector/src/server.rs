//! The standalone redirector server: hyper over HTTP/1.1, with `/health/live`,
//! `/health/ready` and `/metrics` beside the redirect routes.

use crate::Redirector;
use bytes::Bytes;
use clicktrail_bus::Lifecycle;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Renders the Prometheus exposition.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

/// Serves until shutdown begins, then drains open connections for up to `drain`.
pub async fn serve(
    listener: TcpListener,
    redirector: Arc<Redirector>,
    lifecycle: Lifecycle,
    metrics: MetricsRender,
    drain: Duration,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = lifecycle.stopped() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let r = redirector.clone();
        let lc = lifecycle.clone();
        let m = metrics.clone();
        let svc = service_fn(move |req: Request<Incoming>| {
            let resp = match req.uri().path() {
                "/health/live" => text(StatusCode::OK, "ok\n".into()),
                "/health/ready" if lc.is_ready() => text(StatusCode::OK, "ready\n".into()),
                "/health/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
                "/metrics" => text(StatusCode::OK, m()),
                _ => r.handle(req.method(), req.uri(), req.headers(), peer.ip()),
            };
            async move { Ok::<_, std::convert::Infallible>(resp) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), svc);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain deadline");
    }
    Ok(())
}
