//! Amounts: decimal text in major units to integer minor units under ISO 4217.

use iso_currency::Currency;

/// Why an amount or currency was refused; the text is shown to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not an ISO 4217 alphabetic code.
    #[error("expected an ISO 4217 currency code such as USD")]
    UnknownCurrency,
    /// Not a plain decimal number.
    #[error("expected a decimal number such as 19.99")]
    NotDecimal,
    /// More fractional digits than allowed.
    #[error("expected at most {0} decimal places")]
    TooPrecise(u32),
    /// Does not fit.
    #[error("amount is too large")]
    TooLarge,
}

/// Checks a currency code and returns its canonical upper-case form.
pub fn parse_currency(code: &str) -> Result<String, MoneyError> {
    let upper = code.trim().to_ascii_uppercase();
    Currency::from_code(&upper)
        .map(|c| c.code().to_string())
        .ok_or(MoneyError::UnknownCurrency)
}

/// The number of fractional digits of a currency's minor unit (2 for USD, 0 for JPY).
pub fn minor_digits(currency: &str) -> u32 {
    Currency::from_code(currency)
        .and_then(|c| c.exponent())
        .map(u32::from)
        .unwrap_or(2)
}

/// Converts a decimal string in major units (`"19.99"`) to minor units of the currency, as many
/// as its ISO 4217 exponent says: `1999` for 19.99 USD (two decimals), `1500` for 1.5 BHD
/// (three: BHD, IQD, JOD, KWD, LYD, OMR, TND), `500` for 500 JPY (none). At most that many
/// fractional digits are accepted (trailing zeros aside).
pub fn to_minor_units(decimal: &str, currency: &str) -> Result<i64, MoneyError> {
    let digits = minor_digits(currency);
    let s = decimal.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MoneyError::NotDecimal);
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (s.contains('.') && frac.is_empty()) {
        return Err(MoneyError::NotDecimal);
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() as u32 > digits {
        return Err(MoneyError::TooPrecise(digits));
    }
    let scale = 10i64.pow(digits);
    let int: i64 = int.parse().map_err(|_| MoneyError::TooLarge)?;
    let mut frac_value: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| MoneyError::NotDecimal)?
    };
    frac_value *= 10i64.pow(digits - frac.len() as u32);
    let value = int
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_value))
        .ok_or(MoneyError::TooLarge)?;
    Ok(if neg { -value } else { value })
}

/// `amount × numerator ÷ denominator` rounded half to even to a whole minor unit: the one
/// rounding rule for commissions (a percentage of a purchase, the share of a commission a
/// partial refund takes back). Exact over the whole `i64` range (computed in 128 bits);
/// saturates at the `i64` bounds. `denominator` must not be zero (zero gives zero).
///
/// Half to even ("banker's rounding", IEEE 754's default) rounds a tie to the even neighbour,
/// so that ties do not drift one way over many commissions: 10 % of 1.25 is 0.12, of 1.35 is
/// 0.14 (both exactly half a cent).
pub fn share_half_even(amount: i64, numerator: i64, denominator: i64) -> i64 {
    if denominator == 0 {
        return 0;
    }
    let n = i128::from(amount) * i128::from(numerator);
    let d = i128::from(denominator);
    let (n, d) = if d < 0 { (-n, -d) } else { (n, d) };
    let q = n.div_euclid(d);
    let r = n.rem_euclid(d);
    let rounded = match (2 * r).cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    };
    rounded.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Basis points in a whole: 10,000 (1 % is 100 basis points).
pub const BASIS_POINTS: i64 = 10_000;

