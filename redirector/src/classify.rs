//! Bot flags and device classes from the request.

use std::sync::LazyLock;

static BOTS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);
static UA: LazyLock<woothee::parser::Parser> = LazyLock::new(woothee::parser::Parser::new);

/// Compiles the crawler patterns now rather than on the first request.
pub fn warm_up() {
    LazyLock::force(&BOTS);
    LazyLock::force(&UA);
}

/// Why a click is flagged as automated, if it is: a HEAD request (link previews, checkers), a
/// crawler user agent from the maintained `isbot` list, or no user agent at all.
pub fn bot_reason(is_head: bool, user_agent: &str) -> Option<&'static str> {
    if is_head {
        Some("head_request")
    } else if user_agent.trim().is_empty() {
        Some("missing_user_agent")
    } else if BOTS.is_bot(user_agent) {
        Some("crawler_user_agent")
    } else {
        None
    }
}

/// `desktop`, `mobile`, `bot` or `other`.
pub fn device_class(user_agent: &str, is_bot: bool) -> &'static str {
    if is_bot {
        return "bot";
    }
    match UA.parse(user_agent).map(|r| r.category) {
        Some("pc") => "desktop",
        Some("smartphone") | Some("mobilephone") => "mobile",
        Some("crawler") => "bot",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crawlers_and_devices() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(bot_reason(false, chrome), None);
        assert_eq!(bot_reason(true, chrome), Some("head_request"));
        assert_eq!(
            bot_reason(false, "Googlebot/2.1 (+http://www.google.com/bot.html)"),
            Some("crawler_user_agent")
        );
        assert_eq!(device_class(chrome, false), "desktop");
        assert_eq!(device_class(iphone, false), "mobile");
    }
}
