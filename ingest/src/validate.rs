//! Event validation: every field error of a request is collected and reported at once.

use chrono::{DateTime, Utc};
use clicktrail_api::error::FieldError;
use clicktrail_schemas::money;
use clicktrail_schemas::wire::{Action, EventRecord, MAX_URL_LEN, WIRE_VERSION};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Most events in one request.
pub const MAX_BATCH: usize = 1000;
/// Largest `properties` object, serialized.
pub const MAX_PROPERTIES_BYTES: usize = 4096;
/// How far in the future `occurred_at` may be.
pub const MAX_FUTURE_SECS: i64 = 300;
/// The earliest `occurred_at` accepted: 2000-01-01T00:00:00Z, in seconds since the epoch.
/// Older times are implausible for tracking data, and every backend represents everything
/// from here up to the future bound (ClickHouse partitions by a 32-bit `DateTime`, which
/// cannot hold times before 1970).
pub const MIN_OCCURRED_AT_SECS: i64 = 946_684_800;
/// The largest amount accepted, in minor units of its currency (10^12: ten billion USD, a
/// trillion JPY). Sums of up to 9.2 million such amounts fit a signed 64-bit integer; the
/// dashboards sum in 128 bits and never overflow.
pub const MAX_VALUE_MINOR: i64 = 1_000_000_000_000;

/// Every field an event may have; any other is refused.
pub const FIELDS: [&str; 18] = [
    "action",
    "name",
    "custom_name",
    "event_id",
    "occurred_at",
    "value",
    "currency",
    "order_id",
    "customer_id",
    "properties",
    "coupon_code",
    "ref_code",
    "click_id",
    "sub_id",
    "landing_url",
    "referrer",
    "timestamp",
    "v",
];

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
    errors: &'a mut Vec<FieldError>,
}

impl Fields<'_> {
    fn err(&mut self, field: &str, msg: impl Into<String>) {
        self.errors
            .push(FieldError::new(format!("{}{field}", self.prefix), msg));
    }

    fn string(&mut self, field: &str, max: usize) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.err(field, "expected a non-empty string");
                None
            }
            Some(Value::String(s)) if s.len() > max => {
                self.err(field, format!("expected at most {max} characters"));
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(other) => {
                self.err(field, format!("expected a string, got {}", kind(other)));
                None
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The events of a request body: one object, an array, or `{"events": [...]}`.
pub fn split_batch(body: Value) -> Result<Vec<Value>, FieldError> {
    match body {
        Value::Array(items) => Ok(items),
        Value::Object(mut obj) if obj.contains_key("events") => match obj.remove("events") {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(FieldError::new("events", "expected an array of events")),
        },
        obj @ Value::Object(_) => Ok(vec![obj]),
        other => Err(FieldError::new(
            "body",
            format!(
                "expected an event object or an array of events, got {}",
                kind(&other)
            ),
        )),
    }
}

/// Validates one event. `fixed_action` is the action named by an alias path.
pub fn event(
    value: &Value,
    prefix: String,
    advertiser_id: &str,
    fixed_action: Option<Action>,
    now: DateTime<Utc>,
    errors: &mut Vec<FieldError>,
) -> Option<EventRecord> {
    let before = errors.len();
    let Value::Object(obj) = value else {
        let field = if prefix.is_empty() {
            "body".to_string()
        } else {
            prefix.trim_end_matches('.').to_string()
        };
        errors.push(FieldError::new(
            field,
            format!("expected an event object, got {}", kind(value)),
        ));
        return None;
    };
    let mut f = Fields {
        obj,
        prefix,
        errors,
    };
    for key in obj.keys() {
        if !FIELDS.contains(&key.as_str()) {
            f.err(key, "unknown field");
        }
    }

    let action = match (obj.get("action"), fixed_action) {
        (None | Some(Value::Null), Some(a)) => Some(a),
        (None | Some(Value::Null), None) => {
            f.err(
                "action",
                "required: one of purchase, add_to_cart, signup, drop_off, custom, refund",
            );
            None
        }
        (Some(Value::String(s)), fixed) => match Action::parse(s) {
            Some(a) if fixed.is_some_and(|x| x != a) => {
                f.err(
                    "action",
                    format!(
                        "this endpoint only accepts `{}`",
                        fixed.map(Action::as_str).unwrap_or_default()
                    ),
                );
                None
            }
            Some(a) => Some(a),
            None => {
                f.err(
                    "action",
                    "expected one of purchase, add_to_cart, signup, drop_off, custom, refund",
                );
                None
            }
        },
        (Some(other), _) => {
            f.err("action", format!("expected a string, got {}", kind(other)));
            None
        }
    };
    let custom_name = f.string("name", 64).or_else(|| f.string("custom_name", 64));
    if action == Some(Action::Custom) && custom_name.is_none() {
        f.err("name", "required for a custom action");
    }

    let event_id = f.string("event_id", 128);
    let occurred_at = match obj.get("occurred_at").or(obj.get("timestamp")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) if (t.with_timezone(&Utc) - now).num_seconds() > MAX_FUTURE_SECS => {
                f.err("occurred_at", "is more than five minutes in the future");
                None
            }
            Ok(t) if t.timestamp() < MIN_OCCURRED_AT_SECS => {
                f.err(
                    "occurred_at",
                    "expected a time on or after 2000-01-01T00:00:00Z",
                );
                None
            }
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                f.err(
                    "occurred_at",
                    "expected an RFC 3339 timestamp such as 2026-01-31T12:00:00Z",
                );
                None
            }
        },
        Some(other) => {
            f.err(
                "occurred_at",
                format!("expected an RFC 3339 timestamp string, got {}", kind(other)),
            );
            None
        }
    };

    let currency = match f.string("currency", 3) {
        None => Some("USD".to_string()),
        Some(c) => match money::parse_currency(&c) {
            Ok(c) => Some(c),
            Err(e) => {
                f.err("currency", e.to_string());
                None
            }
        },
    };
    let value_minor = match obj.get("value") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            f.err("value", format!("expected a number, got {}", kind(other)));
            None
        }
    }
    .and_then(|text| {
        match money::to_minor_units(&text, currency.as_deref().unwrap_or("USD")) {
            Ok(v) => Some(v),
            Err(e) => {
                f.err("value", e.to_string());
                None
            }
        }
    });
    let value_given = obj.get("value").is_some_and(|v| !v.is_null());
    if action == Some(Action::Purchase) && (!value_given || value_minor.is_some_and(|v| v <= 0)) {
        f.err("value", "a purchase needs a value above zero");
    }
    if value_minor.is_some_and(|v| v < 0) && action != Some(Action::Purchase) {
        f.err("value", "expected a value of zero or more");
    }
    if value_minor.is_some_and(|v| v > MAX_VALUE_MINOR) {
        f.err(
            "value",
            format!("expected at most {MAX_VALUE_MINOR} minor units of the currency"),
        );
    }

    let properties = match obj.get("properties") {
        None | Some(Value::Null) => None,
        Some(p @ Value::Object(_)) => {
            let s = p.to_string();
            if s.len() > MAX_PROPERTIES_BYTES {
                f.err(
                    "properties",
                    format!("expected at most {MAX_PROPERTIES_BYTES} bytes of JSON"),
                );
                None
            } else {
                Some(s)
            }
        }
        Some(other) => {
            f.err(
                "properties",
                format!("expected a JSON object, got {}", kind(other)),
            );
            None
        }
    };
    let order_id = f.string("order_id", 128);
    if action == Some(Action::Refund) && order_id.is_none() {
        f.err(
            "order_id",
            "a refund needs the order_id of the purchase it refunds",
        );
    }
    if action == Some(Action::Refund) && value_minor == Some(0) {
        f.err(
            "value",
            "a refund's value is the amount refunded, above zero; leave it out to refund the whole order",
        );
    }
    let customer_id = f.string("customer_id", 128);
    let coupon_code = f.string("coupon_code", 64);
    let ref_code = f.string("ref_code", 64);
    let click_id = f.string("click_id", 256);
    let sub_id = f.string("sub_id", 200);
    let landing_url = f.string("landing_url", MAX_URL_LEN);
    let referrer = f.string("referrer", MAX_URL_LEN);

    if errors.len() > before {
        return None;
    }
    let action = action?;
    let occurred = occurred_at.unwrap_or(now);
    let given_occurred_at = occurred_at;
    let mut record = EventRecord {
        v: WIRE_VERSION,
        event_id: String::new(),
        advertiser_id: advertiser_id.to_string(),
        action,
        custom_name: if action == Action::Custom {
            custom_name
        } else {
            None
        },
        occurred_at: occurred,
        received_at: now,
        value_minor,
        currency: currency?,
        order_id,
        customer_id,
        properties,
        coupon_code,
        ref_code,
        click_id,
        landing_url,
        referrer,
        sub_id,
        source: Default::default(),
        uncounted: false,
    };
    record.event_id = event_id.unwrap_or_else(|| derive_event_id(&record, given_occurred_at));
    Some(record)
}

