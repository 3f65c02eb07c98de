//! Users, sessions and their protections, over HTTP against the real binary: invitations and
//! passwords, login and logout, rate limits, CSRF, expired sessions, disabled users, and what
//! each role may call.

mod common;

use common::{ADMIN, Server};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

const PW: &str = "correct horse battery";

async fn post(s: &Server, path: &str, body: Value) -> reqwest::Response {
    s.http.post(s.url(path)).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn invited_users_log_in_see_themselves_and_log_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let shop = s.shop("Acme", "https://acme.example/", &["Maya"]).await;

    // The invitation: a one-time link shown to the admin, no password yet.
    let invited = s
        .admin_post(
            "/api/v1/admin/users",
            json!({"email": "Ada@Acme.example", "role": "advertiser", "advertiser_id": shop.advertiser}),
        )
        .await;
    let link = invited["set_password_url"].as_str().unwrap().to_string();
    assert!(link.contains("/set-password#token="), "{link}");
    assert_eq!(invited["user"]["has_password"], json!(false));
    let text = invited.to_string();
    assert!(
        !text.contains("password_hash") && !text.contains("argon2"),
        "{text}"
    );
    let token = link.split_once("#token=").unwrap().1.to_string();

    // A too-short password names its field; the link still works afterwards.
    let r = post(
        &s,
        "/api/v1/auth/set-password",
        json!({"token": token, "password": "short"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"][0]["field"],
        json!("password")
    );
    let r = post(
        &s,
        "/api/v1/auth/set-password",
        json!({"token": token, "password": PW}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Used once: the same link is refused.
    let r = post(
        &s,
        "/api/v1/auth/set-password",
        json!({"token": token, "password": PW}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"][0]["field"],
        json!("token")
    );

    // The email address is matched case-insensitively; the cookie is HttpOnly and SameSite=Lax.
    let r = post(
        &s,
        "/api/v1/auth/login",
        json!({"email": "ada@acme.EXAMPLE", "password": PW}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookies: Vec<String> = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session_cookie = cookies
        .iter()
        .find(|c| c.starts_with("ct_session="))
        .unwrap();
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );
    assert!(
        !session_cookie.contains("Secure"),
        "plain HTTP: {session_cookie}"
    );
    let session: Value = r.json().await.unwrap();
    let bearer = session["token"].as_str().unwrap().to_string();

    // Behind a proxy that says HTTPS, the cookies are Secure.
    let r = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": "ada@acme.example", "password": PW}))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .all(|c| c.to_str().unwrap().contains("; Secure"))
    );

    // Who am I, by bearer token: the same token scripts use.
    let me: Value = s
        .http
        .get(s.url("/api/v1/me"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], json!("advertiser"));
    assert_eq!(me["advertiser_id"], json!(shop.advertiser));
    assert_eq!(me["advertiser_name"], json!("Acme"));

    // An advertiser user sees what its advertiser's key sees.
    let click = s
        .click(&format!("/r/{}", shop.codes[0]), "Mozilla/5.0 Accounts")
        .await;
    assert_eq!(click.status(), StatusCode::FOUND);
    s.drain().await;
    let by_user: Value = s
        .http
        .get(s.url("/api/v1/stats/overview?period=all"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let by_key: Value = s
        .get_with_key("/api/v1/stats/overview?period=all", &shop.key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_user, by_key);
    assert_eq!(by_user["clicks"], json!(1));
    // …and not the management API.
    let r = s
        .http
        .get(s.url("/api/v1/admin/users"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Changing one's password: the current one is checked, the old sessions end.
    let r = s
        .http
        .post(s.url("/api/v1/me/password"))
        .bearer_auth(&bearer)
        .json(&json!({"current_password": "wrong wrong wrong", "new_password": "another long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .http
        .post(s.url("/api/v1/me/password"))
        .bearer_auth(&bearer)
        .json(&json!({"current_password": PW, "new_password": "another long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let fresh: Value = r.json().await.unwrap();
    let r = s
        .http
        .get(s.url("/api/v1/me"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the old session ended"
    );
    let fresh = fresh["token"].as_str().unwrap().to_string();
    let r = s
        .http
        .get(s.url("/api/v1/me"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Logout ends the session for every copy of the token and clears the cookies.
    let r = s
        .http
        .post(s.url("/api/v1/auth/logout"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        r.headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("ct_session=;"))
    );
    let r = s
        .http
        .get(s.url("/api/v1/me"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The user list never shows a password hash; the email is unique.
    let users = s.admin_text("/api/v1/admin/users").await;
    assert!(
        !users.contains("argon2") && !users.contains("password_hash"),
        "{users}"
    );
    let r = s
        .http
        .post(s.url("/api/v1/admin/users"))
        .bearer_auth(ADMIN)
        .json(&json!({"email": "ADA@acme.example", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // A binding that does not fit the role names its field.
    let r = s
        .http
        .post(s.url("/api/v1/admin/users"))
        .bearer_auth(ADMIN)
        .json(&json!({"email": "x@acme.example", "role": "influencer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["fields"][0]["field"],
        json!("influencer_id")
    );
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_token_to_change_anything() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    s.user("root@example.com", "admin", json!({}), PW).await;
    let session = s.login("root@example.com", PW).await;
    let create = |csrf: Option<&str>, origin: Option<&str>| {
        let mut req = s
            .http
            .post(s.url("/api/v1/admin/advertisers"))
            .header(header::COOKIE, &session.cookie)
            .json(&json!({"name": "Made with a cookie"}));
        if let Some(c) = csrf {
            req = req.header("x-csrf-token", c);
        }
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        req.send()
    };
    // Reading with the cookie needs nothing more.
    let r = s
        .http
        .get(s.url("/api/v1/admin/advertisers"))
        .header(header::COOKIE, &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Changing without the token, with a wrong one, or from another site: 403, nothing made.
    for (csrf, origin) in [
        (None, None),
        (Some("0000"), None),
        (Some(session.csrf.as_str()), Some("https://evil.example")),
    ] {
        let r = create(csrf, origin).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{csrf:?} {origin:?}");
    }
    let listed = s.admin_text("/api/v1/admin/advertisers").await;
    assert!(!listed.contains("Made with a cookie"), "{listed}");
    // With the token (and its own origin): made.
    let origin = s.base.clone();
    let r = create(Some(&session.csrf), Some(&origin)).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // A bearer session token is not sent by browsers on their own: no CSRF token needed.
    let r = s
        .http
        .post(s.url("/api/v1/admin/advertisers"))
        .bearer_auth(&session.token)
        .json(&json!({"name": "Made with a bearer token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Logout with the cookie is a change too.
    let r = s
        .http
        .post(s.url("/api/v1/auth/logout"))
        .header(header::COOKIE, &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "another site cannot log the browser out"
    );
    let r = s
        .http
        .get(s.url("/api/v1/me"))
        .header(header::COOKIE, &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "without the CSRF token the logout ended nothing"
    );
    // Logging in from a page of another site is refused too (it would log the browser into an
    // account of that site's choosing).
    let r = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(r#"{"email":"root@example.com","password":"correct horse battery"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    // Analyst SQL with the cookie carries the token too.
    let r = s
        .http
        .post(s.url("/api/v1/sql"))
        .header(header::COOKIE, &session.cookie)
        .json(&json!({"query": "SELECT count(*) FROM events"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn sessions_expire_and_disabled_users_are_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir.path(), &["--session-ttl-secs", "2"]).await;
    let id = s.user("ops@example.com", "admin", json!({}), PW).await;
    let session = s.login("ops@example.com", PW).await;
    let me = |token: String| {
        let s = &s;
        async move {
            s.http
                .get(s.url("/api/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(me(session.token.clone()).await.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = me(session.token.clone()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // An expired cookie is refused the same way, and a page sends the browser to log in.
    let r = s
        .http
        .get(s.url("/dashboard"))
        .header(header::COOKIE, &session.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/login?next=/dashboard");

    // Disabling ends live sessions at once and refuses new logins.
    let live = s.login("ops@example.com", PW).await;
    assert_eq!(me(live.token.clone()).await.status(), StatusCode::OK);
    let r = s
        .http
        .patch(s.url(&format!("/api/v1/admin/users/{id}")))
        .bearer_auth(ADMIN)
        .json(&json!({"status": "inactive"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        me(live.token.clone()).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = post(
        &s,
        "/api/v1/auth/login",
        json!({"email": "ops@example.com", "password": PW}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Enabled again, a reset makes a new link and the old password no longer works.
    s.http
        .patch(s.url(&format!("/api/v1/admin/users/{id}")))
        .bearer_auth(ADMIN)
        .json(&json!({"status": "active"}))
        .send()
        .await
        .unwrap();
    let reset = s
        .admin_post(&format!("/api/v1/admin/users/{id}/reset"), json!({}))
        .await;
    assert!(
        reset["set_password_url"]
            .as_str()
            .unwrap()
            .contains("#token=")
    );
    let r = post(
        &s,
        "/api/v1/auth/login",
        json!({"email": "ops@example.com", "password": PW}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Removed: gone from the list, its email free again.
    let r = s
        .http
        .delete(s.url(&format!("/api/v1/admin/users/{id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    s.user("ops@example.com", "admin", json!({}), PW).await;
}
