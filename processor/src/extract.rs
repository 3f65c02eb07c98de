//! Lazy extraction: attribution parameters found in a landing page URL or a referrer.

use url::Url;

/// Query parameters read as a click token, in order of preference.
pub const CLICK_PARAMS: [&str; 3] = ["click_id", "clickid", "ct_click_id"];
/// Query parameters read as a link code (ours first, then common affiliate-network names).
pub const REF_PARAMS: [&str; 6] = ["ref_code", "ref", "aff", "affiliate", "aff_id", "via"];

/// What a URL carries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// A click token.
    pub click_id: Option<String>,
    /// A link code.
    pub ref_code: Option<String>,
}

/// Reads attribution parameters from `raw`, which may lack a scheme.
pub fn from_url(raw: &str) -> Extracted {
    let parsed = Url::parse(raw).or_else(|_| Url::parse(&format!("https://{raw}")));
    let Ok(url) = parsed else {
        return Extracted::default();
    };
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            pairs
                .iter()
                .find(|(k, v)| k.eq_ignore_ascii_case(n) && !v.trim().is_empty())
                .map(|(_, v)| v.trim().to_string())
        })
    };
    Extracted {
        click_id: find(&CLICK_PARAMS),
        ref_code: find(&REF_PARAMS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_parameters() {
        let e = from_url("https://shop.example/p?utm_source=x&ref_code=abc&click_id=TOKEN");
        assert_eq!(e.click_id.as_deref(), Some("TOKEN"));
        assert_eq!(e.ref_code.as_deref(), Some("abc"));
        assert_eq!(
            from_url("shop.example/?aff=zz").ref_code.as_deref(),
            Some("zz")
        );
        assert_eq!(from_url("::not a url::"), Extracted::default());
    }
}