/// The content an event without `event_id` is identified by: the advertiser and every field
/// the advertiser sent, normalized (amount in minor units, currency upper case, `properties`
/// with sorted keys), and `occurred_at` only when it was given. The receive time is never
/// part of it, so a client's retry of the same body is the same event.
#[derive(serde::Serialize)]
struct EventContent<'a> {
    advertiser_id: &'a str,
    action: Action,
    custom_name: Option<&'a str>,
    occurred_at: Option<DateTime<Utc>>,
    value_minor: Option<i64>,
    currency: &'a str,
    order_id: Option<&'a str>,
    customer_id: Option<&'a str>,
    properties: Option<&'a str>,
    coupon_code: Option<&'a str>,
    ref_code: Option<&'a str>,
    click_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_id: Option<&'a str>,
    landing_url: Option<&'a str>,
    referrer: Option<&'a str>,
}

/// An event id derived from [`EventContent`]: `drv_` and 24 hex digits of its SHA-256. Two
/// events of one advertiser get the same id exactly when their content is the same.
fn derive_event_id(r: &EventRecord, occurred_at: Option<DateTime<Utc>>) -> String {
    let content = EventContent {
        advertiser_id: &r.advertiser_id,
        action: r.action,
        custom_name: r.custom_name.as_deref(),
        occurred_at,
        value_minor: r.value_minor,
        currency: &r.currency,
        order_id: r.order_id.as_deref(),
        customer_id: r.customer_id.as_deref(),
        properties: r.properties.as_deref(),
        coupon_code: r.coupon_code.as_deref(),
        ref_code: r.ref_code.as_deref(),
        click_id: r.click_id.as_deref(),
        sub_id: r.sub_id.as_deref(),
        landing_url: r.landing_url.as_deref(),
        referrer: r.referrer.as_deref(),
    };
    let bytes = serde_json::to_vec(&content).expect("event content serializes");
    let digest = Sha256::digest(&bytes);
    format!("drv_{}", hex::encode(&digest[..12]))
}

#[cfg(test)]
mod tests;
