//! Limits on logins and on changes of one user at once: rate limits per account and per
//! address that do not tell who exists, and changes racing each other that never undo an
//! acknowledged one.

mod common;

use common::{ADMIN, Server};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

const PW: &str = "correct horse battery";

async fn post(s: &Server, path: &str, body: Value) -> reqwest::Response {
    s.http.post(s.url(path)).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn logins_are_rate_limited_per_account_and_per_address_without_telling_who_exists() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let first = std::time::Instant::now();
    s.user("root@example.com", "admin", json!({}), PW).await;

    // A wrong password and an unknown account get the same answer.
    let wrong = post(
        &s,
        "/api/v1/auth/login",
        json!({"email": "root@example.com", "password": "nope nope nope"}),
    )
    .await;
    let unknown = post(
        &s,
        "/api/v1/auth/login",
        json!({"email": "nobody@example.com", "password": "nope nope nope"}),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        unknown.json::<Value>().await.unwrap()
    );

    // Per account: the sixth attempt within a minute is refused, even with the right password.
    for _ in 0..4 {
        let r = post(
            &s,
            "/api/v1/auth/login",
            json!({"email": "root@example.com", "password": "nope nope nope"}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = post(
        &s,
        "/api/v1/auth/login",
        json!({"email": "ROOT@example.com", "password": PW}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        r.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("account")
    );

    // Per address: other accounts from the same address, up to 20 attempts a minute in all
    // (one more for every 3 seconds since the first).
    let mut limited = None;
    for i in 0..20 {
        let r = post(
            &s,
            "/api/v1/auth/login",
            json!({"email": format!("u{i}@example.com"), "password": "nope nope nope"}),
        )
        .await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key(header::RETRY_AFTER));
            limited = Some(i);
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // 8 attempts came before: the set-password of `user`, 2 + 4 logins, 1 refused by the
    // account limit (which still counts against the address).
    let refilled = (first.elapsed().as_secs() / 3) as usize;
    assert_eq!(
        limited,
        Some(12 + refilled),
        "the 21st attempt from one address is refused"
    );
    // The set-password route counts against the same address.
    let r = post(
        &s,
        "/api/v1/auth/set-password",
        json!({"token": "x.y", "password": PW}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // The process keeps serving everything else.
    assert_eq!(
        s.http
            .get(s.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn changes_racing_each_other_never_undo_an_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    // Four rounds: each makes three attempts of the 20 an address has a minute.
    for round in 0..4 {
        let email = format!("race{round}@example.com");
        let id = s.user(&email, "admin", json!({}), PW).await;
        let session = s.login(&email, PW).await;
        // The user changes their password while an admin disables them.
        let change = s
            .http
            .post(s.url("/api/v1/me/password"))
            .bearer_auth(&session.token)
            .json(&json!({"current_password": PW, "new_password": "a brand new password"}))
            .send();
        let disable = async {
            tokio::time::sleep(std::time::Duration::from_millis(5 * round)).await;
            s.http
                .patch(s.url(&format!("/api/v1/admin/users/{id}")))
                .bearer_auth(ADMIN)
                .json(&json!({"status": "inactive"}))
                .send()
                .await
                .unwrap()
        };
        let (changed, disabled) = tokio::join!(change, disable);
        let changed = changed.unwrap();
        let changed_status = changed.status();
        let fresh = changed.json::<Value>().await.unwrap()["token"]
            .as_str()
            .map(str::to_string);
        let user = s.admin_get(&format!("/api/v1/admin/users/{id}")).await;
        if disabled.status() == StatusCode::OK {
            assert_eq!(
                user["status"],
                json!("inactive"),
                "round {round}: the acknowledged disable stands"
            );
            if let Some(token) = fresh {
                let r = s
                    .http
                    .get(s.url("/api/v1/me"))
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    r.status(),
                    StatusCode::UNAUTHORIZED,
                    "round {round}: a disabled user has no session"
                );
            }
        } else {
            assert_eq!(disabled.status(), StatusCode::CONFLICT, "round {round}");
            assert_eq!(
                changed_status,
                StatusCode::OK,
                "round {round}: one of the two applied"
            );
        }
        assert!(
            changed_status == StatusCode::OK
                || changed_status == StatusCode::CONFLICT
                || changed_status == StatusCode::UNAUTHORIZED,
            "round {round}: {changed_status}"
        );
    }

    // One set-password link used twice at once: exactly one use applies.
    let invited = s
        .admin_post(
            "/api/v1/admin/users",
            json!({"email": "twice@example.com", "role": "admin"}),
        )
        .await;
    let token = invited["set_password_url"]
        .as_str()
        .unwrap()
        .split_once("#token=")
        .unwrap()
        .1
        .to_string();
    let (a, b) = tokio::join!(
        post(
            &s,
            "/api/v1/auth/set-password",
            json!({"token": token, "password": "first password!"})
        ),
        post(
            &s,
            "/api/v1/auth/set-password",
            json!({"token": token, "password": "second password!"})
        ),
    );
    let ok: Vec<bool> = [a.status(), b.status()]
        .iter()
        .map(|st| *st == StatusCode::OK)
        .collect();
    assert_eq!(
        ok.iter().filter(|o| **o).count(),
        1,
        "{:?} {:?}",
        a.status(),
        b.status()
    );
    let winner = if ok[0] {
        "first password!"
    } else {
        "second password!"
    };
    let loser = if ok[0] {
        "second password!"
    } else {
        "first password!"
    };
    let r = post(
        &s,
        "/api/v1/auth/login",
        json!({"email": "twice@example.com", "password": winner}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = post(
        &s,
        "/api/v1/auth/login",
        json!({"email": "twice@example.com", "password": loser}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
