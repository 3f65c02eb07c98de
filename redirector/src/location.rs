//! The `Location` of a redirect: the campaign's destination, the shopper's query, and exactly
//! one fresh `ref_code` and `click_id` (and the click's `sub_id`, when it has one).
//!
//! Rules (`docs/api.md`, "Redirects"):
//! - Parameters named `ref_code` or `click_id` in any case are dropped from both the destination
//!   and the shopper's query, then the fresh pair is appended once. A click with a sub id (from
//!   `/r/{code}/{sub_id}`, or the shopper's `sub_id` parameter) has it as the one `sub_id`, so
//!   that the landing page can hand it back (postbacks' `{sub_id}`).
//! - One value per key: the destination's parameters keep their order; a key the shopper's URL
//!   also carries takes the shopper's value (the later one wins, at the earlier place).
//! - The result is at most [`MAX_URL_LEN`] bytes, so that it is accepted back as
//!   `landing_url`: the shopper's parameters that would overflow it are left out, the last
//!   first. (Destinations are at most `MAX_DESTINATION_LEN`, checked when a campaign is saved.)

use clicktrail_schemas::wire::MAX_URL_LEN;
use url::Url;

/// Whether `key` is one of the tracking parameters this redirect sets (`sub_id` only when
/// the click has one).
fn reserved(key: &str, with_sub_id: bool) -> bool {
    key.eq_ignore_ascii_case("ref_code")
        || key.eq_ignore_ascii_case("click_id")
        || (with_sub_id && key.eq_ignore_ascii_case("sub_id"))
}

/// The redirect target for `destination` reached with the query `incoming`, for a click with
/// `sub_id`.
pub fn location(
    destination: &Url,
    incoming: Option<&str>,
    code: &str,
    click_id: &str,
    sub_id: Option<&str>,
) -> Url {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let put = |pairs: &mut Vec<(String, String)>, k: String, v: String| {
        if reserved(&k, sub_id.is_some()) {
            return;
        }
        match pairs.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => pairs.push((k, v)),
        }
    };
    for (k, v) in destination.query_pairs() {
        put(&mut pairs, k.into_owned(), v.into_owned());
    }
    let own = pairs.len();
    if let Some(q) = incoming {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            put(&mut pairs, k.into_owned(), v.into_owned());
        }
    }
    loop {
        let mut out = destination.clone();
        {
            let mut q = out.query_pairs_mut();
            q.clear();
            for (k, v) in &pairs {
                q.append_pair(k, v);
            }
            if let Some(s) = sub_id {
                q.append_pair("sub_id", s);
            }
            q.append_pair("ref_code", code);
            q.append_pair("click_id", click_id);
        }
        if out.as_str().len() <= MAX_URL_LEN || pairs.len() <= own {
            return out;
        }
        pairs.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(dest: &str, incoming: Option<&str>) -> String {
        location(&Url::parse(dest).unwrap(), incoming, "abc", "TOKEN", None).to_string()
    }

    #[test]
    fn exactly_one_fresh_ref_code_and_click_id_whatever_came_in() {
        assert_eq!(
            go(
                "https://shop.example/p?ref_code=old&click_id=stale&x=1",
                None
            ),
            "https://shop.example/p?x=1&ref_code=abc&click_id=TOKEN"
        );
        assert_eq!(
            go(
                "https://shop.example/p",
                Some("CLICK_ID=x&Ref_Code=other&Click_Id=y")
            ),
            "https://shop.example/p?ref_code=abc&click_id=TOKEN"
        );
        assert_eq!(
            go("https://shop.example/p#top", None),
            "https://shop.example/p?ref_code=abc&click_id=TOKEN#top"
        );
    }

    #[test]
    fn one_value_per_key_the_shoppers_winning() {
        assert_eq!(
            go(
                "https://shop.example/p?utm_source=newsletter&utm_medium=email",
                Some("utm_source=story&utm_source=reel&extra=1")
            ),
            "https://shop.example/p?utm_source=reel&utm_medium=email&extra=1&ref_code=abc&click_id=TOKEN"
        );
    }

    #[test]
    fn the_location_fits_the_url_limit() {
        let long = format!("https://shop.example/{}", "p".repeat(1700));
        let shopper: String = (0..200).map(|i| format!("k{i}=vvvvvvvvvv&")).collect();
        let out = go(&long, Some(&shopper));
        assert!(out.len() <= MAX_URL_LEN, "{}", out.len());
        assert!(out.contains("k0=") && out.ends_with("&ref_code=abc&click_id=TOKEN"));
        assert!(
            !out.contains("k199="),
            "the last shopper parameters are left out"
        );
    }

    #[test]
    fn a_clicks_sub_id_is_handed_on_once() {
        let dest = Url::parse("https://shop.example/p?sub_id=dest&x=1").unwrap();
        let to = |incoming, sub| location(&dest, incoming, "abc", "TOKEN", sub).to_string();
        assert_eq!(
            to(Some("SUB_ID=old&y=2"), Some("net 1&x")),
            "https://shop.example/p?x=1&y=2&sub_id=net+1%26x&ref_code=abc&click_id=TOKEN"
        );
        assert_eq!(
            to(None, None),
            "https://shop.example/p?sub_id=dest&x=1&ref_code=abc&click_id=TOKEN",
            "without one, the destination's own parameters are left alone"
        );
    }
}
