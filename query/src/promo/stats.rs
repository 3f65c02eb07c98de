//! The statistics of promo CTRs (`docs/promos.md`): Wilson score intervals, the two-proportion
//! z-test against the leader with the sample a decision still needs, the probability of being
//! the best variation, and Thompson sampling with an exploration floor.
//!
//! A CTR is `k` unique clicks out of `n` recipients, a binomial proportion. Sources:
//! - Wilson interval: E. B. Wilson, "Probable inference, the law of succession, and
//!   statistical inference", JASA 22 (1927); at 95 % (z = 1.959964).
//! - Two-proportion z-test with the pooled proportion, two-sided, α = 0.05; the sample per
//!   variation for 80 % power is Fleiss' formula (J. L. Fleiss, "Statistical Methods for Rates
//!   and Proportions", 1981): `n = (z_{α/2}·√(2·p̄·q̄) + z_β·√(p₁q₁ + p₂q₂))² / (p₁ − p₂)²`.
//! - Probability of being best: each CTR's posterior under a uniform prior is
//!   Beta(1 + k, 1 + n − k); `P(i best) = ∫ f_i(x) · Π_{j≠i} F_j(x) dx`, integrated with
//!   Simpson's rule over the posteriors' common support.
//! - Thompson sampling: W. R. Thompson, Biometrika 25 (1933).

use rand::Rng;
use rand_distr::{Beta as BetaDraw, Distribution};
use statrs::distribution::{Beta, Continuous, ContinuousCDF, Normal};

/// Confidence of every interval and test: 95 %.
pub const CONFIDENCE: f64 = 0.95;
/// Power the sample estimate aims for: 80 %.
pub const POWER: f64 = 0.80;
/// Share of adaptive selections drawn uniformly among approved variations: each of `k`
/// variations gets at least `EXPLORATION / k` of the traffic, whatever its record.
pub const EXPLORATION: f64 = 0.10;

fn standard() -> Normal {
    Normal::standard()
}

/// The two-sided critical value of `confidence` (1.959964 for 95 %).
pub fn z_critical(confidence: f64) -> f64 {
    standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

/// The Wilson score interval of `k` successes out of `n` at 95 %: `(low, high)`, within
/// [0, 1]; `(0, 1)` when `n` is 0.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = z_critical(CONFIDENCE);
    let (k, n) = (k.min(n) as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let denom = 1.0 + z2 / n;
    (
        ((centre - spread) / denom).max(0.0),
        ((centre + spread) / denom).min(1.0),
    )
}

/// A comparison of a variation with the leader.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// The z statistic (pooled), negative when the variation trails.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether `p_value` < 0.05.
    pub significant: bool,
    /// Recipients each of the two needs for 80 % power at the observed rates; `None` when
    /// the rates are equal (no sample tells them apart).
    pub recipients_needed: Option<u64>,
}

/// The two-proportion z-test of `k1/n1` against `k2/n2`, with Fleiss' sample size.
pub fn compare(k1: u64, n1: u64, k2: u64, n2: u64) -> Comparison {
    let (p1, p2) = (rate(k1, n1), rate(k2, n2));
    let pooled = if n1 + n2 == 0 {
        0.0
    } else {
        (k1.min(n1) + k2.min(n2)) as f64 / (n1 + n2) as f64
    };
    let se = (pooled * (1.0 - pooled) * (inv(n1) + inv(n2))).sqrt();
    let z = if se > 0.0 && se.is_finite() {
        (p1 - p2) / se
    } else {
        0.0
    };
    let p_value = 2.0 * (1.0 - standard().cdf(z.abs()));
    let (za, zb) = (z_critical(CONFIDENCE), standard().inverse_cdf(POWER));
    let mean = (p1 + p2) / 2.0;
    let diff = (p1 - p2).abs();
    let recipients_needed = (diff > 0.0).then(|| {
        let top = za * (2.0 * mean * (1.0 - mean)).sqrt()
            + zb * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
        (top * top / (diff * diff)).ceil() as u64
    });
    Comparison {
        z,
        p_value,
        significant: p_value < 1.0 - CONFIDENCE,
        recipients_needed,
    }
}

fn rate(k: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        k.min(n) as f64 / n as f64
    }
}

