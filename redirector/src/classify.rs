//! Bot flags and device classes from the request.

use std::sync::LazyLock;

static BOTS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);
static UA: LazyLock<woothee::parser::Parser> = LazyLock::new(woothee::parser::Parser::new);

/// Compiles the crawler patterns now rather than on the first request.
pub fn warm_up() {
    LazyLock::force(&BOTS);
    LazyLock::force(&UA);
}

/// Fragments (lower case) of the user agents of e-mail security gateways and link checkers,
/// which open every link of a message before (or instead of) its reader: Barracuda, Mimecast,
/// Proofpoint (`urldefense`), Microsoft's Safe Links and link previews (`bingpreview`, Office's
/// `existence discovery`), Cisco IronPort, Symantec MessageLabs, Trend Micro, Forcepoint,
/// Sophos, Fortinet, Zscaler, AppRiver, SpamTitan, Hornetsecurity, Vade and Cloudmark.
pub const MAIL_SCANNER_AGENTS: &[&str] = &[
    "barracuda",
    "mimecast",
    "proofpoint",
    "urldefense",
    "safelinks",
    "bingpreview",
    "existence discovery",
    "ironport",
    "messagelabs",
    "symantec",
    "trendmicro",
    "trend micro",
    "forcepoint",
    "sophos",
    "fortiguard",
    "zscaler",
    "appriver",
    "spamtitan",
    "hornetsecurity",
    "vadesecure",
    "cloudmark",
];

/// The networks mail gateways open links from, flagged by default: Microsoft Exchange Online
/// Protection's published ranges (40.92.0.0/15, 40.107.0.0/16, 52.100.0.0/14, 104.47.0.0/17).
/// `--scanner-networks` replaces the list.
pub const DEFAULT_SCANNER_NETWORKS: &str = "40.92.0.0/15,40.107.0.0/16,52.100.0.0/14,104.47.0.0/17";

/// Why a click is flagged as automated, if it is, in this order: a HEAD request (link previews,
/// checkers), no user agent at all, a mail scanner's user agent ([`MAIL_SCANNER_AGENTS`]), a
/// crawler user agent from the maintained `isbot` list, a client in a scanner network.
pub fn bot_reason(is_head: bool, user_agent: &str, scanner_network: bool) -> Option<&'static str> {
    if is_head {
        Some("head_request")
    } else if user_agent.trim().is_empty() {
        Some("missing_user_agent")
    } else if is_mail_scanner(user_agent) {
        Some("mail_scanner_user_agent")
    } else if BOTS.is_bot(user_agent) {
        Some("crawler_user_agent")
    } else if scanner_network {
        Some("scanner_network")
    } else {
        None
    }
}

fn is_mail_scanner(user_agent: &str) -> bool {
    let ua = user_agent.to_ascii_lowercase();
    MAIL_SCANNER_AGENTS.iter().any(|f| ua.contains(f))
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
        assert_eq!(bot_reason(false, chrome, false), None);
        assert_eq!(bot_reason(true, chrome, false), Some("head_request"));
        assert_eq!(
            bot_reason(
                false,
                "Googlebot/2.1 (+http://www.google.com/bot.html)",
                false
            ),
            Some("crawler_user_agent")
        );
        assert_eq!(
            bot_reason(false, "Mozilla/5.0 (compatible; Barracuda Sentinel)", false),
            Some("mail_scanner_user_agent")
        );
        assert_eq!(
            bot_reason(false, "Microsoft Office Existence Discovery", false),
            Some("mail_scanner_user_agent")
        );
        assert_eq!(bot_reason(false, chrome, true), Some("scanner_network"));
        assert_eq!(device_class(chrome, false), "desktop");
        assert_eq!(device_class(iphone, false), "mobile");
    }
}
