//! Property-based fuzzing of the events parser: any JSON, and any bytes, get either an
//! accepted event or field errors that name a field — never a panic — and an accepted event
//! respects every documented bound. Cases per property: `FUZZ_CASES` (default 2,000).

use chrono::{DateTime, Utc};
use clicktrail_ingest::validate::{self, MAX_VALUE_MINOR, MIN_OCCURRED_AT_SECS};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// Every accepted field, and some that are not.
fn fields() -> Vec<&'static str> {
    let mut all = validate::FIELDS.to_vec();
    all.extend(["colour", "", "events"]);
    all
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("purchase"),
            Just("signup"),
            Just("add_to_cart"),
            Just("drop_off"),
            Just("custom"),
            Just("USD"),
            Just("BHD"),
            Just("JPY"),
            Just("19.99"),
            Just("92233720368547758.07"),
            Just("-1"),
            Just("1e3"),
            Just("1600-01-01T00:00:00Z"),
            Just("2026-01-01T00:00:00Z"),
            Just("9999-12-31T23:59:59Z"),
            Just("https://x.example/?ref=abc"),
        ]
        .prop_map(|s| Value::from(s.to_string())),
        ".{0,40}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(fields()), inner), 0..6).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn event_object() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop::sample::select(validate::FIELDS.to_vec()),
            json_value(),
        ),
        0..10,
    )
    .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Validates like the events endpoint: split, then each event.
fn validate_body(body: Value) -> Result<Vec<clicktrail_schemas::wire::EventRecord>, Vec<String>> {
    let batch = validate::split_batch(body).map_err(|e| vec![e.field])?;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for (i, v) in batch.iter().enumerate() {
        if let Some(e) =
            validate::event(v, format!("events[{i}]."), "adv", None, now(), &mut errors)
        {
            out.push(e);
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.into_iter().map(|e| e.field).collect())
    }
}

fn check(body: Value) -> Result<(), TestCaseError> {
    match validate_body(body) {
        Ok(events) => {
            for e in events {
                prop_assert!(e.occurred_at.timestamp() >= MIN_OCCURRED_AT_SECS);
                prop_assert!((e.occurred_at - now()).num_seconds() <= 300);
                if let Some(v) = e.value_minor {
                    prop_assert!(v <= MAX_VALUE_MINOR);
                }
                prop_assert!(!e.event_id.is_empty() && e.event_id.len() <= 128);
            }
        }
        Err(fields) => {
            prop_assert!(!fields.is_empty());
            prop_assert!(fields.iter().all(|f| !f.is_empty()), "{fields:?}");
        }
    }
    Ok(())
}

#[test]
fn seeds_get_verdicts() {
    for body in [
        json!({"action": "signup", "occurred_at": "1600-01-01T00:00:00Z"}),
        json!({"action": "purchase", "value": "92233720368547758.07", "order_id": "o"}),
        json!({"action": "purchase", "value": 1e308, "order_id": "o"}),
        json!({"events": [{"action": "signup"}, {"action": "nope"}]}),
        json!([[], {}, null]),
        json!({"action": "custom", "name": "x".repeat(10_000)}),
        json!({"action": "signup", "properties": {"a": [[[[[[[[[[1]]]]]]]]]]}}),
    ] {
        check(body).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn any_event_object_gets_a_verdict(body in event_object()) {
        check(body)?;
    }

    #[test]
    fn any_json_gets_a_verdict(body in json_value()) {
        check(body)?;
    }

    #[test]
    fn any_bytes_get_a_verdict(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            check(v)?;
        }
    }
}
