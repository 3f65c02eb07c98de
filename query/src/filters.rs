//! Query-string filters shared by the stats and export endpoints.

use chrono::{DateTime, Duration, Utc};
use clicktrail_api::error::{ApiError, FieldError};
use datafusion::dataframe::DataFrame;
use datafusion::prelude::{col, lit};
use datafusion::scalar::ScalarValue;
use std::collections::HashMap;

/// Parsed filters.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Inclusive start.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive end.
    pub to: Option<DateTime<Utc>>,
    /// One campaign.
    pub campaign_id: Option<String>,
    /// One influencer.
    pub influencer_id: Option<String>,
    /// One advertiser (admin only; an advertiser's key is already scoped).
    pub advertiser_id: Option<String>,
    /// Chart bucket: `hour` or `day`.
    pub interval: String,
}

const KNOWN: [&str; 8] = [
    "from",
    "to",
    "period",
    "campaign_id",
    "influencer_id",
    "advertiser_id",
    "interval",
    // Handled by `freshness::honour_wait` before the request gets here.
    "wait",
];

impl Filters {
    /// Parses `from`/`to` (RFC 3339) or `period=today|7d|30d|all` (default `30d`),
    /// `campaign_id`, `influencer_id`, `advertiser_id`, `interval=hour|day` (default `day`,
    /// `hour` for `period=today`).
    pub fn parse(q: &HashMap<String, String>, now: DateTime<Utc>) -> Result<Filters, ApiError> {
        let mut errors = Vec::new();
        for k in q.keys() {
            if !KNOWN.contains(&k.as_str()) {
                errors.push(FieldError::new(
                    k.clone(),
                    format!("unknown parameter; expected one of {}", KNOWN.join(", ")),
                ));
            }
        }
        let time = |name: &str, errors: &mut Vec<FieldError>| {
            q.get(name)
                .and_then(|v| match DateTime::parse_from_rfc3339(v) {
                    Ok(t) => Some(t.with_timezone(&Utc)),
                    Err(_) => {
                        errors.push(FieldError::new(
                            name,
                            "expected an RFC 3339 timestamp such as 2026-01-31T00:00:00Z",
                        ));
                        None
                    }
                })
        };
        let mut f = Filters {
            from: time("from", &mut errors),
            to: time("to", &mut errors),
            campaign_id: q.get("campaign_id").cloned(),
            influencer_id: q.get("influencer_id").cloned(),
            advertiser_id: q.get("advertiser_id").cloned(),
            // A day is one bucket: `today` is charted by the hour unless asked otherwise.
            interval: q.get("interval").cloned().unwrap_or_else(|| {
                if q.get("period").map(String::as_str) == Some("today") {
                    "hour".into()
                } else {
                    "day".into()
                }
            }),
        };
        let explicit = q.contains_key("from") || q.contains_key("to");
        match (q.get("period").map(String::as_str), explicit) {
            (Some(_), true) => errors.push(FieldError::new(
                "period",
                "give either period or from/to, not both",
            )),
            (Some("all"), false) => {}
            (Some("today"), false) => {
                f.from = Some(
                    now.date_naive()
                        .and_hms_opt(0, 0, 0)
                        .expect("midnight")
                        .and_utc(),
                );
            }
            (Some("7d"), false) => f.from = Some(now - Duration::days(7)),
            (Some("30d"), false) | (None, false) => f.from = Some(now - Duration::days(30)),
            (Some(_), false) => {
                errors.push(FieldError::new("period", "expected today, 7d, 30d or all"))
            }
            (None, true) => {}
        }
        if let (Some(a), Some(b)) = (f.from, f.to)
            && b <= a
        {
            errors.push(FieldError::new("to", "must be after from"));
        }
        if f.interval != "hour" && f.interval != "day" {
            errors.push(FieldError::new("interval", "expected hour or day"));
        }
        if errors.is_empty() {
            Ok(f)
        } else {
            Err(ApiError::fields(errors))
        }
    }

    /// Applies the filters to a table whose time column is `time_col`.
    pub fn apply(&self, mut df: DataFrame, time_col: &str) -> datafusion::error::Result<DataFrame> {
        let ts = |t: DateTime<Utc>| {
            lit(ScalarValue::TimestampMicrosecond(
                Some(t.timestamp_micros()),
                Some("UTC".into()),
            ))
        };
        if let Some(from) = self.from {
            df = df.filter(col(time_col).gt_eq(ts(from)))?;
        }
        if let Some(to) = self.to {
            df = df.filter(col(time_col).lt(ts(to)))?;
        }
        for (column, value) in [
            ("campaign_id", &self.campaign_id),
            ("influencer_id", &self.influencer_id),
            ("advertiser_id", &self.advertiser_id),
        ] {
            if let Some(v) = value {
                df = df.filter(col(column).eq(lit(v.clone())))?;
            }
        }
        Ok(df)
    }
}
