use super::*;
use chrono::Duration;
use clicktrail_schemas::CatalogChange;
use clicktrail_schemas::attribution::{TouchSource, TouchStatus, to_json};
use clicktrail_schemas::catalog::*;
use clicktrail_schemas::wire::Action;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn keys() -> ClickKeys {
    ClickKeys::new(1, b"attribution-test-key".to_vec())
}

fn catalog() -> Catalog {
    let mut c = Catalog::default();
    let now = t0();
    let changes = vec![
        CatalogChange::AdvertiserUpserted {
            advertiser: Advertiser {
                id: "adv".into(),
                name: "A".into(),
                status: Status::Active,
                require_signature: false,
                browser_purchases_count: false,
                created_at: now,
            },
        },
        CatalogChange::CampaignUpserted {
            campaign: Campaign {
                id: "cmp".into(),
                advertiser_id: "adv".into(),
                name: "C".into(),
                destination_url: "https://shop.example/".into(),
                starts_at: None,
                ends_at: None,
                attribution_source: AttributionSource::All,
                attribution_window_secs: 3600,
                trailing_expiry_secs: None,
                status: Status::Active,
                created_at: now,
            },
        },
        CatalogChange::LinkCreated {
            link: Link {
                id: "lnk_a".into(),
                campaign_id: "cmp".into(),
                influencer_id: "inf_a".into(),
                advertiser_id: "adv".into(),
                code: "codea".into(),
                active: true,
                created_at: now,
            },
        },
        CatalogChange::LinkCreated {
            link: Link {
                id: "lnk_b".into(),
                campaign_id: "cmp".into(),
                influencer_id: "inf_b".into(),
                advertiser_id: "adv".into(),
                code: "codeb".into(),
                active: true,
                created_at: now,
            },
        },
        CatalogChange::CouponsCreated {
            coupons: vec![
                Coupon {
                    id: "cpn_a".into(),
                    advertiser_id: "adv".into(),
                    campaign_id: "cmp".into(),
                    influencer_id: Some("inf_a".into()),
                    code: "ANNA10".into(),
                    active: true,
                    created_at: now,
                },
                Coupon {
                    id: "cpn_g".into(),
                    advertiser_id: "adv".into(),
                    campaign_id: "cmp".into(),
                    influencer_id: None,
                    code: "WELCOME".into(),
                    active: true,
                    created_at: now,
                },
            ],
        },
    ];
    for ch in &changes {
        c.apply(ch).unwrap();
    }
    c
}

fn event(at: DateTime<Utc>) -> EventRecord {
    EventRecord {
        v: 1,
        event_id: "e1".into(),
        advertiser_id: "adv".into(),
        action: Action::Purchase,
        custom_name: None,
        occurred_at: at,
        received_at: at,
        value_minor: Some(1000),
        currency: "USD".into(),
        order_id: None,
        customer_id: None,
        properties: None,
        coupon_code: None,
        ref_code: None,
        click_id: None,
        landing_url: None,
        referrer: None,
        sub_id: None,
        source: Default::default(),
        uncounted: false,
    }
}

fn token(link: &str, at: DateTime<Utc>) -> String {
    keys().mint(link, at.timestamp_millis(), [9; 8])
}

#[test]
fn coupon_wins_and_a_competing_click_is_a_conflict() {
    let mut e = event(t0());
    e.coupon_code = Some("anna10".into());
    e.click_id = Some(token("lnk_b", t0() - Duration::minutes(5)));
    let d = attribute(&e, &catalog(), &keys(), None);
    assert_eq!(by(&d.attribution), "coupon");
    assert_eq!(d.attribution.influencer_id.as_deref(), Some("inf_a"));
    let conflict: serde_json::Value = serde_json::to_value(&d.attribution.conflicts).unwrap();
    assert_eq!(conflict[0]["type"], "coupon_vs_click");
    assert_eq!(conflict[0]["influencer_id"], "inf_b");
}

#[test]
fn generic_coupon_falls_through_to_the_click() {
    let mut e = event(t0());
    e.coupon_code = Some("WELCOME".into());
    e.click_id = Some(token("lnk_b", t0() - Duration::minutes(5)));
    let d = attribute(&e, &catalog(), &keys(), None);
    assert_eq!(by(&d.attribution), "click_id");
    assert_eq!(d.attribution.influencer_id.as_deref(), Some("inf_b"));
    assert!(to_json(&d.attribution.candidates).contains("\"generic\""));
}

