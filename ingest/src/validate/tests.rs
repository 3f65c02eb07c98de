use super::*;
use serde_json::json;

fn check(v: Value) -> Result<EventRecord, Vec<FieldError>> {
    let mut errors = Vec::new();
    let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    match event(&v, String::new(), "adv", None, now, &mut errors) {
        Some(e) if errors.is_empty() => Ok(e),
        _ => Err(errors),
    }
}

#[test]
fn a_valid_purchase() {
    let e =
        check(json!({"action": "purchase", "value": 19.99, "currency": "eur", "order_id": "o1"}))
            .unwrap();
    assert_eq!(e.value_minor, Some(1999));
    assert_eq!(e.currency, "EUR");
    assert!(e.event_id.starts_with("drv_"));
}

#[test]
fn every_error_is_reported() {
    let errs = check(json!({"action": "buy", "value": "1.234", "occurred_at": "yesterday", "properties": [1], "colour": 1})).unwrap_err();
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    for f in ["colour", "action", "occurred_at", "value", "properties"] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
}

#[test]
fn purchase_needs_a_positive_value_and_future_is_refused() {
    let errs = check(json!({"action": "purchase"})).unwrap_err();
    assert_eq!(errs[0].field, "value");
    let errs =
        check(json!({"action": "signup", "occurred_at": "2026-01-01T00:06:00Z"})).unwrap_err();
    assert_eq!(errs[0].field, "occurred_at");
    assert!(check(json!({"action": "signup", "occurred_at": "2026-01-01T00:04:00Z"})).is_ok());
    let errs = check(json!({"action": "custom"})).unwrap_err();
    assert_eq!(errs[0].field, "name");
}

#[test]
fn times_before_2000_and_amounts_beyond_the_maximum_are_refused() {
    for old in [
        "1600-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "1999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
    ] {
        let errs = check(json!({"action": "signup", "occurred_at": old})).unwrap_err();
        assert_eq!(errs[0].field, "occurred_at", "{old}");
        assert!(
            errs[0].message.contains("2000-01-01"),
            "{}",
            errs[0].message
        );
    }
    assert!(check(json!({"action": "signup", "occurred_at": "2000-01-01T00:00:00Z"})).is_ok());
    for huge in [
        json!("92233720368547758.07"),
        json!("10000000000.01"),
        json!(1e300),
    ] {
        let errs =
            check(json!({"action": "purchase", "value": huge, "order_id": "o"})).unwrap_err();
        assert_eq!(errs[0].field, "value", "{huge}");
    }
    let max = check(json!({"action": "purchase", "value": "10000000000", "order_id": "o"}));
    assert_eq!(max.unwrap().value_minor, Some(MAX_VALUE_MINOR));
    let errs = check(json!({"action": "signup", "value": "10000000000.01"})).unwrap_err();
    assert_eq!(errs[0].field, "value");
}

fn check_at(v: Value, now: &str) -> EventRecord {
    let mut errors = Vec::new();
    let now = DateTime::parse_from_rfc3339(now)
        .unwrap()
        .with_timezone(&Utc);
    let e = event(&v, String::new(), "adv", None, now, &mut errors).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    e
}

#[test]
fn a_retry_without_event_id_or_occurred_at_is_the_same_event() {
    let body = json!({"action": "signup", "customer_id": "c", "value": "1.50"});
    let first = check_at(body.clone(), "2026-01-01T00:00:00Z");
    let retry = check_at(body, "2026-01-01T00:00:07.5Z");
    assert_eq!(first.event_id, retry.event_id);
    // The same content in another form is the same event too.
    let reformatted = check_at(
        json!({"customer_id": "c", "value": 1.5, "currency": "usd", "action": "signup"}),
        "2026-01-01T00:03:00Z",
    );
    assert_eq!(first.event_id, reformatted.event_id);
    let timed = json!({"action": "signup", "occurred_at": "2025-12-31T00:00:00Z"});
    assert_eq!(
        check_at(timed.clone(), "2026-01-01T00:00:00Z").event_id,
        check_at(timed, "2026-01-01T00:01:00Z").event_id
    );
}

#[test]
fn derived_ids_differ_by_advertiser_and_by_content() {
    let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let body = json!({"action": "signup", "customer_id": "c"});
    let mut errors = Vec::new();
    let a = event(&body, String::new(), "adv-a", None, now, &mut errors).unwrap();
    let b = event(&body, String::new(), "adv-b", None, now, &mut errors).unwrap();
    assert_ne!(a.event_id, b.event_id);
    let other = check_at(
        json!({"action": "signup", "customer_id": "d"}),
        "2026-01-01T00:00:00Z",
    );
    let at = check_at(
        json!({"action": "signup", "customer_id": "c", "occurred_at": "2025-12-31T00:00:00Z"}),
        "2026-01-01T00:00:00Z",
    );
    let base = check_at(body, "2026-01-01T00:00:00Z");
    assert_ne!(base.event_id, other.event_id);
    assert_ne!(base.event_id, at.event_id);
}

#[test]
fn derived_ids_are_stable_for_retries() {
    let a = check(
        json!({"action": "signup", "customer_id": "c", "occurred_at": "2025-12-31T00:00:00Z"}),
    )
    .unwrap();
    let b = check(
        json!({"action": "signup", "customer_id": "c", "occurred_at": "2025-12-31T00:00:00Z"}),
    )
    .unwrap();
    assert_eq!(a.event_id, b.event_id);
}
