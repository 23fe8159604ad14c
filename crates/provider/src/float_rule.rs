//! The one float-noise rule of [`crate::Money`], decided exactly on decimal digits.
//!
//! A vendor that computes amounts in binary floating point sends the shortest text of a double
//! (`250000000.79999998` for `250000000.7 + 0.1`). Such a text is `k` minor units when it lies
//! within [`FLOAT_NOISE_ULPS`] ULPs of `f(k)`, the double nearest to `k` minor units, where `k` is
//! the whole number of minor units nearest to the text (ties to even). The ULP is the spacing of
//! doubles at `f(k)` (`2^(e-52)` for `2^e <= f(k) < 2^(e+1)`), and never less than the spacing at
//! one major unit (`2^-52`), so that cancellation noise around zero (`0.1 + 0.2 - 0.3` prints as
//! `5.551115123125783e-17`) still reads as zero.
//!
//! Nothing here is floating point: `f(k)` is computed as `m * 2^q` with integers, and the
//! comparison `|text - f(k)| <= ULPS * ulp` is done on big integers, after scaling every term to
//! a common integer grid. Digits beyond the [`FRACTION_DIGITS`]th decimal of a minor unit are
//! summarised as "some more non-zero digits", which is exact: every bound the text is compared
//! with is a dyadic rational whose decimal expansion is shorter than that.

use std::cmp::Ordering;

/// How many ULPs (of the double nearest to the amount) of floating-point noise are accepted.
///
/// Sixteen covers a handful of float additions: summing `n` positive values costs at most
/// `n - 1/2` ULPs of the result, printing it half an ULP more.
pub const FLOAT_NOISE_ULPS: u64 = 16;

/// Decimals of a minor unit read exactly; later digits only say whether any is non-zero.
pub(crate) const FRACTION_DIGITS: usize = 80;

/// The magnitude of an amount in minor units: a whole part and the digits of its fraction.
pub(crate) struct Magnitude {
    /// The whole minor units (may exceed the `i64` range: the caller clamps).
    pub whole: u128,
    /// The fraction's decimal digits (ASCII), at most `FRACTION_DIGITS + 1` long: when digits
    /// beyond `FRACTION_DIGITS` were non-zero, a final `1` stands for them.
    pub fraction: Vec<u8>,
}

/// What the rule decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The amount is this many minor units (a magnitude; the sign is the caller's).
    Minor(u128),
    /// Not within the noise of any whole minor unit: a real fraction of one.
    TooPrecise,
    /// Beyond `limit`, and farther from it than the noise allows.
    Overflow,
}

/// Applies the rule to `magnitude` in a currency of `decimals` decimals; `limit` is the largest
/// magnitude the result may have (`i64::MAX`, or `2^63` for a negative amount).
pub(crate) fn decide(magnitude: &Magnitude, decimals: u8, limit: u128) -> Decision {
    let exact = magnitude.fraction.iter().all(|&d| d == b'0');
    if exact && magnitude.whole <= limit {
        return Decision::Minor(magnitude.whole);
    }
    let nearest = magnitude
        .whole
        .saturating_add(u128::from(rounds_up(&magnitude.fraction, magnitude.whole)));
    let k = nearest.min(limit);
    if within_noise(magnitude, k, decimals) {
        Decision::Minor(k)
    } else if magnitude.whole >= limit {
        Decision::Overflow
    } else {
        Decision::TooPrecise
    }
}

/// Whether the fraction rounds the whole part up: above one half, or exactly one half and the
/// whole part odd (ties to even).
fn rounds_up(fraction: &[u8], whole: u128) -> bool {
    match fraction.first() {
        Some(b'5') => {
            let rest_non_zero = fraction[1..].iter().any(|&d| d != b'0');
            rest_non_zero || whole % 2 == 1
        }
        Some(&d) => d > b'5',
        None => false,
    }
}

/// `f(k) = m * 2^q`, the double nearest to `k / 10^decimals` (round half to even), for `k > 0`.
/// `m` is a 53-bit significand (`2^52 <= m < 2^53`).
pub(crate) fn nearest_double(k: u128, decimals: u8) -> (u128, i32) {
    let p = 10u128.pow(u32::from(decimals));
    // e = floor(log2(k / p)), first estimated from the bit lengths, then corrected.
    let bits = |v: u128| 127 - v.leading_zeros() as i32;
    let mut e = bits(k) - bits(p);
    let below = |e: i32| {
        if e >= 0 { k < (p << e) } else { (k << -e) < p }
    };
    if below(e) {
        e -= 1;
    }
    // m = k * 2^(52 - e) / p, rounded half to even. k ~ p * 2^e, so both fit in u128.
    let (num, den) = if e <= 52 {
        (k << (52 - e), p)
    } else {
        (k, p << (e - 52))
    };
    let mut m = num / den;
    let rem = num % den;
    if rem * 2 > den || (rem * 2 == den && m % 2 == 1) {
        m += 1;
    }
    if m == 1u128 << 53 {
        m = 1u128 << 52;
        e += 1;
    }
    (m, e - 52)
}

