//! Query-string filters shared by the stats and export endpoints.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
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
    /// The viewer's time zone: `today`, calendar days and daily buckets follow it.
    pub tz: Tz,
}

const KNOWN: [&str; 9] = [
    "from",
    "to",
    "period",
    "campaign_id",
    "influencer_id",
    "advertiser_id",
    "interval",
    "tz",
    // Handled by `freshness::honour_wait` before the request gets here.
    "wait",
];

/// The most buckets a chart answer is filled to; a longer period answers the buckets with data.
pub const MAX_BUCKETS: usize = 5000;

/// A list's `limit` parameter: `default` when absent, else a whole number from 1 to `max`.
/// Errors: 400 naming `limit`, with the range expected.
pub fn limit(q: &HashMap<String, String>, default: u32, max: u32) -> Result<u32, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| ApiError::field("limit", format!("expected a number from 1 to {max}"))),
    }
}

/// The first instant of `date` in `tz`: its midnight, or, where a daylight-saving change skips
/// midnight, the first instant that exists after it.
pub fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    (0..=24 * 4)
        .find_map(|quarter| {
            tz.from_local_datetime(&(midnight + Duration::minutes(15 * quarter)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| midnight.and_utc())
}

impl Filters {
    /// Parses `from`/`to` (RFC 3339, or a date `YYYY-MM-DD` meaning its midnight in `tz`;
    /// `to` is exclusive) or `period=today|7d|30d|all` (default `30d`), `campaign_id`,
    /// `influencer_id`, `advertiser_id`, `interval=hour|day` (default `day`, `hour` for
    /// `period=today`) and `tz` (an IANA time zone such as `Europe/Paris`, default `UTC`).
    ///
    /// `today` starts at midnight in `tz`. Without `tz`, `7d` and `30d` are the last 7 or 30
    /// times 24 hours; with `tz` they are the last 7 or 30 calendar days there, today
    /// included, so that daily buckets are whole days. Midnight is taken as the zone says on
    /// that date, daylight saving time included (a midnight that does not exist is the first
    /// instant after it).
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
        let tz = match q.get("tz").map(|v| v.trim()) {
            None | Some("") => Tz::UTC,
            Some(v) => v.parse::<Tz>().unwrap_or_else(|_| {
                errors.push(FieldError::new(
                    "tz",
                    "expected an IANA time zone such as Europe/Paris or America/New_York",
                ));
                Tz::UTC
            }),
        };
        let time = |name: &str, errors: &mut Vec<FieldError>| {
            q.get(name).and_then(|v| {
                if let Ok(t) = DateTime::parse_from_rfc3339(v) {
                    return Some(t.with_timezone(&Utc));
                }
                if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
                    return Some(local_midnight(tz, d));
                }
                errors.push(FieldError::new(
                    name,
                    "expected an RFC 3339 timestamp such as 2026-01-31T00:00:00Z or a date such as 2026-01-31",
                ));
                None
            })
        };
        let today = now.with_timezone(&tz).date_naive();
        let calendar = q.contains_key("tz");
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
            tz,
        };
        let explicit = q.contains_key("from") || q.contains_key("to");
        match (q.get("period").map(String::as_str), explicit) {
            (Some(_), true) => errors.push(FieldError::new(
                "period",
                "give either period or from/to, not both",
            )),
            (Some("all"), false) => {}
            (Some("today"), false) => f.from = Some(local_midnight(tz, today)),
            (Some("7d"), false) if calendar => {
                f.from = Some(local_midnight(tz, today - Duration::days(6)))
            }
            (Some("30d"), false) | (None, false) if calendar => {
                f.from = Some(local_midnight(tz, today - Duration::days(29)))
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

    /// The start of the bucket (hour or day, in [`Filters::tz`]) holding the hour that starts
    /// at `hour_start`, as RFC 3339 with the zone's offset at that time (`Z` for UTC).
    /// The first bucket starts where the period does (in a zone whose offset is not whole
    /// hours, the period's first UTC hour begins before it).
    pub fn bucket_of(&self, hour_start: DateTime<Utc>) -> String {
        self.bucket(hour_start).1
    }

    /// [`Filters::bucket_of`] with the bucket's start as an instant, the order of buckets
    /// (labels alone misorder the hour repeated when clocks go back).
    pub fn bucket(&self, hour_start: DateTime<Utc>) -> (DateTime<Utc>, String) {
        let hour_start = self.from.map_or(hour_start, |f| hour_start.max(f));
        let local = hour_start.with_timezone(&self.tz);
        let start = if self.interval == "day" {
            local_midnight(self.tz, local.date_naive())
                .max(self.from.unwrap_or(DateTime::<Utc>::MIN_UTC))
                .with_timezone(&self.tz)
        } else {
            local
        };
        (
            start.with_timezone(&Utc),
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    }

    /// Every bucket of the period, in order, so that a chart has a point (zero) where nothing
    /// happened: from the period's start (else `first`, the first hour with data) to its end
    /// (else `now`). `None` when that would be more than [`MAX_BUCKETS`] buckets, or there is
    /// no start.
    pub fn all_buckets(
        &self,
        first: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Option<Vec<(DateTime<Utc>, String)>> {
        const HOUR: i64 = 3600;
        let start = self.from.or(first)?;
        let end = self.to.unwrap_or(now).max(start);
        let hours = (end.timestamp() - start.timestamp()) / HOUR + 1;
        let per_bucket = if self.interval == "day" { 24 } else { 1 };
        if hours / per_bucket > MAX_BUCKETS as i64 {
            return None;
        }
        let first_hour = start.timestamp() - start.timestamp().rem_euclid(HOUR);
        let mut out: Vec<(DateTime<Utc>, String)> = Vec::new();
        let mut h = first_hour;
        while h < end.timestamp() || h == first_hour {
            let key = self.bucket(DateTime::from_timestamp(h, 0)?);
            if out.last() != Some(&key) {
                out.push(key);
            }
            h += HOUR;
        }
        Some(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn today_and_calendar_days_follow_the_viewers_zone_across_daylight_saving() {
        // Paris moved its clocks forward on 2026-03-29 at 02:00 (UTC+1 → UTC+2).
        let now = t("2026-03-29T12:00:00Z");
        let f = Filters::parse(&q(&[("period", "today"), ("tz", "Europe/Paris")]), now).unwrap();
        assert_eq!(f.from, Some(t("2026-03-28T23:00:00Z")));
        assert_eq!(f.interval, "hour");
        let next = Filters::parse(
            &q(&[("period", "today"), ("tz", "Europe/Paris")]),
            t("2026-03-30T12:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            next.from,
            Some(t("2026-03-29T22:00:00Z")),
            "midnight after the change is at UTC+2"
        );
        // With a zone, 7d is the last 7 calendar days there, today included.
        let f = Filters::parse(
            &q(&[("period", "7d"), ("tz", "America/New_York")]),
            t("2026-11-04T03:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            f.from,
            Some(t("2026-10-28T04:00:00Z")),
            "Oct 28 midnight EDT (UTC-4); New York is on Nov 3"
        );
        // Without one, 7d stays 7 × 24 hours.
        let f = Filters::parse(&q(&[("period", "7d")]), t("2026-11-04T03:00:00Z")).unwrap();
        assert_eq!(f.from, Some(t("2026-10-28T03:00:00Z")));
        // Dates are midnights in the zone; `to` is exclusive.
        let f = Filters::parse(
            &q(&[
                ("from", "2026-10-31"),
                ("to", "2026-11-02"),
                ("tz", "America/New_York"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!(
            (f.from, f.to),
            (
                Some(t("2026-10-31T04:00:00Z")),
                Some(t("2026-11-02T05:00:00Z"))
            ),
            "the clocks went back on Nov 1"
        );
        // A midnight the zone skips (Santiago, 2026-09-06 00:00 → 01:00) is the first instant after it.
        assert_eq!(
            local_midnight(
                Tz::America__Santiago,
                NaiveDate::from_ymd_opt(2026, 9, 6).unwrap()
            ),
            t("2026-09-06T04:00:00Z")
        );
    }

    #[test]
    fn daily_buckets_are_local_days_with_their_offset() {
        let f = Filters::parse(
            &q(&[("tz", "Europe/Paris"), ("interval", "day")]),
            t("2026-03-30T12:00:00Z"),
        )
        .unwrap();
        // 23:00 local on the 28th (UTC+1) and 23:00 local on the 29th (UTC+2).
        assert_eq!(
            f.bucket_of(t("2026-03-28T22:00:00Z")),
            "2026-03-28T00:00:00+01:00"
        );
        assert_eq!(
            f.bucket_of(t("2026-03-29T21:00:00Z")),
            "2026-03-29T00:00:00+01:00"
        );
        assert_eq!(
            f.bucket_of(t("2026-03-29T22:00:00Z")),
            "2026-03-30T00:00:00+02:00"
        );
        let hourly =
            Filters::parse(&q(&[("interval", "hour")]), t("2026-03-30T12:00:00Z")).unwrap();
        assert_eq!(
            hourly.bucket_of(t("2026-03-29T22:00:00Z")),
            "2026-03-29T22:00:00Z"
        );
    }

    #[test]
    fn an_unknown_zone_names_its_field() {
        let err = Filters::parse(&q(&[("tz", "Mars/Olympus")]), Utc::now()).unwrap_err();
        assert!(
            err.to_string().contains("tz") || format!("{err:?}").contains("tz"),
            "{err:?}"
        );
    }
}
