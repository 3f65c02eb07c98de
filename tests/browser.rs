//! The web dashboards in a real headless Chromium, on `serve --demo` (90 days of history and
//! the demo's logins): each role logs in through the login page, changes the date range, reads
//! the figures on the page and compares them with the API's, exports a CSV; the admin creates a
//! campaign, an influencer, a link and a coupon and sees a redirect through that link appear on
//! the dashboard. Every page is checked (title, labels, keyboard reach, no console error, no
//! sideways scrolling) and photographed at 1280 and 360 px wide (`screenshot_dir`).

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "dashboards/promos.rs"]
mod promos;
#[path = "dashboards/tracker.rs"]
mod tracker;

use browser::{Browser, api, card, demo_logins, loaded, log_in, range};
use common::{ADMIN, Server};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

#[tokio::test]
async fn every_role_uses_the_dashboards_in_a_real_browser() {
    let Some(b) = Browser::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--demo", "--demo-visitors", "0"]).await;
    let logins = demo_logins(&s).await;
    s.drain().await;

    // Not logged in: every page sends the browser to the login page.
    b.c.goto(&s.url("/dashboard")).await.unwrap();
    b.until("the login page", "return location.pathname === '/login';")
        .await;
    b.check_page("login").await;
    // A wrong password says so on the page.
    b.fill("#email", &logins.advertiser.0).await;
    b.fill("#password", "not the password").await;
    b.click("#login-form button[type=submit]").await;
    b.until(
        "the login error",
        "return document.querySelector('#login-error').textContent.includes('wrong');",
    )
    .await;
    let _ = b.console_errors().await; // the refused login's 401 is logged by the browser

    // ---- The advertiser.
    log_in(&b, &s, &logins.advertiser, "/dashboard").await;
    let ms = loaded(&b).await;
    eprintln!("figure: advertiser dashboard with 90 days of demo data loaded in {ms:.0} ms");
    b.check_page("dashboard").await;
    let cookie = b.cookie_header().await;
    let tz = b.text("#range-tz").await;
    for preset in ["Last 7 days", "Today", "Last 30 days"] {
        range(&b, preset).await;
        loaded(&b).await;
        let period = match preset {
            "Today" => "today",
            "Last 7 days" => "7d",
            _ => "30d",
        };
        let o = api(
            &s,
            &cookie,
            &format!("/api/v1/stats/overview?period={period}&tz={tz}"),
        )
        .await;
        for metric in [
            "clicks",
            "unique_clicks",
            "add_to_carts",
            "purchases",
            "drop_offs",
            "conversion_rate",
        ] {
            assert_eq!(
                card(&b, metric).await,
                o[metric].as_f64().unwrap(),
                "{preset}: {metric} on the page and in the API"
            );
        }
        for r in o["revenue"].as_array().unwrap() {
            let c = r["currency"].as_str().unwrap();
            assert_eq!(
                card(&b, &format!("revenue-{c}")).await,
                r["amount_minor"].as_f64().unwrap(),
                "{preset}: revenue {c}"
            );
        }
        // The tables hold the API's rows.
        let per: Value = api(
            &s,
            &cookie,
            &format!("/api/v1/stats/per-influencer?period={period}&tz={tz}"),
        )
        .await;
        let rows = b
            .js("return document.querySelectorAll('#per-influencer tbody tr').length;")
            .await;
        assert_eq!(
            rows,
            json!(per["rows"].as_array().unwrap().len()),
            "{preset}: influencer rows"
        );
    }
    assert_eq!(
        b.js("return new URLSearchParams(location.search).get('period');")
            .await,
        json!("30d")
    );
    // A custom range, in the viewer's time zone.
    b.select("#range-preset", "Custom").await;
    b.js("document.querySelector('#range-from').value = new Date(Date.now() - 20*86400e3).toISOString().slice(0,10); document.querySelector('#range-to').value = new Date(Date.now() - 10*86400e3).toISOString().slice(0,10); document.querySelector('#status').textContent='';").await;
    b.click("#range button[type=submit]").await;
    loaded(&b).await;
    let q = b.js("return location.search;").await;
    let o = api(
        &s,
        &cookie,
        &format!("/api/v1/stats/overview{}", q.as_str().unwrap()),
    )
    .await;
    assert_eq!(
        card(&b, "clicks").await,
        o["clicks"].as_f64().unwrap(),
        "custom range {q}"
    );
    assert!(
        o["clicks"].as_i64().unwrap() > 0,
        "the demo's history covers the range"
    );
    // Sorting a table by clicking its header.
    b.click("#per-link th:nth-child(2) button").await;
    assert_eq!(
        b.js(
            "return document.querySelector('#per-link th:nth-child(2)').getAttribute('aria-sort');"
        )
        .await,
        json!("ascending")
    );
    // The CSV export button: a CSV of this range's events, with the session.
    let href = b
        .js("return document.querySelector('#export-events').href;")
        .await;
    let csv = s
        .http
        .get(href.as_str().unwrap())
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    let events: i64 = [
        "add_to_carts",
        "purchases",
        "signups",
        "drop_offs",
        "custom_events",
    ]
    .iter()
    .map(|k| o[*k].as_i64().unwrap())
    .sum();
    assert_eq!(
        csv.lines().count() as i64 - 1,
        events,
        "one CSV line per event of the range"
    );
    // The attribution audit of one event from the recent events table.
    b.click("#recent-events tbody tr:first-child button").await;
    b.until("the audit", "return document.querySelector('#audit').open && document.querySelector('#audit-body dl') !== null;").await;
    b.check_page("dashboard-audit").await;
    b.click("#audit form button").await;

    promos::promos_page(&b, &s, &cookie, &tz).await;
    b.click("#logout").await;
    b.until("logged out", "return location.pathname === '/login';")
        .await;
    assert_eq!(
        s.http
            .get(s.url("/api/v1/me"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED,
        "logging out ends the session"
    );

    // ---- The influencer.
    log_in(&b, &s, &logins.influencer, "/my").await;
    let ms = loaded(&b).await;
    eprintln!("figure: influencer dashboard loaded in {ms:.0} ms");
    b.check_page("my").await;
    let cookie = b.cookie_header().await;
    range(&b, "Last 7 days").await;
    loaded(&b).await;
    let o = api(
        &s,
        &cookie,
        &format!("/api/v1/me/stats/overview?period=7d&tz={tz}"),
    )
    .await;
    for metric in ["clicks", "unique_clicks", "purchases", "conversion_rate"] {
        assert_eq!(
            card(&b, metric).await,
            o[metric].as_f64().unwrap(),
            "influencer {metric}"
        );
    }
    let links = api(&s, &cookie, "/api/v1/me/links").await;
    let shown = b.js("return Array.from(document.querySelectorAll('#my-campaigns code')).map((c) => c.textContent);").await;
    for l in links.as_array().unwrap() {
        assert!(
            shown.as_array().unwrap().contains(&l["url"]),
            "{l} on the page: {shown}"
        );
    }
    let page = b.c.source().await.unwrap();
    assert!(
        !page.contains("Leo Climbs") && !page.contains("Ana Runs"),
        "no other influencer's name"
    );
    // An influencer's session cannot open the advertiser's dashboard or the admin pages.
    for path in ["/dashboard", "/admin", "/admin/users"] {
        b.c.goto(&s.url(path)).await.unwrap();
        b.until("back to /my", "return location.pathname === '/my';")
            .await;
    }
    b.c.goto(&s.url("/account")).await.unwrap();
    b.check_page("account").await;
    b.click("#logout").await;
    b.until("logged out", "return location.pathname === '/login';")
        .await;

    // ---- The admin.
    log_in(&b, &s, &logins.admin, "/admin").await;
    b.until("health", "return document.querySelector('[data-metric=active_advertisers]') !== null && document.querySelectorAll('#lag tbody tr').length > 0;").await;
    let ms = b.js("return performance.now();").await.as_f64().unwrap();
    eprintln!("figure: admin health page loaded in {ms:.0} ms");
    b.check_page("admin").await;
    let cookie = b.cookie_header().await;
    let advertisers = s.admin_get("/api/v1/admin/advertisers").await["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(card(&b, "active_advertisers").await, advertisers as f64);
    let month = b.js("return document.querySelector('[data-metric=events_this_month] .value').dataset.value;").await;
    assert!(
        month.as_str().unwrap().parse::<i64>().unwrap() > 0,
        "events this month"
    );

    // Create an influencer, a campaign, the assignment, a link and a coupon through the pages.
    let manage = |section: &'static str| {
        let (b, s) = (&b, &s);
        async move {
            b.c.goto(&s.url(&format!("/admin/{section}")))
                .await
                .unwrap();
            b.until(section, "return document.querySelector('#list table, #list p') !== null && document.querySelectorAll('select.pick-advertiser option, select.pick-campaign option').length >= 0;").await;
        }
    };
    manage("influencers").await;
    b.fill("#f-name", "Browser Influencer").await;
    b.click("#create-form button[type=submit]").await;
    b.until(
        "the new influencer",
        "return document.querySelector('#list').textContent.includes('Browser Influencer');",
    )
    .await;
    b.check_page("admin-influencers").await;

    manage("campaigns").await;
    b.until(
        "pickers",
        "return document.querySelectorAll('#f-advertiser option').length > 0;",
    )
    .await;
    b.select("#f-advertiser", "Acme Outdoor (demo)").await;
    b.fill("#f-name", "Browser Campaign").await;
    b.fill("#f-destination", "https://shop.example/browser")
        .await;
    b.click("#create-form button[type=submit]").await;
    b.until(
        "the new campaign",
        "return document.querySelector('#list').textContent.includes('Browser Campaign');",
    )
    .await;
    // Change its attribution window through Edit.
    b.js("Array.from(document.querySelectorAll('#list tbody tr')).find((r) => r.textContent.includes('Browser Campaign')).querySelectorAll('button').forEach((x) => { if (x.textContent === 'Edit') x.click(); });").await;
    b.until("the edit form", "return document.querySelector('#create-form h2').textContent.includes('Browser Campaign');").await;
    b.fill("#f-window", "14").await;
    b.click("#create-form button[type=submit]").await;
    b.until("the new window", "return Array.from(document.querySelectorAll('#list tbody tr')).some((r) => r.textContent.includes('Browser Campaign') && r.textContent.includes('14 days'));").await;
    let campaigns = s.admin_get("/api/v1/admin/campaigns?limit=1000").await;
    let made = campaigns["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == json!("Browser Campaign"))
        .unwrap()
        .clone();
    assert_eq!(made["attribution_window_secs"], json!(14 * 86400), "{made}");
    b.until("pickers", "return Array.from(document.querySelectorAll('#a-campaign option')).some((o) => o.textContent === 'Browser Campaign');").await;
    b.select("#a-campaign", "Browser Campaign").await;
    b.select("#a-influencer", "Browser Influencer").await;
    b.click("#assign-form button[type=submit]").await;
    b.until(
        "the assignment",
        "return document.querySelector('#assignments').textContent.includes('Browser Influencer');",
    )
    .await;
    b.check_page("admin-campaigns").await;

    manage("links").await;
    b.until("pickers", "return Array.from(document.querySelectorAll('#f-campaign option')).some((o) => o.textContent === 'Browser Campaign');").await;
    b.select("#f-campaign", "Browser Campaign").await;
    b.select("#f-influencer", "Browser Influencer").await;
    b.fill("#f-code", "browser-link").await;
    b.click("#create-form button[type=submit]").await;
    b.until(
        "the new link",
        "return document.querySelector('#list').textContent.includes('/r/browser-link');",
    )
    .await;
    b.check_page("admin-links").await;

    manage("coupons").await;
    b.until("pickers", "return Array.from(document.querySelectorAll('#f-campaign option')).some((o) => o.textContent === 'Browser Campaign');").await;
    b.select("#f-campaign", "Browser Campaign").await;
    b.select("#f-influencer", "Browser Influencer").await;
    b.fill("#f-code", "BROWSER10").await;
    b.click("#create-form button[type=submit]").await;
    b.until(
        "the new coupon",
        "return document.querySelector('#list').textContent.includes('BROWSER10');",
    )
    .await;
    b.check_page("admin-coupons").await;

    promos::admin_offers(&b, &s).await;

    manage("keys").await;
    b.until(
        "pickers",
        "return document.querySelectorAll('#f-advertiser option').length > 0;",
    )
    .await;
    b.click("#create-form button[type=submit]").await;
    b.until("the new key, shown once", "return !document.querySelector('#secret-box').hidden && document.querySelector('#secret-text').textContent.includes('ct_');").await;
    b.check_page("admin-keys").await;

    manage("advertisers").await;
    b.check_page("admin-advertisers").await;

    // Invite a user; the link sets their password in the browser.
    manage("users").await;
    b.fill("#f-email", "new.admin@example.com").await;
    b.select("#f-role", "Admin").await;
    b.click("#create-form button[type=submit]").await;
    b.until("the invitation link", "return document.querySelector('#secret-text').textContent.includes('/set-password#token=');").await;
    b.check_page("admin-users").await;
    let link = b
        .js("return document.querySelector('#secret-text').textContent.split('\\n')[1];")
        .await;

    // A shopper follows the new link; the dashboard shows the click for the new influencer.
    let r = s
        .click(
            "/r/browser-link",
            "Mozilla/5.0 (X11; Linux x86_64) Browser test",
        )
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(
        r.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("https://shop.example/browser")
    );
    s.drain().await;
    // The admin's dashboard: every advertiser, a range chosen on the page, its figures and
    // export against the API's.
    b.c.goto(&s.url("/dashboard")).await.unwrap();
    loaded(&b).await;
    range(&b, "Last 7 days").await;
    loaded(&b).await;
    let all = api(
        &s,
        &cookie,
        &format!("/api/v1/stats/overview?period=7d&tz={tz}"),
    )
    .await;
    for metric in ["clicks", "unique_clicks", "purchases", "drop_offs"] {
        assert_eq!(
            card(&b, metric).await,
            all[metric].as_f64().unwrap(),
            "admin {metric}"
        );
    }
    let href = b
        .js("return document.querySelector('#export-clicks').href;")
        .await;
    let csv = s
        .http
        .get(href.as_str().unwrap())
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let rows = csv.text().await.unwrap().lines().count() as i64 - 1;
    assert_eq!(
        rows,
        all["clicks"].as_i64().unwrap() + all["bot_clicks"].as_i64().unwrap(),
        "one CSV line per click of the range"
    );
    range(&b, "Today").await;
    loaded(&b).await;
    let row = b
        .js("const r = Array.from(document.querySelectorAll('#per-influencer tbody tr')).find((r) => r.textContent.includes('Browser Influencer')); return r ? r.querySelector('[data-col=clicks]').textContent : null;")
        .await;
    assert_eq!(
        row,
        json!("1"),
        "the redirect through the new link is on the dashboard"
    );
    let per = api(
        &s,
        &cookie,
        &format!("/api/v1/stats/per-influencer?period=today&tz={tz}"),
    )
    .await;
    assert!(
        per["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == json!("Browser Influencer") && r["clicks"] == json!(1))
    );

    // The invited admin sets a password through the link and lands on the health page.
    b.click("#logout").await;
    b.until("logged out", "return location.pathname === '/login';")
        .await;
    b.c.goto(link.as_str().unwrap()).await.unwrap();
    b.check_page("set-password").await;
    b.fill("#new-password", "a new admin's password").await;
    b.fill("#repeat-password", "a new admin's password").await;
    b.click("#set-password-form button[type=submit]").await;
    b.until(
        "the new admin's home",
        "return location.pathname === '/admin';",
    )
    .await;
    // Once the page's own requests are answered (a user runs two queries at once at most).
    b.until(
        "the health page's tables",
        "return document.querySelector('#signups').children.length > 0 \
         && document.querySelector('#deliveries').children.length > 0;",
    )
    .await;
    let me = b
        .js("return fetch('/api/v1/me').then((r) => r.json()).then((m) => m.email);")
        .await;
    assert_eq!(me, json!("new.admin@example.com"));
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "{errors:?}");
    // The admin token still works beside the users.
    let r = s
        .http
        .get(s.url("/api/v1/admin/users"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    eprintln!("screenshots in {}", b.shots.display());
}