/// Whether `magnitude` lies within [`FLOAT_NOISE_ULPS`] ULPs of `f(k)`.
fn within_noise(magnitude: &Magnitude, k: u128, decimals: u8) -> bool {
    // f(k) = m * 2^q major units; the ULP is 2^qu with qu = max(q, -52).
    let (m, q) = if k == 0 {
        (0, -52)
    } else {
        nearest_double(k, decimals)
    };
    let qu = q.max(-52);
    let f = u32::try_from(magnitude.fraction.len()).unwrap_or(u32::MAX);
    // Scale everything (in minor units) by 10^f * 2^s so that every term is an integer.
    let s = u32::try_from((-q).max(0)).unwrap_or(0);
    let scale_up = |v: &mut Big, pow2: i32| {
        // pow2 + s is never negative: pow2 >= q.
        v.shl(u32::try_from(pow2 + s as i32).unwrap_or(0));
    };

    // A = (whole * 10^f + fraction) * 2^s
    let mut a = Big::from_u128(magnitude.whole);
    a.mul_pow10(f);
    let mut frac = Big::default();
    for &d in &magnitude.fraction {
        frac.mul_small(10);
        frac.add_small(u64::from(d - b'0'));
    }
    a.add(&frac);
    a.shl(s);

    // B = m * 10^(decimals + f) * 2^(q + s)
    let mut b = Big::from_u128(m);
    b.mul_pow10(u32::from(decimals) + f);
    scale_up(&mut b, q);

    // C = ULPS * 10^(decimals + f) * 2^(qu + s)
    let mut c = Big::from_u128(u128::from(FLOAT_NOISE_ULPS));
    c.mul_pow10(u32::from(decimals) + f);
    scale_up(&mut c, qu);

    a.abs_diff(&b).cmp_big(&c) != Ordering::Greater
}

/// A little unsigned big integer: just what [`within_noise`] needs.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
struct Big {
    /// Little-endian 64-bit limbs, without trailing zero limbs.
    limbs: Vec<u64>,
}

impl Big {
    fn from_u128(v: u128) -> Big {
        let mut big = Big {
            limbs: vec![v as u64, (v >> 64) as u64],
        };
        big.trim();
        big
    }

    fn trim(&mut self) {
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
    }

    fn mul_small(&mut self, factor: u64) {
        let mut carry: u128 = 0;
        for limb in &mut self.limbs {
            let v = u128::from(*limb) * u128::from(factor) + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry > 0 {
            self.limbs.push(carry as u64);
        }
        self.trim();
    }

    fn add_small(&mut self, addend: u64) {
        self.add(&Big::from_u128(u128::from(addend)));
    }

    fn mul_pow10(&mut self, mut n: u32) {
        while n >= 19 {
            self.mul_small(10u64.pow(19));
            n -= 19;
        }
        self.mul_small(10u64.pow(n));
    }

    fn shl(&mut self, bits: u32) {
        if self.limbs.is_empty() {
            return;
        }
        let (words, bits) = ((bits / 64) as usize, bits % 64);
        if bits > 0 {
            let mut carry = 0u64;
            for limb in &mut self.limbs {
                let next = *limb >> (64 - bits);
                *limb = (*limb << bits) | carry;
                carry = next;
            }
            if carry > 0 {
                self.limbs.push(carry);
            }
        }
        self.limbs.splice(0..0, std::iter::repeat_n(0, words));
    }

    fn add(&mut self, other: &Big) {
        if self.limbs.len() < other.limbs.len() {
            self.limbs.resize(other.limbs.len(), 0);
        }
        let mut carry = false;
        for (i, limb) in self.limbs.iter_mut().enumerate() {
            let o = other.limbs.get(i).copied().unwrap_or(0);
            let (v, c1) = limb.overflowing_add(o);
            let (v, c2) = v.overflowing_add(u64::from(carry));
            *limb = v;
            carry = c1 || c2;
        }
        if carry {
            self.limbs.push(1);
        }
    }

    fn cmp_big(&self, other: &Big) -> Ordering {
        self.limbs
            .len()
            .cmp(&other.limbs.len())
            .then_with(|| self.limbs.iter().rev().cmp(other.limbs.iter().rev()))
    }

    /// `|self - other|`.
    fn abs_diff(&self, other: &Big) -> Big {
        let (big, small) = if self.cmp_big(other) == Ordering::Less {
            (other, self)
        } else {
            (self, other)
        };
        let mut out = big.clone();
        let mut borrow = false;
        for (i, limb) in out.limbs.iter_mut().enumerate() {
            let s = small.limbs.get(i).copied().unwrap_or(0);
            let (v, b1) = limb.overflowing_sub(s);
            let (v, b2) = v.overflowing_sub(u64::from(borrow));
            *limb = v;
            borrow = b1 || b2;
        }
        out.trim();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_doubles_match_the_hardware() {
        // f64 appears only to check the integer computation against the machine's rounding.
        for (k, decimals) in [
            (1u128, 2u8),
            (30, 2),
            (25_000_000_080, 2),
            (9_223_372_036_854_775_807, 2),
            (1 << 63, 0),
            (12_345, 4),
            (1, 4),
            (999_999_999_999_999_999, 3),
        ] {
            let (m, q) = nearest_double(k, decimals);
            let text = format!("{k}e-{decimals}");
            let expected: f64 = text.parse().unwrap_or(f64::NAN);
            let bits = expected.to_bits();
            let exp = ((bits >> 52) & 0x7ff) as i32 - 1075;
            let mant = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
            assert_eq!((m, q), (mant, exp), "{text}");
        }
    }

    #[test]
    fn big_integers_subtract_and_compare() {
        let mut a = Big::from_u128(u128::MAX);
        a.shl(70);
        let mut b = Big::from_u128(1);
        b.shl(200);
        assert_eq!(a.cmp_big(&b), Ordering::Less);
        let d = b.abs_diff(&a);
        let mut back = d.clone();
        back.add(&a);
        assert_eq!(back, b);
        let mut ten = Big::from_u128(1);
        ten.mul_pow10(40);
        let mut manual = Big::from_u128(10u128.pow(20));
        manual.mul_small(10u64.pow(19));
        manual.mul_small(10);
        assert_eq!(ten, manual);
    }
}
