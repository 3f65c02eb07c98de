//! One delivery attempt: a webhook is POSTed with its body, signed; a postback is a GET of its
//! expanded URL. Anything but a 2xx answer within the timeout is a failure, retried with
//! exponential backoff ([`backoff`]).

use clicktrail_schemas::catalog::POSTBACK_MACROS;
use clicktrail_schemas::outbound::Macros;
use hmac::{Hmac, KeyInit, Mac};
use std::time::Duration;

/// The largest part of an answer's body kept in the log, in bytes.
pub const RESPONSE_EXCERPT: usize = 512;

/// What to send: a webhook's URL, body and secret, or a postback's expanded URL.
#[derive(Debug, Clone)]
pub enum Request {
    /// POST `body` to `url`, signed with `secret`.
    Webhook {
        /// Endpoint URL.
        url: String,
        /// The JSON body.
        body: String,
        /// The endpoint's secret (`whsec_…`).
        secret: String,
    },
    /// GET `url`.
    Postback {
        /// The expanded URL.
        url: String,
    },
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status, when one came.
    pub status: Option<u16>,
    /// The first [`RESPONSE_EXCERPT`] bytes of the body.
    pub response: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// Whether no more attempts are to be made (the receiver answered 410 Gone, or the
    /// endpoint was switched off).
    pub give_up: bool,
}

impl Answer {
    /// Whether the receiver took it (2xx).
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The `X-Clicktrail-Signature` of `body` sent at unix time `t`: `t=<t>,v1=<hex
/// HMAC-SHA256(secret, "<t>.<body>")>`, the same scheme as signed event requests.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// `template` with every `{macro}` of [`POSTBACK_MACROS`] replaced by its value,
/// percent-encoded as a URL component (RFC 3986 unreserved characters kept); absent values
/// are empty. Other braces are left as they are.
pub fn expand(template: &str, m: &Macros) -> String {
    let mut out = template.to_string();
    for name in POSTBACK_MACROS {
        let value = match name {
            "click_id" => m.click_id.as_deref().unwrap_or(""),
            "sub_id" => m.sub_id.as_deref().unwrap_or(""),
            "event_id" => &m.event_id,
            "action" => &m.action,
            "amount" => m.amount.as_deref().unwrap_or(""),
            _ => &m.currency,
        };
        let encoded: String =
            url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
        // form encoding writes spaces as `+`; in a URL component they are `%20`.
        out = out.replace(&format!("{{{name}}}"), &encoded.replace('+', "%20"));
    }
    out
}

/// The delay before attempt `attempt + 1` after `attempt` failed: `base × 2^(attempt−1)`,
/// at most `base × 720` (six hours for the default 30 s base).
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(20);
    (base * factor).min(base * 720)
}

