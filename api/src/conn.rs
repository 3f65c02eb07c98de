//! Connections of every role's port: how many are accepted, and how long a slow or silent
//! client may hold one.
//!
//! - **Connection limit** ([`ConnLimits::max_connections`], default 10,000): beyond it a new
//!   connection is answered `503` with `Retry-After: 1` and closed, without reading it.
//! - **Header read timeout** ([`ConnLimits::header_read_timeout`], default 10 s): from the first
//!   byte of a request, its line and headers must arrive within it (a client sending one header
//!   line every few seconds is cut off).
//! - **Body read timeout** ([`ConnLimits::body_read_timeout`], default 30 s): a handler reading
//!   the body gives up after it and answers `408` (see [`crate::body::read_limited`]).
//! - **Idle timeout** ([`ConnLimits::idle_timeout`], default 60 s): a keep-alive connection with
//!   no request in flight and no byte either way for that long is closed.
//!
//! Defaults follow common front-server practice (nginx: 60 s client header and body timeouts,
//! 75 s keep-alive), tighter on headers because every legitimate client sends them at once.

use axum::Router;
use axum::extract::ConnectInfo;
use clicktrail_schemas::metric_names::http::CONNECTIONS_REFUSED;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Connection bounds of a port; every one is a flag (`--http-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Open connections at most (default 10,000).
    pub max_connections: usize,
    /// Time to receive a request's line and headers (default 10 s).
    pub header_read_timeout: Duration,
    /// Time to receive a request's body (default 30 s).
    pub body_read_timeout: Duration,
    /// Time a connection may sit with no request and no traffic (default 60 s).
    pub idle_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// No request head is being read.
const NO_HEAD: u64 = u64::MAX;

/// What a connection's watchdog knows: when bytes last moved, when the head of the request
/// being received began, and how many requests are in flight (times in ms since `started`).
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    head_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Bytes arrived: with no request in flight they begin a request's head.
    fn received(&self) {
        let now = self.now_ms();
        self.last_ms.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ =
                self.head_ms
                    .compare_exchange(NO_HEAD, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn idle_for(&self) -> Duration {
        let last = self.last_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().saturating_sub(last))
    }

    /// How long the head being received has taken, if one is.
    fn head_for(&self) -> Option<Duration> {
        let head = self.head_ms.load(Ordering::Relaxed);
        (head != NO_HEAD).then(|| Duration::from_millis(self.now_ms().saturating_sub(head)))
    }

    /// Why the connection should close now, if it should.
    fn expired(&self, limits: &ConnLimits) -> Option<&'static str> {
        if self
            .head_for()
            .is_some_and(|t| t >= limits.header_read_timeout)
        {
            return Some("header");
        }
        let quiet = self.in_flight.load(Ordering::Relaxed) == 0 && self.head_for().is_none();
        (quiet && self.idle_for() >= limits.idle_timeout).then_some("idle")
    }
}

/// A TCP stream that records when bytes move.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.received();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    /// A request whose head was read in full.
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_ms.store(NO_HEAD, Ordering::Relaxed);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// The answer to a connection beyond the limit.
const OVER_LIMIT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
Content-Type: application/json\r\nContent-Length: 75\r\nConnection: close\r\n\r\n\
{\"error\":\"unavailable\",\"message\":\"too many open connections; retry shortly\"}";

/// Bytes of a request head looked at before the connection is handed to hyper.
const HEAD_PEEK: usize = 16 * 1024;

/// Why the first request head on `stream` cannot be parsed (an illegal character in the
/// request target, such as a literal `<`, a bad method or version, a broken header), found by
/// peeking at it without consuming anything; `None` when it parses, is still incomplete after
/// `limit` (at most one second) or [`HEAD_PEEK`] bytes, or has more headers than looked at.
/// hyper answers those, and a malformed later request on a kept-alive connection, itself
/// (an empty 400 or 431); this lets the common case carry the documented JSON error body.
async fn malformed_head(stream: &TcpStream, limit: Duration) -> Option<String> {
    // At most a second: a head that takes longer is left to hyper (and its timeout), so that a
    // slow client never gets more than the documented header timeout plus this second.
    let deadline = Instant::now() + limit.min(Duration::from_secs(1));
    let mut buf = vec![0u8; HEAD_PEEK];
    let mut seen = 0;
    loop {
        let n = tokio::time::timeout_at(deadline.into(), stream.peek(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        if n > seen {
            seen = n;
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut head = httparse::Request::new(&mut headers);
            match head.parse(&buf[..n]) {
                // httparse takes some targets hyper's URI parser refuses (such as `<`).
                Ok(httparse::Status::Complete(_)) => {
                    let target = head.path.unwrap_or("/");
                    return http::Uri::try_from(target)
                        .err()
                        .map(|e| format!("request target: {e}{TARGET_HINT}"));
                }
                Ok(httparse::Status::Partial) if n < HEAD_PEEK => {}
                Ok(httparse::Status::Partial) => return None,
                Err(httparse::Error::TooManyHeaders) => return None,
                // A space in the path shows up as a bad version.
                Err(e @ (httparse::Error::Token | httparse::Error::Version)) => {
                    return Some(format!("{e} in the request line{TARGET_HINT}"));
                }
                Err(e) => return Some(e.to_string()),
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        // More of the head is on its way: look again shortly.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Answers a malformed head with the JSON 400 and closes: what the client sent is read first,
/// so that closing sends a FIN after the answer rather than a reset that could discard it.
async fn refuse(stream: &mut TcpStream, why: &str) {
    use tokio::io::AsyncReadExt;
    let mut sink = vec![0u8; HEAD_PEEK];
    let _ = tokio::time::timeout(Duration::from_millis(20), stream.read(&mut sink)).await;
    if stream.write_all(&bad_request(why)).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    // Whatever else is on its way is read and dropped until the client closes.
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(200), stream.read(&mut sink)).await
    {
        if n == 0 {
            break;
        }
    }
}

/// What a client may have done wrong in a request line.
const TARGET_HINT: &str = "; characters such as < > and spaces must be percent-encoded in the \
path and query, and a placeholder such as <event_id> replaced by a real value";

/// The JSON 400 for a request head that cannot be parsed.
fn bad_request(why: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "error": "invalid_request",
        "message": format!("malformed request: {why}"),
    })
    .to_string();
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Accepts connections on `listener` and serves `app` on each until `stop` resolves; then
/// stops accepting and lets open connections finish their requests. Errors: the listener
/// failed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    crate::body::set_read_timeout(limits.body_read_timeout);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Out of descriptors or a connection reset before accept: keep serving.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics::counter!(CONNECTIONS_REFUSED).increment(1);
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(OVER_LIMIT))
                    .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            head_ms: AtomicU64::new(NO_HEAD),
            in_flight: AtomicUsize::new(0),
        });
        let router = app.clone();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            let guard = InFlight::new(&requests);
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move {
                use tower::Service;
                let resp = router.call(req.map(axum::body::Body::new)).await;
                drop(guard);
                resp
            }
        });
        let graceful_watch = graceful.watcher();
        tokio::spawn(async move {
            let _permit = permit;
            let mut stream = stream;
            if let Some(why) = malformed_head(&stream, limits.header_read_timeout).await {
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), refuse(&mut stream, &why)).await;
                return;
            }
            let io = TokioIo::new(Watched {
                inner: stream,
                activity: activity.clone(),
            });
            // The watchdog below enforces the header and idle timeouts; hyper's own header
            // timer (which also runs between requests) only backs it up.
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.idle_timeout + limits.header_read_timeout)
                .serve_connection(io, service);
            let conn = graceful_watch.watch(conn);
            tokio::pin!(conn);
            let tick = limits
                .header_read_timeout
                .min(limits.idle_timeout)
                .div_f64(10.0)
                .max(Duration::from_millis(50));
            loop {
                tokio::select! {
                    _ = &mut conn => break,
                    _ = tokio::time::sleep(tick) => {
                        if let Some(why) = activity.expired(&limits) {
                            tracing::debug!(%peer, why, "closing a slow or silent connection");
                            // Dropping the connection closes it.
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
