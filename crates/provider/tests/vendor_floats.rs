//! What vendors that compute amounts in binary floating point send, read back exactly.
//!
//! Floating point appears here only to *produce* such vendor input; the parser under test never
//! sees anything but text.

use proptest::prelude::*;
use provider::{Currency, Money};

proptest! {
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
}
