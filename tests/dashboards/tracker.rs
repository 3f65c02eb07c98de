//! The browser tracker in a real headless Chromium: a shopper follows an influencer's link,
//! lands on a shop's page (served here, on its own origin) with `click_id` in the URL; the page
//! loads `t.js` from clicktrail, the shopper goes on to a second page (the id survives),
//! adds to cart and buys; the purchase is credited to that influencer, as a browser event that
//! by default counts as an event and not as revenue, and as revenue once the advertiser says
//! so. A page on an origin not on the publishable key's allow-list is refused by CORS and
//! nothing it sends is stored. A visit without tracking data sends its events unattributed,
//! with one console warning in debug mode.

use crate::browser::Browser;
use crate::common::{self, Server, click_id};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SHOPPER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

/// A site on a free loopback port, its origin, and the listener to serve it from.
async fn bind_site() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    (listener, origin)
}

/// Serves the shop's pages from `listener`: every path is a page named after it that loads
/// `t.js` from `tracker` with `key` and links to `/product`.
fn serve_pages(listener: TcpListener, tracker: String, key: String) {
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let (tracker, key) = (tracker.clone(), key.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let page = path
                    .split('?')
                    .next()
                    .unwrap_or("/")
                    .trim_start_matches('/');
                let body = format!(
                    "<!doctype html><html><head><meta charset=utf-8><title>{page}</title>\
                     <link rel=icon href=\"data:,\">\
                     <script src=\"{tracker}/t.js\" data-key=\"{key}\" data-debug=\"true\"></script>\
                     </head><body><h1>{page}</h1><a id=next href=\"/product\">A product</a></body></html>"
                );
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
}

/// Runs `call` (an expression giving the tracker's promise) in the page and waits for its
/// outcome: `{ok, status, body}`.
async fn tracked(b: &Browser, call: &str) -> Value {
    b.js(&format!(
        "window.__out = null; Promise.resolve({call}).then((r) => {{ window.__out = r; }}, \
         (e) => {{ window.__out = {{thrown: String(e)}}; }}); return true;"
    ))
    .await;
    b.until(call, "return window.__out !== null;").await;
    b.js("return window.__out;").await
}

#[tokio::test]
async fn a_page_tracks_a_shopper_from_landing_to_purchase() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;

    // The shop's site, allowed on its key; a second site that is not.
    let (listener, site) = bind_site().await;
    let shop = s
        .shop("Tracked shop", &format!("{site}/landing"), &["Ana", "Ben"])
        .await;
    let pk = s
        .admin_post(
            &format!(
                "/api/v1/admin/advertisers/{}/publishable-keys",
                shop.advertiser
            ),
            json!({"allowed_origins": [format!("{site}/")]}),
        )
        .await;
    assert_eq!(pk["allowed_origins"], json!([site]), "{pk}");
    let key = pk["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("pk_"), "{key}");
    serve_pages(listener, s.base.clone(), key.clone());
    let (listener, elsewhere) = bind_site().await;
    serve_pages(listener, s.base.clone(), key.clone());

    // `t.js` is cacheable for an hour and small.
    let r = s.http.get(s.url("/t.js")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "public, max-age=3600");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );
    let size = r.bytes().await.unwrap().len();
    eprintln!("figure: t.js is {size} bytes");
    assert!(size < 16 * 1024, "t.js is {size} bytes");

    // The shopper follows Ben's link and lands on the shop with the click id in the URL.
    let redirect = s.click(&format!("/r/{}", shop.codes[1]), SHOPPER).await;
    let click = click_id(&redirect);
    let landing = redirect.headers()["location"].to_str().unwrap().to_string();
    assert!(
        landing.starts_with(&format!("{site}/landing?")),
        "{landing}"
    );
    b.c.goto(&landing).await.unwrap();
    b.until(
        "the tracker",
        "return !!(window.clicktrail && window.clicktrail.loaded);",
    )
    .await;
    assert_eq!(
        b.js("return clicktrail.ids().click_id;").await,
        json!(click)
    );

    // A second page, without the id in its URL: the id survives.
    b.click("#next").await;
    b.until(
        "the product page",
        "return location.pathname === '/product' && !!window.clicktrail;",
    )
    .await;
    assert_eq!(b.js("return location.search;").await, json!(""));
    assert_eq!(
        b.js("return clicktrail.ids().click_id;").await,
        json!(click)
    );

    let cart = tracked(
        &b,
        "clicktrail.track('add_to_cart', {value: '19.90', currency: 'EUR', sku: 'mug-1'})",
    )
    .await;
    assert_eq!(cart["status"], json!(200), "{cart}");
    let bought = tracked(
        &b,
        "clicktrail.purchase({value: 49.9, currency: 'EUR', order_id: 'web-1'})",
    )
    .await;
    assert_eq!(bought["status"], json!(200), "{bought}");
    let purchase_id = bought["body"]["event_ids"][0].as_str().unwrap().to_string();
    let errors = b.console_errors().await;
    assert!(
        errors.is_empty(),
        "console errors on the shop's page: {errors:?}"
    );

    // A page on another origin: the browser refuses to let it read any answer (CORS), and
    // nothing it sends is stored, with or without a preflight.
    b.c.goto(&format!("{elsewhere}/landing?click_id={click}"))
        .await
        .unwrap();
    b.until(
        "the tracker elsewhere",
        "return !!(window.clicktrail && window.clicktrail.loaded);",
    )
    .await;
    let refused = tracked(&b, "clicktrail.purchase({value: 10, order_id: 'evil-1'})").await;
    assert_eq!(refused["ok"], json!(false), "{refused}");
    assert_eq!(
        refused["status"],
        json!(0),
        "the answer is hidden from the page: {refused}"
    );
    let preflighted = tracked(
        &b,
        &format!(
            "fetch('{}/api/v1/browser/events?key={key}', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{action: 'signup'}})}}).then((r) => ({{status: r.status}}))",
            s.base
        ),
    )
    .await;
    assert!(
        preflighted["thrown"]
            .as_str()
            .is_some_and(|e| e.contains("Failed to fetch")),
        "{preflighted}"
    );
    let _ = b.console_errors().await; // the refused requests are logged by the browser

    // The purchase is Ben's, sent from the browser, an event without revenue by default.
    s.drain().await;
    let audit: Value = s
        .get_with_key(&format!("/api/v1/attribution/{purchase_id}"), &shop.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit["attributed"], json!(true), "{audit}");
    assert_eq!(audit["attributed_by"], json!("click_id"), "{audit}");
    assert_eq!(
        audit["influencer_id"],
        json!(shop.influencers[1]),
        "{audit}"
    );
    let rows = s
        .sql(
            &shop.key,
            "SELECT action, source, value_minor, order_id, properties FROM events ORDER BY action",
        )
        .await;
    assert_eq!(
        rows.len(),
        2,
        "only the allowed page's events are stored: {rows:?}"
    );
    assert_eq!(rows[0]["action"], json!("add_to_cart"));
    assert_eq!(rows[0]["source"], json!("browser"));
    assert_eq!(rows[0]["value_minor"], json!(1990));
    assert!(rows[0]["properties"].as_str().unwrap().contains("mug-1"));
    assert_eq!(rows[1]["action"], json!("purchase"));
    assert_eq!(rows[1]["source"], json!("browser"));
    assert_eq!(rows[1]["value_minor"], Value::Null, "no revenue by default");
    let props: Value = serde_json::from_str(rows[1]["properties"].as_str().unwrap()).unwrap();
    assert_eq!(props["declared_value_minor"], json!(4990));

    // The backend's purchase of the same order is not taken for a duplicate of it.
    let r = s
        .post_events(
            &shop.key,
            &json!({"action": "purchase", "event_id": "srv-web-1", "order_id": "web-1", "value": "49.90", "currency": "EUR", "click_id": click}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Once the advertiser counts browser purchases, one counts as revenue.
    let r = s
        .http
        .patch(s.url(&format!("/api/v1/admin/advertisers/{}", shop.advertiser)))
        .bearer_auth(common::ADMIN)
        .json(&json!({"browser_purchases_count": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.sync_catalog().await;
    b.c.goto(&format!("{site}/product")).await.unwrap();
    b.until(
        "the tracker",
        "return !!(window.clicktrail && window.clicktrail.loaded);",
    )
    .await;
    let counted = tracked(
        &b,
        "clicktrail.purchase({value: '5.00', currency: 'EUR', order_id: 'web-2'})",
    )
    .await;
    assert_eq!(counted["status"], json!(200), "{counted}");
    s.drain().await;
    let rows = s
        .sql(
            &shop.key,
            "SELECT order_id, source, value_minor, attributed, influencer_id FROM events \
         WHERE action = 'purchase' ORDER BY order_id, source",
        )
        .await;
    let seen: Vec<(Value, Value, Value)> = rows
        .iter()
        .map(|r| {
            (
                r["order_id"].clone(),
                r["source"].clone(),
                r["value_minor"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (json!("web-1"), json!("browser"), Value::Null),
            (json!("web-1"), json!("server"), json!(4990)),
            (json!("web-2"), json!("browser"), json!(500)),
        ],
        "{rows:?}"
    );
    for r in &rows {
        assert_eq!(r["influencer_id"], json!(shop.influencers[1]), "{r}");
    }

    // A visit without tracking data: events still go out (unattributed), nothing throws, and
    // the debug mode says so once in the console, however many events follow.
    b.js("sessionStorage.clear(); return true;").await;
    b.c.goto(&format!("{site}/plain")).await.unwrap();
    b.until(
        "the tracker",
        "return !!(window.clicktrail && window.clicktrail.loaded);",
    )
    .await;
    let _ = b.console("WARNING").await;
    assert_eq!(b.js("return clicktrail.ids().click_id;").await, Value::Null);
    for call in [
        "clicktrail.signup()",
        "clicktrail.track('newsletter_opt_in', {list: 'weekly'})",
    ] {
        let sent = tracked(&b, call).await;
        assert_eq!(sent["status"], json!(200), "{call}: {sent}");
    }
    let warnings = b.console("WARNING").await;
    let ours: Vec<&String> = warnings
        .iter()
        .filter(|w| w.contains("clicktrail:"))
        .collect();
    assert_eq!(ours.len(), 1, "one warning in debug mode: {warnings:?}");
    assert!(ours[0].contains("no click_id or ref_code"), "{ours:?}");
}