#[test]
fn a_click_outside_the_window_is_expired_and_takes_its_code_along() {
    let mut e = event(t0());
    e.click_id = Some(token("lnk_a", t0() - Duration::hours(2)));
    e.ref_code = Some("codea".into());
    let d = attribute(&e, &catalog(), &keys(), None);
    assert!(!d.attribution.attributed);
    assert_eq!(
        d.attribution.reason.map(TouchStatus::as_str),
        Some("expired")
    );
    assert_eq!(d.attribution.window_secs, Some(3600));
}

#[test]
fn forged_tokens_fall_through_to_ref_code() {
    let mut e = event(t0());
    let mut forged = token("lnk_a", t0());
    forged.replace_range(forged.len() - 2.., "AA");
    e.click_id = Some(forged);
    e.ref_code = Some("codeb".into());
    let d = attribute(&e, &catalog(), &keys(), None);
    assert_eq!(by(&d.attribution), "ref_code");
    assert_eq!(d.attribution.influencer_id.as_deref(), Some("inf_b"));
}

#[test]
fn lazy_extraction_reads_landing_url_and_referrer() {
    let mut e = event(t0());
    e.landing_url = Some("https://shop.example/p?ref_code=codea".into());
    let d = attribute(&e, &catalog(), &keys(), None);
    assert_eq!(by(&d.attribution), "landing_url");
    let mut e = event(t0());
    e.referrer = Some(format!(
        "https://blog.example/?click_id={}",
        token("lnk_b", t0())
    ));
    let d = attribute(&e, &catalog(), &keys(), None);
    assert_eq!(by(&d.attribution), "referrer");
    assert_eq!(d.attribution.influencer_id.as_deref(), Some("inf_b"));
}

#[test]
fn first_touch_owns_the_customer() {
    let mut e = event(t0());
    e.customer_id = Some("cust".into());
    e.ref_code = Some("codea".into());
    let first = attribute(&e, &catalog(), &keys(), None);
    let owner = first.new_first_touch.expect("first touch set");
    assert_eq!(owner.influencer_id, "inf_a");

    let mut later = event(t0() + Duration::days(3));
    later.customer_id = Some("cust".into());
    later.ref_code = Some("codeb".into());
    let d = attribute(&later, &catalog(), &keys(), Some(&owner));
    assert_eq!(by(&d.attribution), "first_touch");
    assert_eq!(d.attribution.influencer_id.as_deref(), Some("inf_a"));
    assert!(to_json(&d.attribution.conflicts).contains("\"first_touch\""));
    assert!(d.new_first_touch.is_none());
}

#[test]
fn no_touch_is_stored_unattributed() {
    let d = attribute(&event(t0()), &catalog(), &keys(), None);
    assert!(!d.attribution.attributed);
    assert_eq!(
        d.attribution.reason.map(TouchStatus::as_str),
        Some("no_touch")
    );
    assert_eq!(to_json(&d.attribution.candidates), "[]");
}

/// The rule that decided, as the store holds it (empty when unattributed).
fn by(a: &clicktrail_schemas::rows::Attribution) -> &'static str {
    a.attributed_by.map_or("", TouchSource::as_str)
}

/// Catalog records written before the admin API bounded durations (or by another writer) with
/// windows past i64 seconds: treated as forever, never a panic or a negative window.
#[test]
fn windows_too_long_to_represent_count_as_forever() {
    for secs in [i64::MAX as u64, u64::MAX] {
        let mut c = catalog();
        let mut campaign = c.campaigns["cmp"].clone();
        campaign.attribution_window_secs = secs;
        campaign.trailing_expiry_secs = Some(secs);
        c.apply(&CatalogChange::CampaignUpserted { campaign })
            .unwrap();
        let mut e = event(t0());
        e.click_id = Some(token("lnk_a", t0() - Duration::days(3000)));
        let d = attribute(&e, &c, &keys(), None);
        assert_eq!(by(&d.attribution), "click_id", "window {secs}");
        assert_eq!(d.attribution.window_secs, Some(i64::MAX));
    }
}