/// Formats minor units of `currency` as a decimal in major units: `1999` USD → `"19.99"`,
/// `-5` USD → `"-0.05"`, `500` JPY → `"500"`.
pub fn format_minor(minor: i64, currency: &str) -> String {
    let digits = minor_digits(currency);
    if digits == 0 {
        return minor.to_string();
    }
    let scale = 10u64.pow(digits);
    let abs = minor.unsigned_abs();
    let sign = if minor < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = digits as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_even_shares() {
        // 10 % (1,000 basis points) of amounts in cents.
        let ten = |v| share_half_even(v, 1_000, BASIS_POINTS);
        assert_eq!(ten(10_000), 1_000);
        assert_eq!(ten(125), 12, "12.5 cents: the tie goes to the even 12");
        assert_eq!(ten(135), 14, "13.5 cents: the tie goes to the even 14");
        assert_eq!(ten(126), 13);
        assert_eq!(ten(124), 12);
        assert_eq!(ten(1), 0);
        assert_eq!(ten(5), 0, "0.5 goes to 0");
        assert_eq!(ten(15), 2, "1.5 goes to 2");
        assert_eq!(ten(-125), -12, "negative ties to even as well");
        // 12.5 % of 0.99: 12.375 cents → 12.
        assert_eq!(share_half_even(99, 1_250, BASIS_POINTS), 12);
        // A third of a 1.00 commission: 33.33… → 33; two thirds → 67.
        assert_eq!(share_half_even(100, 1, 3), 33);
        assert_eq!(share_half_even(100, 2, 3), 67);
        assert_eq!(share_half_even(i64::MAX, 2, 1), i64::MAX);
        assert_eq!(share_half_even(7, 1, 0), 0);
        // JPY has no minor unit: 10 % of 125 yen is 12.5 yen → 12.
        assert_eq!(ten(125), 12);
    }

    #[test]
    fn formats_minor_units() {
        assert_eq!(format_minor(1999, "USD"), "19.99");
        assert_eq!(format_minor(-5, "EUR"), "-0.05");
        assert_eq!(format_minor(500, "JPY"), "500");
        assert_eq!(format_minor(1500, "KWD"), "1.500");
    }

    #[test]
    fn converts() {
        assert_eq!(to_minor_units("19.99", "USD"), Ok(1999));
        assert_eq!(to_minor_units("19.9", "USD"), Ok(1990));
        assert_eq!(to_minor_units("20", "USD"), Ok(2000));
        assert_eq!(to_minor_units("1.50", "USD"), Ok(150));
        assert_eq!(to_minor_units("500", "JPY"), Ok(500));
        assert_eq!(to_minor_units("-3.5", "EUR"), Ok(-350));
        // ISO 4217 three-decimal currencies, each in its own minor unit.
        for code in ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"] {
            assert_eq!(minor_digits(code), 3, "{code}");
            assert_eq!(to_minor_units("1.5", code), Ok(1500), "{code}");
            assert_eq!(to_minor_units("1.234", code), Ok(1234), "{code}");
            assert_eq!(to_minor_units("0.001", code), Ok(1), "{code}");
            assert_eq!(
                to_minor_units("1.2345", code),
                Err(MoneyError::TooPrecise(3))
            );
        }
        for code in ["JPY", "KRW", "CLP", "ISK", "VND"] {
            assert_eq!(minor_digits(code), 0, "{code}");
            assert_eq!(to_minor_units("500", code), Ok(500), "{code}");
            assert_eq!(to_minor_units("500.00", code), Ok(500), "{code}");
            assert_eq!(to_minor_units("1.5", code), Err(MoneyError::TooPrecise(0)));
        }
    }

    #[test]
    fn refuses() {
        assert_eq!(
            to_minor_units("1.999", "USD"),
            Err(MoneyError::TooPrecise(2))
        );
        assert_eq!(to_minor_units("1.5", "JPY"), Err(MoneyError::TooPrecise(0)));
        assert_eq!(to_minor_units("abc", "USD"), Err(MoneyError::NotDecimal));
        assert_eq!(to_minor_units("1e3", "USD"), Err(MoneyError::NotDecimal));
        assert_eq!(to_minor_units("1.", "USD"), Err(MoneyError::NotDecimal));
        assert_eq!(parse_currency("usd"), Ok("USD".into()));
        assert_eq!(parse_currency("XYZ"), Err(MoneyError::UnknownCurrency));
    }
}
