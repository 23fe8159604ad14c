//! What vendors that compute amounts in binary floating point send, read back exactly.
//!
//! Floating point appears here only to *produce* such vendor input (and the hardware's answer
//! to compare with); the parser under test never sees anything but text.

use proptest::prelude::*;
use provider::{Currency, Money, MoneyError};

/// The double nearest to `minor` kobo, as a vendor holds the amount (correctly rounded).
fn naira(minor: i64) -> f64 {
    format!("{minor}e-2").parse().unwrap_or(f64::NAN)
}

/// The spacing of doubles at `v`, in kobo, rounded up (at least 1 for the bound below).
fn ulp_in_kobo_rounded_up(v: f64) -> i64 {
    let exponent = ((v.abs().to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let shift = exponent - 52;
    if shift >= 0 {
        100i64 << shift
    } else {
        // 100 / 2^-shift, rounded up.
        let d = 1i64 << (-shift).min(62);
        (100 + d - 1) / d
    }
}

/// Kobo values spread over every magnitude of i64, not just the huge ones.
fn kobo_any_magnitude() -> impl Strategy<Value = i64> {
    (0u32..=63).prop_flat_map(|bits| {
        let top = if bits == 63 {
            i64::MAX
        } else {
            (1i64 << bits).max(1)
        };
        0..=top
    })
}

/// `k` split into 2 to 4 non-negative parts that sum to it.
fn kobo_split_into_parts() -> impl Strategy<Value = (i64, Vec<i64>)> {
    (
        kobo_any_magnitude(),
        prop::collection::vec(0.0f64..1.0, 1..=3),
    )
        .prop_map(|(k, cuts)| {
            let mut points: Vec<i64> = cuts.iter().map(|c| (k as f64 * c) as i64).collect();
            points.push(0);
            points.push(k);
            points.sort_unstable();
            let parts = points.windows(2).map(|w| w[1] - w[0]).collect();
            (k, parts)
        })
}

/// What the parser must answer for a vendor double `v` that should be `k` kobo: exactly `k`
/// below 2^43 naira (where a few additions stay under half a kobo), and otherwise the kobo
/// nearest to what the double can say, never an error.
fn check(k: i64, v: f64, text: &str) -> Result<(), TestCaseError> {
    let got = Money::from_json_number(text, Currency::NGN).map(|m| m.minor());
    let as_string = Money::from_decimal_str(text, Currency::NGN).map(|m| m.minor());
    if !text.contains(['e', 'E']) {
        prop_assert_eq!(
            got.clone(),
            as_string,
            "string and number disagree on {}",
            text
        );
    }
    if v.abs() < (1u64 << 43) as f64 {
        prop_assert_eq!(got, Ok(k), "{} should be {} kobo", text, k);
    } else {
        let Ok(minor) = got else {
            return Err(TestCaseError::fail(format!("{text}: {got:?}")));
        };
        // Four additions of error, half an ULP of printing, half a kobo of rounding.
        let bound = 5 * ulp_in_kobo_rounded_up(v) + 1;
        prop_assert!(
            (i128::from(minor) - i128::from(k)).abs() <= i128::from(bound),
            "{} read as {} kobo, {} expected within {}",
            text,
            minor,
            k,
            bound
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn shortest_float_text_of_kobo_values_reads_back_exactly(minor in -(1i64 << 40)..(1i64 << 40)) {
        let text = format!("{}", minor as f64 / 100.0);
        prop_assert_eq!(Money::from_json_number(&text, Currency::NGN).map(|m| m.minor()), Ok(minor));
    }

    #[test]
    fn sums_of_float_kobo_values_read_back_as_the_exact_sum(a in 0i64..10_000_000, b in 0i64..10_000_000) {
        // 0.1 + 0.2 style noise: the vendor adds two naira values in f64 and sends the result.
        let text = format!("{}", a as f64 / 100.0 + b as f64 / 100.0);
        prop_assert_eq!(Money::from_json_number(&text, Currency::NGN).map(|m| m.minor()), Ok(a + b));
    }

    #[test]
    fn a_few_float_additions_over_the_whole_i64_range_read_back_as_the_right_kobo(
        (k, parts) in kobo_split_into_parts(),
        negative in any::<bool>(),
    ) {
        let sum: f64 = parts.iter().map(|&p| naira(p)).fold(0.0, |acc, p| acc + p);
        let (k, v) = if negative { (-k, -sum) } else { (k, sum) };
        // Rust's and JavaScript's shortest round-trip forms: plain and with an exponent.
        check(k, v, &format!("{v}"))?;
        check(k, v, &format!("{v:e}"))?;
        check(k, v, &format!("{v:e}").replace('e', "e+").replace("e+-", "e-"))?;
    }

    #[test]
    fn every_double_nearest_a_kobo_value_reads_back(k in kobo_any_magnitude()) {
        let v = naira(k);
        check(k, v, &format!("{v}"))?;
    }

    #[test]
    fn real_fractions_of_a_kobo_are_refused_where_doubles_can_tell(
        k in 0i64..(100i64 << 40),
        hundredths in 25i64..=75,
    ) {
        // k kobo and a quarter to three quarters of one more: no float noise is that large
        // below 2^40 naira (16 ULPs there are at most 0.2 kobo).
        let text = format!("{}.{:02}{:02}", k / 100, k % 100, hundredths);
        prop_assert!(
            matches!(
                Money::from_json_number(&text, Currency::NGN),
                Err(MoneyError::TooPrecise { .. })
            ),
            "{} was accepted",
            text
        );
    }
}

#[test]
fn the_issue_examples() {
    let js_sum = 250_000_000.7f64 + 0.1;
    assert_eq!(format!("{js_sum}"), "250000000.79999998");
    assert_eq!(
        Money::from_json_number("250000000.79999998", Currency::NGN).map(|m| m.minor()),
        Ok(25_000_000_080)
    );
    assert_eq!(
        Money::from_decimal_str("0.30000000000000004", Currency::NGN).map(|m| m.minor()),
        Ok(30)
    );
}