fn inv(n: u64) -> f64 {
    if n == 0 { 0.0 } else { 1.0 / n as f64 }
}

/// Intervals of Simpson's rule over the posteriors' support.
const SIMPSON_INTERVALS: usize = 4000;

/// For each `(k, n)`, the probability that its CTR is the highest, under independent
/// Beta(1 + k, 1 + n − k) posteriors; the probabilities sum to 1 (up to integration error).
pub fn probability_best(arms: &[(u64, u64)]) -> Vec<f64> {
    match arms.len() {
        0 => return Vec::new(),
        1 => return vec![1.0],
        _ => {}
    }
    let posteriors: Vec<Beta> = arms
        .iter()
        .map(|&(k, n)| {
            let k = k.min(n) as f64;
            Beta::new(1.0 + k, 1.0 + n as f64 - k).expect("positive shape parameters")
        })
        .collect();
    // The support that holds all but a negligible part of every posterior.
    let (mut lo, mut hi) = (1.0f64, 0.0f64);
    for b in &posteriors {
        let (a, c) = (b.shape_a(), b.shape_b());
        let mean = a / (a + c);
        let sd = (a * c / ((a + c).powi(2) * (a + c + 1.0))).sqrt();
        lo = lo.min(mean - 12.0 * sd);
        hi = hi.max(mean + 12.0 * sd);
    }
    let (lo, hi) = (lo.max(0.0), hi.min(1.0));
    let h = (hi - lo) / SIMPSON_INTERVALS as f64;
    let xs: Vec<f64> = (0..=SIMPSON_INTERVALS).map(|i| lo + h * i as f64).collect();
    let pdf: Vec<Vec<f64>> = posteriors
        .iter()
        .map(|b| xs.iter().map(|&x| finite(b.pdf(x))).collect())
        .collect();
    let cdf: Vec<Vec<f64>> = posteriors
        .iter()
        .map(|b| xs.iter().map(|&x| b.cdf(x)).collect())
        .collect();
    let mut out: Vec<f64> = (0..arms.len())
        .map(|i| {
            let mut sum = 0.0;
            for (x, _) in xs.iter().enumerate() {
                let w = if x == 0 || x == SIMPSON_INTERVALS {
                    1.0
                } else if x % 2 == 1 {
                    4.0
                } else {
                    2.0
                };
                let others: f64 = (0..arms.len())
                    .filter(|&j| j != i)
                    .map(|j| cdf[j][x])
                    .product();
                sum += w * pdf[i][x] * others;
            }
            (sum * h / 3.0).clamp(0.0, 1.0)
        })
        .collect();
    let total: f64 = out.iter().sum();
    if total > 0.0 {
        for p in &mut out {
            *p /= total;
        }
    }
    out
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// One variation as adaptive selection sees it: unique clicks out of recipients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arm {
    /// Unique human clicks.
    pub clicks: u64,
    /// Recipients.
    pub recipients: u64,
}

/// Picks one of `arms` (at least one) by Thompson sampling with the exploration floor: with
/// probability [`EXPLORATION`] uniformly, otherwise the arm with the highest draw from its
/// Beta(1 + clicks, 1 + recipients − clicks) posterior.
pub fn thompson<R: Rng + ?Sized>(arms: &[Arm], rng: &mut R) -> usize {
    assert!(!arms.is_empty(), "no arm to choose");
    if rng.random::<f64>() < EXPLORATION {
        return rng.random_range(0..arms.len());
    }
    let mut best = (0, f64::MIN);
    for (i, a) in arms.iter().enumerate() {
        let k = a.clicks.min(a.recipients) as f64;
        let draw = BetaDraw::new(1.0 + k, 1.0 + a.recipients as f64 - k)
            .map(|b| b.sample(rng))
            .unwrap_or(0.0);
        if draw > best.1 {
            best = (i, draw);
        }
    }
    best.0
}

/// Picks an index by relative `weights` (all zero: uniformly).
pub fn weighted<R: Rng + ?Sized>(weights: &[u32], rng: &mut R) -> usize {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return rng.random_range(0..weights.len());
    }
    let mut at = rng.random_range(0..total);
    for (i, &w) in weights.iter().enumerate() {
        if at < u64::from(w) {
            return i;
        }
        at -= u64::from(w);
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests;