/// Sends one attempt, giving up after `timeout`.
pub async fn attempt(
    client: &reqwest::Client,
    req: &Request,
    headers: &[(&'static str, String)],
    timeout: Duration,
) -> Answer {
    let builder = match req {
        Request::Webhook { url, body, secret } => {
            let t = chrono::Utc::now().timestamp();
            client
                .post(url)
                .header("content-type", "application/json")
                .header("x-clicktrail-signature", signature(secret, t, body))
                .body(body.clone())
        }
        Request::Postback { url } => client.get(url),
    };
    let builder = headers
        .iter()
        .fold(builder, |b, (name, value)| b.header(*name, value))
        .header(
            "user-agent",
            concat!("clicktrail/", env!("CARGO_PKG_VERSION")),
        )
        .timeout(timeout);
    match builder.send().await {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            // Only the excerpt is read: a receiver's answer may be of any size.
            let mut kept = Vec::with_capacity(RESPONSE_EXCERPT);
            while kept.len() < RESPONSE_EXCERPT {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        kept.extend_from_slice(&c[..c.len().min(RESPONSE_EXCERPT - kept.len())])
                    }
                    _ => break,
                }
            }
            let text = String::from_utf8_lossy(&kept).into_owned();
            let ok = (200..300).contains(&status);
            Answer {
                status: Some(status),
                response: (!text.is_empty()).then_some(text),
                error: (!ok).then(|| format!("answered {status}")),
                give_up: status == 410,
            }
        }
        Err(e) => Answer {
            status: None,
            response: None,
            error: Some(if e.is_timeout() {
                format!("no answer within {} s", timeout.as_secs())
            } else if e.is_connect() {
                format!("could not connect: {e}")
            } else {
                e.to_string()
            }),
            give_up: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_macro_is_url_encoded() {
        let m = Macros {
            click_id: Some("AbC-_x".into()),
            sub_id: Some("net 1&x=2/ü".into()),
            event_id: "e?1#".into(),
            action: "purchase".into(),
            amount: Some("49.90".into()),
            currency: "EUR".into(),
        };
        assert_eq!(
            expand(
                "https://n.example/pb?c={click_id}&s={sub_id}&e={event_id}&a={action}&v={amount}&cur={currency}&k={other}",
                &m
            ),
            "https://n.example/pb?c=AbC-_x&s=net%201%26x%3D2%2F%C3%BC&e=e%3F1%23&a=purchase&v=49.90&cur=EUR&k={other}"
        );
        let empty = Macros::default();
        assert_eq!(expand("x?s={sub_id}&v={amount}", &empty), "x?s=&v=");
    }

    #[test]
    fn signatures_verify_like_inbound_ones() {
        let sig = signature("s", 1, "{}");
        assert!(sig.starts_with("t=1,v1="), "{sig}");
        assert_eq!(sig.len(), "t=1,v1=".len() + 64);
        assert_ne!(sig, signature("s", 2, "{}"));
        assert_ne!(sig, signature("t", 1, "{}"));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let base = Duration::from_secs(30);
        assert_eq!(backoff(base, 1), Duration::from_secs(30));
        assert_eq!(backoff(base, 2), Duration::from_secs(60));
        assert_eq!(backoff(base, 5), Duration::from_secs(480));
        assert_eq!(backoff(base, 12), Duration::from_secs(6 * 3600));
        assert_eq!(backoff(base, 40), Duration::from_secs(6 * 3600));
        // The default schedule keeps trying for more than a day.
        let total: Duration = (1..crate::outbound::MAX_ATTEMPTS)
            .map(|a| backoff(base, a))
            .sum();
        assert!(total > Duration::from_secs(86_400), "{total:?}");
    }

    /// An `https` endpoint is reached over TLS: the first bytes it receives are a TLS
    /// handshake record (0x16, version 3.x), and a peer that does not speak TLS is a failed
    /// attempt, not a crash.
    #[tokio::test]
    async fn https_endpoints_are_reached_over_tls() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 2];
            conn.read_exact(&mut first).await.unwrap();
            first
        });
        let client = reqwest::Client::new();
        let req = Request::Postback {
            url: format!("https://127.0.0.1:{port}/pb"),
        };
        let answer = attempt(&client, &req, &[], Duration::from_secs(2)).await;
        assert_eq!(peer.await.unwrap(), [0x16, 0x03], "a TLS handshake");
        assert!(!answer.delivered() && answer.error.is_some(), "{answer:?}");
    }

    /// Only the excerpt of an answer is read: a receiver announcing 100 MB and sending 64 KB
    /// of it is answered at once, as delivered, with 512 bytes kept.
    #[tokio::test]
    async fn only_the_excerpt_of_an_answer_is_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 104857600\r\n\r\n";
            conn.write_all(head.as_bytes()).await.unwrap();
            conn.write_all(&[b'a'; 65536]).await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let req = Request::Postback {
            url: format!("http://127.0.0.1:{port}/pb"),
        };
        let started = std::time::Instant::now();
        let answer = attempt(&reqwest::Client::new(), &req, &[], Duration::from_secs(10)).await;
        assert!(answer.delivered(), "{answer:?}");
        assert_eq!(answer.response.map(|r| r.len()), Some(RESPONSE_EXCERPT));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
