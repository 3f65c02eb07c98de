//! Fixtures shared by clicktrail's criterion benches: a small catalog and sample records.
//! The benches themselves are in `benches/`; run them with `cargo bench -p clicktrail-benches`.

use chrono::Utc;
use clicktrail_schemas::catalog::*;
use clicktrail_schemas::token::ClickKeys;
use clicktrail_schemas::{Catalog, CatalogChange};

/// Click keys used by every bench.
pub fn keys() -> ClickKeys {
    ClickKeys::new(1, b"bench-click-key-0123456789".to_vec())
}

/// The catalog changes of one advertiser with two influencers, links `bench-a` / `bench-b`
/// and coupon `ANNA10`.
pub fn catalog_changes() -> Vec<CatalogChange> {
    let now = Utc::now();
    let link = |id: &str, inf: &str, code: &str| Link {
        id: id.into(),
        campaign_id: "cmp_bench".into(),
        influencer_id: inf.into(),
        advertiser_id: "adv_bench".into(),
        code: code.into(),
        active: true,
        created_at: now,
    };
    vec![
        CatalogChange::AdvertiserUpserted {
            advertiser: Advertiser {
                id: "adv_bench".into(),
                name: "Bench".into(),
                status: Status::Active,
                require_signature: true,
                browser_purchases_count: false,
                created_at: now,
            },
        },
        CatalogChange::CampaignUpserted {
            campaign: Campaign {
                id: "cmp_bench".into(),
                advertiser_id: "adv_bench".into(),
                name: "Bench".into(),
                destination_url: "https://shop.example/landing?src=bench".into(),
                starts_at: None,
                ends_at: None,
                attribution_source: AttributionSource::All,
                attribution_window_secs: DEFAULT_WINDOW_SECS,
                trailing_expiry_secs: None,
                status: Status::Active,
                created_at: now,
            },
        },
        CatalogChange::LinkCreated {
            link: link("lnk_a", "inf_a", "bench-a"),
        },
        CatalogChange::LinkCreated {
            link: link("lnk_b", "inf_b", "bench-b"),
        },
        CatalogChange::CouponsCreated {
            coupons: vec![Coupon {
                id: "cpn_a".into(),
                advertiser_id: "adv_bench".into(),
                campaign_id: "cmp_bench".into(),
                influencer_id: Some("inf_a".into()),
                code: "ANNA10".into(),
                active: true,
                created_at: now,
            }],
        },
    ]
}

/// The bench catalog.
pub fn catalog() -> Catalog {
    let mut c = Catalog::default();
    for ch in catalog_changes() {
        c.apply(&ch).expect("bench catalog applies");
    }
    c
}
