//! Property-based fuzzing of the click token: any text is answered with a verdict (never a
//! panic), only tokens minted with a key verify, and any change to a token breaks it.
//! Cases per property: `FUZZ_CASES` (default 2,000; `scripts/fuzz` runs more).

use clicktrail_schemas::token::ClickKeys;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn keys() -> ClickKeys {
    ClickKeys::parse("2:a-current-key-of-some-length,1:an-older-key-of-some-length").unwrap()
}

/// Inputs seen in the wild or built to break parsers, run before the generated ones.
const SEEDS: [&str; 8] = [
    "",
    "<click_id>",
    "AAAA",
    "AQIAAAGMAAAAAAAAAAAAbGluaw",
    "%00%00",
    "☃☃☃",
    "AQ==",
    "____________________________________________________________________________",
];

#[test]
fn seeds_are_refused() {
    for s in SEEDS {
        assert!(keys().verify(s).is_err(), "{s}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_text_gets_a_verdict(s in ".{0,300}") {
        let _ = keys().verify(&s);
    }

    #[test]
    fn url_safe_text_of_token_length_never_verifies(s in "[A-Za-z0-9_-]{20,120}") {
        prop_assert!(keys().verify(&s).is_err());
    }

    #[test]
    fn minted_tokens_verify_and_any_change_breaks_them(
        link in "[a-z0-9_]{1,40}",
        at in 0i64..4_102_444_800_000,
        random in any::<[u8; 8]>(),
        flip in any::<prop::sample::Index>(),
        to in "[A-Za-z0-9_-]",
    ) {
        let k = keys();
        let token = k.mint(&link, at, random);
        let read = k.verify(&token).unwrap();
        prop_assert_eq!(&read.link_id, &link);
        prop_assert_eq!(read.clicked_at_ms, at);
        let i = flip.index(token.len());
        let mut changed: Vec<char> = token.chars().collect();
        let new = to.chars().next().unwrap();
        prop_assume!(changed[i] != new);
        changed[i] = new;
        let changed: String = changed.into_iter().collect();
        // A change in the last character may only touch padding bits, which decode the same.
        if let Ok(t) = k.verify(&changed) {
            prop_assert_eq!(i, token.len() - 1);
            prop_assert_eq!(t.link_id, link);
        }
        let other = ClickKeys::parse("2:a-different-key-of-some-length").unwrap();
        prop_assert!(other.verify(&token).is_err());
    }
}
