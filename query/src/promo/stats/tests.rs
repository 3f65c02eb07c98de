//! Reference values computed independently (mpmath at 30 digits: the closed forms, and
//! `quad` over the Beta densities and regularized incomplete beta functions for the
//! probability of being best).

// The reference values are written as computed.
#![allow(clippy::excessive_precision)]

use super::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::Binomial;

fn close(a: f64, b: f64, tol: f64) {
    assert!((a - b).abs() <= tol, "{a} vs {b}");
}

#[test]
fn wilson_intervals_match_the_reference() {
    let cases = [
        (
            (50, 1000),
            (0.038_130_262_392_748_81, 0.065_313_820_244_250_80),
        ),
        (
            (80, 1000),
            (0.064_748_038_098_363_88, 0.098_466_439_029_502_42),
        ),
        ((0, 10), (0.0, 0.277_532_799_862_889_25)),
        ((10, 10), (0.722_467_200_137_110_75, 1.0)),
        (
            (3, 120),
            (0.008_538_174_769_902_227, 0.070_930_033_327_866_09),
        ),
    ];
    for ((k, n), (lo, hi)) in cases {
        let (l, h) = wilson(k, n);
        close(l, lo, 1e-12);
        close(h, hi, 1e-12);
    }
    assert_eq!(wilson(0, 0), (0.0, 1.0));
    close(z_critical(CONFIDENCE), 1.959_963_984_540_054, 1e-12);
}

#[test]
fn fifty_against_eighty_per_thousand_is_significant_and_ten_more_is_not() {
    let c = compare(50, 1000, 80, 1000);
    close(c.z, -2.721_095_431_170_472, 1e-9);
    close(c.p_value, 0.006_506_597_483_637_832, 1e-9);
    assert!(c.significant);
    // Fleiss: 1058.855… recipients each for 80 % power.
    assert_eq!(c.recipients_needed, Some(1059));

    let c = compare(50, 1000, 60, 1000);
    close(c.z, -0.980_816_477_227_499_5, 1e-9);
    close(c.p_value, 0.326_683_251_241_205_3, 1e-9);
    assert!(!c.significant);
    assert_eq!(c.recipients_needed, Some(8158));

    let same = compare(50, 1000, 50, 1000);
    assert_eq!(same.z, 0.0);
    assert!(!same.significant);
    assert_eq!(same.recipients_needed, None);
    // Nothing sent yet: no test, no panic.
    assert!(!compare(0, 0, 0, 0).significant);
}

#[test]
fn probability_of_being_best_matches_the_reference() {
    let p = probability_best(&[(50, 1000), (80, 1000)]);
    close(p[0], 0.003_253_573_452_376_798, 1e-6);
    close(p[1], 0.996_746_426_547_623_2, 1e-6);
    let p = probability_best(&[(50, 1000), (80, 1000), (70, 1000)]);
    close(p[0], 0.001_218_537_832_807_627, 1e-6);
    close(p[1], 0.800_465_605_254_562_4, 1e-6);
    close(p[2], 0.198_315_856_912_629_9, 1e-6);
    assert_eq!(probability_best(&[(3, 10)]), vec![1.0]);
    let even = probability_best(&[(0, 0), (0, 0)]);
    close(even[0], 0.5, 1e-6);
}

#[test]
fn weighted_choice_follows_the_weights() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut counts = [0u32; 3];
    for _ in 0..30_000 {
        counts[weighted(&[1, 2, 7], &mut rng)] += 1;
    }
    close(f64::from(counts[0]) / 30_000.0, 0.1, 0.01);
    close(f64::from(counts[1]) / 30_000.0, 0.2, 0.01);
    close(f64::from(counts[2]) / 30_000.0, 0.7, 0.01);
}

/// Adaptive selection against fixed true click rates: each selection is a send to 200
/// recipients whose clicks are drawn from the variation's true rate and fed back.
#[test]
fn adaptive_selection_sends_most_traffic_to_the_best_and_starves_none() {
    let truth = [0.03, 0.05, 0.08];
    let mut rng = StdRng::seed_from_u64(42);
    let mut arms = [Arm {
        clicks: 0,
        recipients: 0,
    }; 3];
    let mut chosen = [0u64; 3];
    let n = 1500u64;
    for _ in 0..n {
        let i = thompson(&arms, &mut rng);
        chosen[i] += 1;
        let clicks = Binomial::new(200, truth[i]).unwrap().sample(&mut rng);
        arms[i].clicks += clicks;
        arms[i].recipients += 200;
    }
    let share = |i: usize| chosen[i] as f64 / n as f64;
    assert!(share(2) > 0.75, "best got {:.3} of the traffic", share(2));
    // The floor: EXPLORATION / k in expectation; the least any arm may show is three
    // standard deviations below it.
    let floor = EXPLORATION / 3.0;
    let slack = 3.0 * (floor * (1.0 - floor) / n as f64).sqrt();
    for i in 0..3 {
        assert!(
            share(i) >= floor - slack,
            "variation {i} got {:.4}, under the floor {floor:.4}",
            share(i)
        );
    }
    // Without feedback every arm is equally likely.
    let mut even = [0u32; 3];
    let fresh = [Arm {
        clicks: 0,
        recipients: 0,
    }; 3];
    for _ in 0..9000 {
        even[thompson(&fresh, &mut rng)] += 1;
    }
    for c in even {
        close(f64::from(c) / 9000.0, 1.0 / 3.0, 0.03);
    }
}
