//! The catalog's rules: first claims of codes win, users change from one version only.
use super::*;
use chrono::Utc;

fn link(id: &str, code: &str) -> Link {
    Link {
        id: id.into(),
        campaign_id: "cmp_1".into(),
        influencer_id: "inf_1".into(),
        advertiser_id: "adv_1".into(),
        code: code.into(),
        active: true,
        created_at: Utc::now(),
    }
}

fn coupon(id: &str, code: &str) -> Coupon {
    Coupon {
        id: id.into(),
        advertiser_id: "adv_1".into(),
        campaign_id: "cmp_1".into(),
        influencer_id: None,
        code: code.into(),
        active: true,
        created_at: Utc::now(),
    }
}

#[test]
fn first_claim_of_a_code_wins() {
    let mut c = Catalog::default();
    c.apply(&CatalogChange::LinkCreated {
        link: link("lnk_1", "abc"),
    })
    .unwrap();
    let err = c
        .apply(&CatalogChange::LinkCreated {
            link: link("lnk_2", "abc"),
        })
        .unwrap_err();
    assert_eq!(err, CatalogConflict::LinkCodeTaken("abc".into()));
    assert_eq!(c.link_by_code("abc").unwrap().id, "lnk_1");
    assert!(!c.links.contains_key("lnk_2"));
    // Codes differing only in case are the same code.
    for taken in ["ABC", "Abc", " abc "] {
        let err = c
            .apply(&CatalogChange::LinkCreated {
                link: link("lnk_3", taken),
            })
            .unwrap_err();
        assert_eq!(err, CatalogConflict::LinkCodeTaken(taken.into()));
    }
    assert_eq!(c.link_by_code("ABC").map(|l| l.id.as_str()), Some("lnk_1"));
}

#[test]
fn coupons_are_unique_case_insensitively_and_all_or_none() {
    let mut c = Catalog::default();
    c.apply(&CatalogChange::CouponsCreated {
        coupons: vec![coupon("c1", "Summer10")],
    })
    .unwrap();
    let err = c
        .apply(&CatalogChange::CouponsCreated {
            coupons: vec![coupon("c2", "FRESH"), coupon("c3", "SUMMER10")],
        })
        .unwrap_err();
    assert_eq!(err, CatalogConflict::CouponCodeTaken("SUMMER10".into()));
    assert!(c.coupon("adv_1", "fresh").is_none());
    assert_eq!(c.coupon("adv_1", "summer10").unwrap().id, "c1");
}

#[test]
fn regenerated_link_code_moves() {
    let mut c = Catalog::default();
    c.apply(&CatalogChange::LinkCreated {
        link: link("lnk_1", "old"),
    })
    .unwrap();
    c.apply(&CatalogChange::LinkCodeChanged {
        id: "lnk_1".into(),
        code: "new".into(),
    })
    .unwrap();
    assert!(c.link_by_code("old").is_none());
    assert_eq!(c.link_by_code("new").unwrap().id, "lnk_1");
    assert_eq!(
        c.link_by_code("NEW").unwrap().id,
        "lnk_1",
        "any case finds the link"
    );
}

fn user(version: u64, status: Status) -> User {
    User {
        id: "usr_1".into(),
        email: "a@example.com".into(),
        name: "A".into(),
        role: UserRole::Admin,
        advertiser_id: None,
        influencer_id: None,
        password_hash: None,
        set_password_hash: None,
        set_password_expires_at: None,
        status,
        version,
        session_epoch: 0,
        created_at: Utc::now(),
    }
}

#[test]
fn two_changes_from_one_version_of_a_user_cannot_both_apply() {
    let mut c = Catalog::default();
    let upsert = |u: User, expected| CatalogChange::UserUpserted {
        user: u,
        expected_version: expected,
    };
    c.apply(&upsert(user(0, Status::Active), None)).unwrap();
    // An admin disables (0 → 1); a password change made from version 0 is then refused.
    c.apply(&upsert(user(1, Status::Inactive), Some(0)))
        .unwrap();
    let err = c
        .apply(&upsert(user(1, Status::Active), Some(0)))
        .unwrap_err();
    assert_eq!(err, CatalogConflict::Changed("user", "usr_1".into()));
    assert_eq!(c.users["usr_1"].status, Status::Inactive);
    // Removed: a change from any version is refused, and does not bring the user back.
    c.apply(&CatalogChange::UserRemoved { id: "usr_1".into() })
        .unwrap();
    assert!(c.apply(&upsert(user(2, Status::Active), Some(1))).is_err());
    assert!(!c.users.contains_key("usr_1"));
}

#[test]
fn key_prefix() {
    assert_eq!(api_key_prefix("ct_ab12cd34_secret"), Some("ct_ab12cd34"));
    assert_eq!(api_key_prefix("nope"), None);
}
