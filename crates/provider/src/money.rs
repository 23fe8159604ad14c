//! Exact money: integer minor units plus an ISO 4217 currency.
//!
//! Every vendor value enters the gateway through one of the two parsers here, at the edge of an
//! adapter, with no binary floating point anywhere on the way:
//!
//! * [`Money::from_decimal_str`] for amounts vendors send as strings (`"200.00"`, `"1,200.50"`,
//!   `" 7.5 "`, `"₦1,200.50"`, `"NGN 5,000"`; a sign or code of another currency is
//!   [`MoneyError::CurrencyMismatch`]).
//! * [`Money::from_json_number`] for amounts vendors send as JSON numbers (`52.5`, `0.01`, `1e2`,
//!   `-0.0`). It reads the number's *text* exactly, so no binary rounding happens here.
//!
//! Both apply **one float-noise rule**, because vendors compute amounts in binary floating point
//! and send what a double prints, as a number or as a string (`250000000.79999998` is what
//! JavaScript prints for `250000000.7 + 0.1`): a value is `k` minor units when it lies within
//! [`FLOAT_NOISE_ULPS`](crate::FLOAT_NOISE_ULPS) (16) ULPs of the double nearest to `k` minor
//! units, `k` being the whole number of minor units nearest to the value (ties to even); the ULP
//! is the spacing of doubles at that double, and never less than at one major unit (`2^-52`).
//! Otherwise the value is a real fraction of a minor unit and is refused as
//! [`MoneyError::TooPrecise`] (`0.005` NGN). The rule is decided on the digits and the IEEE-754
//! spacing with integers only (see `float_rule`). What it means in practice, for NGN:
//!
//! * up to about 2^41 naira (2.2 trillion), where 16 ULPs are less than half a kobo, noise is
//!   rounded away and a real fraction of a kobo is refused; every text a double prints after a
//!   few float additions of kobo values reads back as the exact kobo;
//! * above that, doubles are too coarse to carry kobo at all, and every value rounds to the
//!   nearest kobo;
//! * a whole number of minor units is always read exactly; a value beyond the `i64` range is
//!   [`MoneyError::Overflow`], unless it is within the noise of `i64::MAX`/`i64::MIN` minor
//!   units (the double nearest to `i64::MAX` kobo is `92233720368547760` naira).
//!
//! Both parsers work on the decimal digits themselves, with no limit on their count (digits
//! beyond the 80th decimal of a minor unit only break ties), so they are exact for any input.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::float_rule::{self, FRACTION_DIGITS};

/// An ISO 4217 currency: its three-letter code and how many decimals its minor unit has.
///
/// The currencies the gateway's providers use are predefined ([`Currency::NGN`] and a few
/// others); [`Currency::new`] builds any other one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    decimals: u8,
}

impl Currency {
    /// Nigerian naira (minor unit: kobo, 2 decimals).
    pub const NGN: Currency = Currency::known(*b"NGN", 2);
    /// US dollar.
    pub const USD: Currency = Currency::known(*b"USD", 2);
    /// Euro.
    pub const EUR: Currency = Currency::known(*b"EUR", 2);
    /// Pound sterling.
    pub const GBP: Currency = Currency::known(*b"GBP", 2);
    /// Ghanaian cedi.
    pub const GHS: Currency = Currency::known(*b"GHS", 2);
    /// Kenyan shilling.
    pub const KES: Currency = Currency::known(*b"KES", 2);
    /// South African rand.
    pub const ZAR: Currency = Currency::known(*b"ZAR", 2);
    /// West African CFA franc (no minor unit).
    pub const XOF: Currency = Currency::known(*b"XOF", 0);
    /// Japanese yen (no minor unit).
    pub const JPY: Currency = Currency::known(*b"JPY", 0);
    /// Kuwaiti dinar (3 decimals).
    pub const KWD: Currency = Currency::known(*b"KWD", 3);

    const KNOWN: [Currency; 10] = [
        Currency::NGN,
        Currency::USD,
        Currency::EUR,
        Currency::GBP,
        Currency::GHS,
        Currency::KES,
        Currency::ZAR,
        Currency::XOF,
        Currency::JPY,
        Currency::KWD,
    ];

    const fn known(code: [u8; 3], decimals: u8) -> Currency {
        Currency { code, decimals }
    }

    /// A currency from its code and the number of decimals of its minor unit (at most 4).
    pub fn new(code: &str, decimals: u8) -> Result<Currency, MoneyError> {
        let bytes: [u8; 3] = code
            .as_bytes()
            .try_into()
            .map_err(|_| MoneyError::UnknownCurrency(code.to_owned()))?;
        if !bytes.iter().all(u8::is_ascii_uppercase) || decimals > 4 {
            return Err(MoneyError::UnknownCurrency(code.to_owned()));
        }
        Ok(Currency {
            code: bytes,
            decimals,
        })
    }

    /// One of the predefined currencies by its code (`"NGN"`, case-insensitive).
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        let upper = code.trim().to_ascii_uppercase();
        Currency::KNOWN
            .into_iter()
            .find(|c| c.code() == upper)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }

    /// The three-letter code, e.g. `"NGN"`.
    pub fn code(&self) -> &str {
        // The bytes are checked ASCII uppercase letters at construction.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// How many decimals the minor unit has (2 for NGN: 1 naira = 100 kobo).
    pub fn decimals(&self) -> u8 {
        self.decimals
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::from_code(&code).map_err(serde::de::Error::custom)
    }
}

/// Why an amount could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The text is not a decimal number at all (`"abc"`, `""`, `"1.2.3"`).
    #[error("not a decimal number: {0:?}")]
    NotANumber(String),
    /// A spelling of NaN or infinity, which no amount can be.
    #[error("not a finite number: {0:?}")]
    NotFinite(String),
    /// More decimals than the currency's minor unit has, and not binary floating-point noise.
    #[error("{text:?} has more decimals than {currency} allows ({decimals})")]
    TooPrecise {
        /// The offending text.
        text: String,
        /// The currency it was read in.
        currency: Currency,
        /// How many decimals that currency allows.
        decimals: u8,
    },
    /// The value does not fit in `i64` minor units.
    #[error("{0:?} is out of range")]
    Overflow(String),
    /// A currency code that is not known or not well formed.
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
    /// Arithmetic between two different currencies.
    #[error("currency mismatch: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
}

/// An exact amount: a signed count of the currency's minor units (kobo for NGN).
///
/// The sign is the amount's own; canonical transactions keep amounts positive and carry the
/// direction separately, while balances may be negative (overdrawn accounts).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// An amount of `minor` minor units of `currency`.
    pub const fn from_minor(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    /// The amount in minor units (kobo for NGN).
    pub const fn minor(&self) -> i64 {
        self.minor
    }

    /// The amount's currency.
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// Whether the amount is above zero.
    pub const fn is_positive(&self) -> bool {
        self.minor > 0
    }

    /// Whether the amount is below zero.
    pub const fn is_negative(&self) -> bool {
        self.minor < 0
    }

    /// The absolute amount, or `None` for `i64::MIN` minor units.
    pub fn checked_abs(&self) -> Option<Money> {
        self.minor
            .checked_abs()
            .map(|minor| Money { minor, ..*self })
    }

    /// The negated amount, or `None` on overflow.
    pub fn checked_neg(&self) -> Option<Money> {
        self.minor
            .checked_neg()
            .map(|minor| Money { minor, ..*self })
    }

    /// The sum of two amounts of the same currency.
    pub fn checked_add(&self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        self.minor
            .checked_add(other.minor)
            .map(|minor| Money { minor, ..*self })
            .ok_or_else(|| MoneyError::Overflow(format!("{self} + {other}")))
    }

    /// Reads a decimal string such as `"200.00"`, `"1,200.50"`, `" 7.5 "`, `"-3"`, `"₦1,200.50"`
    /// or `"NGN 5,000"`.
    ///
    /// Surrounding white space and a leading `+`/`-` are accepted, as are thousands separators
    /// (`,` between groups of three digits in the integer part) and a currency sign (`₦`, `$`,
    /// `€`, `£`, `₵`) or ISO code before or after the number, with or without a space; a sign or
    /// code of another currency than `currency` is [`MoneyError::CurrencyMismatch`] (found,
    /// expected). Digits beyond the currency's decimals follow the float-noise rule of the
    /// module docs, exactly as for JSON numbers (a stringified float is still a float). Exponents
    /// are not accepted in strings.
    pub fn from_decimal_str(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        if let Some(minor) = plain_minor(text, currency.decimals) {
            return Ok(Money::from_minor(minor, currency));
        }
        let (found, number) = split_currency(text);
        if let Some(found) = found
            && found != currency
        {
            return Err(MoneyError::CurrencyMismatch(found, currency));
        }
        let parsed = Decimal::parse(&number, Syntax::DecimalString).map_err(|e| match e {
            MoneyError::NotFinite(_) => MoneyError::NotFinite(text.to_owned()),
            _ => MoneyError::NotANumber(text.to_owned()),
        })?;
        parsed.to_money(text, currency)
    }

    /// Reads the text of a JSON number such as `52.5`, `0.01`, `1e2` or `-0.0`, exactly.
    ///
    /// See the module docs for the floating-point noise rule. Pass the number's source text
    /// (e.g. from `serde_json::Number::to_string()` with `arbitrary_precision`, or the raw JSON
    /// token). Without `arbitrary_precision`, `serde_json` prints a number it read as a binary
    /// double with the shortest text that reads back to it: the vendor's own text for every
    /// number the vendor computed in binary floating point.
    pub fn from_json_number(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        if let Some(minor) = plain_minor(text, currency.decimals) {
            return Ok(Money::from_minor(minor, currency));
        }
        let parsed = Decimal::parse(text, Syntax::JsonNumber)?;
        parsed.to_money(text, currency)
    }

    /// The amount as a plain decimal string with exactly the currency's decimals (`"52.50"`).
    pub fn to_decimal_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let decimals = u32::from(self.currency.decimals);
        let magnitude = self.minor.unsigned_abs();
        let scale = 10u64.pow(decimals);
        let sign = if self.minor < 0 { "-" } else { "" };
        if decimals == 0 {
            write!(f, "{sign}{magnitude}")
        } else {
            let whole = magnitude / scale;
            let frac = magnitude % scale;
            write!(f, "{sign}{whole}.{frac:0width$}", width = decimals as usize)
        }
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self, self.currency)
    }
}

/// The common amount read without allocating: `[-]digits[.digits]`, no leading zero, no more
/// decimals than the currency has and fewer than 19 digits once scaled to minor units. Both
/// syntaxes read such a text as exactly that many minor units (no separator, no currency, no
/// float noise, no overflow), so this is only a shortcut; anything else is `None` and takes the
/// general reading.
fn plain_minor(text: &str, decimals: u8) -> Option<i64> {
    let bytes = text.as_bytes();
    let (negative, unsigned) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    let (int, frac) = match unsigned.iter().position(|&b| b == b'.') {
        Some(dot) if dot + 1 < unsigned.len() => (&unsigned[..dot], &unsigned[dot + 1..]),
        Some(_) => return None,
        None => (unsigned, &[][..]),
    };
    let decimals = usize::from(decimals);
    if int.is_empty()
        || (int.len() > 1 && int[0] == b'0')
        || frac.len() > decimals
        || int.len() + decimals > 18
        || !int.iter().chain(frac).all(u8::is_ascii_digit)
    {
        return None;
    }
    let mut minor: i64 = 0;
    for &d in int.iter().chain(frac) {
        minor = minor * 10 + i64::from(d - b'0');
    }
    for _ in frac.len()..decimals {
        minor *= 10;
    }
    Some(if negative { -minor } else { minor })
}

/// Currency signs that statements put before amounts, and the currency each stands for.
const CURRENCY_SIGNS: [(char, Currency); 5] = [
    ('₦', Currency::NGN),
    ('$', Currency::USD),
    ('€', Currency::EUR),
    ('£', Currency::GBP),
    ('₵', Currency::GHS),
];

/// Splits a currency sign or three-letter code off an amount's text (before or after the
/// number; a sign may stand before or after the sign of the number: `-₦5`, `₦-5`), returning the
/// currency found and the number's text with its sign. Nothing found: the trimmed text itself.
fn split_currency(text: &str) -> (Option<Currency>, String) {
    let trimmed = text.trim();
    let (sign, rest) = match trimmed.chars().next() {
        Some(c @ ('-' | '+')) => (Some(c), trimmed[1..].trim_start()),
        _ => (None, trimmed),
    };
    let with_sign = |number: &str| -> String {
        match sign {
            Some(s) => format!("{s}{}", number.trim()),
            None => number.trim().to_owned(),
        }
    };
    if let Some(first) = rest.chars().next() {
        if let Some((_, currency)) = CURRENCY_SIGNS.iter().find(|(c, _)| *c == first) {
            return (Some(*currency), with_sign(&rest[first.len_utf8()..]));
        }
        let letters: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
        if letters.len() == 3
            && let Ok(currency) = Currency::from_code(&letters)
        {
            return (Some(currency), with_sign(&rest[3..]));
        }
    }
    // A code after the number: `1,200.50 NGN`.
    let letters_at_end = rest
        .chars()
        .rev()
        .take_while(char::is_ascii_alphabetic)
        .count();
    if letters_at_end == 3 && rest.len() > 3 {
        let (number, code) = rest.split_at(rest.len() - 3);
        if let Ok(currency) = Currency::from_code(code) {
            return (Some(currency), with_sign(number));
        }
    }
    (None, trimmed.to_owned())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Syntax {
    DecimalString,
    JsonNumber,
}

/// A parsed decimal number: sign, significant digits and a power-of-ten exponent.
///
/// The value is `(-1)^negative * digits * 10^exponent`, with `digits` an ASCII digit string
/// without leading zeros (empty for zero).
struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    exponent: i64,
}

/// Largest exponent magnitude we bother to represent; anything beyond overflows `i64` or is zero.
const EXPONENT_LIMIT: i64 = 1_000_000;

impl Decimal {
    fn parse(text: &str, syntax: Syntax) -> Result<Decimal, MoneyError> {
        let not_a_number = || MoneyError::NotANumber(text.to_owned());
        let trimmed = match syntax {
            Syntax::DecimalString => text.trim(),
            Syntax::JsonNumber => text,
        };
        let lowered = trimmed.trim_start_matches(['+', '-']).to_ascii_lowercase();
        if matches!(lowered.as_str(), "nan" | "inf" | "infinity") {
            return Err(MoneyError::NotFinite(text.to_owned()));
        }

        let bytes = trimmed.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        match bytes.first() {
            Some(b'-') => {
                negative = true;
                pos += 1;
            }
            Some(b'+') if syntax == Syntax::DecimalString => pos += 1,
            _ => {}
        }

        // Integer part, with thousands separators in decimal strings.
        let int_start = pos;
        let mut int_digits = Vec::new();
        let mut group_len = 0usize;
        let mut saw_separator = false;
        while let Some(&b) = bytes.get(pos) {
            match b {
                b'0'..=b'9' => {
                    int_digits.push(b);
                    group_len += 1;
                }
                b',' if syntax == Syntax::DecimalString => {
                    let first_group_ok = saw_separator || (1..=3).contains(&group_len);
                    if !first_group_ok || (saw_separator && group_len != 3) {
                        return Err(not_a_number());
                    }
                    saw_separator = true;
                    group_len = 0;
                }
                _ => break,
            }
            pos += 1;
        }
        if saw_separator && group_len != 3 {
            return Err(not_a_number());
        }
        if syntax == Syntax::JsonNumber {
            // JSON forbids leading zeros ("01") and requires an integer part.
            let int_text = &bytes[int_start..pos];
            if int_text.is_empty() || (int_text.len() > 1 && int_text[0] == b'0') {
                return Err(not_a_number());
            }
        }

        // Fraction.
        let mut frac_digits = Vec::new();
        if bytes.get(pos) == Some(&b'.') {
            pos += 1;
            while let Some(&b) = bytes.get(pos).filter(|b| b.is_ascii_digit()) {
                frac_digits.push(b);
                pos += 1;
            }
            if frac_digits.is_empty() && syntax == Syntax::JsonNumber {
                return Err(not_a_number());
            }
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(not_a_number());
        }

        // Exponent (JSON numbers only).
        let mut exponent: i64 = 0;
        if syntax == Syntax::JsonNumber && matches!(bytes.get(pos), Some(b'e' | b'E')) {
            pos += 1;
            let mut exp_negative = false;
            match bytes.get(pos) {
                Some(b'-') => {
                    exp_negative = true;
                    pos += 1;
                }
                Some(b'+') => pos += 1,
                _ => {}
            }
            let exp_start = pos;
            while let Some(&b) = bytes.get(pos).filter(|b| b.is_ascii_digit()) {
                // Saturate: a huge exponent is reported as overflow (or becomes zero) below.
                exponent = (exponent * 10 + i64::from(b - b'0')).min(EXPONENT_LIMIT);
                pos += 1;
            }
            if pos == exp_start {
                return Err(not_a_number());
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        if pos != bytes.len() {
            return Err(not_a_number());
        }

        let frac_len = i64::try_from(frac_digits.len()).map_err(|_| not_a_number())?;
        let mut digits = int_digits;
        digits.extend_from_slice(&frac_digits);
        let first_non_zero = digits.iter().position(|&d| d != b'0');
        let digits = match first_non_zero {
            Some(i) => digits.split_off(i),
            None => Vec::new(),
        };
        Ok(Decimal {
            negative,
            digits,
            exponent: exponent - frac_len,
        })
    }

    /// Converts to minor units of `currency` by the float-noise rule ([`float_rule`]).
    fn to_money(&self, text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let overflow = || MoneyError::Overflow(text.to_owned());
        if self.digits.is_empty() {
            return Ok(Money::zero(currency));
        }
        // value in minor units = digits * 10^shift
        let shift = self.exponent + i64::from(currency.decimals);
        let len = i64::try_from(self.digits.len()).map_err(|_| overflow())?;
        // Split the digits into the whole minor units and the fraction beyond them.
        let whole_len = (len + shift).clamp(0, len) as usize;
        let (whole, excess) = self.digits.split_at(whole_len);
        let trailing_zeros = shift.max(0);
        // 30 digits is far beyond i64 plus any float noise: overflow without further ado.
        if whole_len as i64 + trailing_zeros > 30 {
            return Err(overflow());
        }
        let mut whole_minor: u128 = 0;
        for &d in whole {
            whole_minor = whole_minor * 10 + u128::from(d - b'0');
        }
        for _ in 0..trailing_zeros {
            whole_minor *= 10;
        }
        // The fraction of a minor unit: the zeros a very negative shift implies, then the
        // excess digits; cut at FRACTION_DIGITS, with a final 1 standing for any non-zero rest.
        let leading_zeros = usize::try_from((-(len + shift)).max(0)).unwrap_or(usize::MAX);
        let mut fraction: Vec<u8> = std::iter::repeat_n(b'0', leading_zeros.min(FRACTION_DIGITS))
            .chain(excess.iter().copied())
            .take(FRACTION_DIGITS)
            .collect();
        let kept_of_excess = FRACTION_DIGITS.saturating_sub(leading_zeros);
        if excess.iter().skip(kept_of_excess).any(|&d| d != b'0') {
            fraction.push(b'1');
        }

        let limit: u128 = if self.negative {
            1u128 << 63
        } else {
            i64::MAX as u128
        };
        let magnitude = float_rule::Magnitude {
            whole: whole_minor,
            fraction,
        };
        match float_rule::decide(&magnitude, currency.decimals, limit) {
            float_rule::Decision::Minor(minor) => {
                let signed = if self.negative {
                    -(minor as i128)
                } else {
                    minor as i128
                };
                let minor = i64::try_from(signed).map_err(|_| overflow())?;
                Ok(Money::from_minor(minor, currency))
            }
            float_rule::Decision::TooPrecise => Err(MoneyError::TooPrecise {
                text: text.to_owned(),
                currency,
                decimals: currency.decimals,
            }),
            float_rule::Decision::Overflow => Err(overflow()),
        }
    }
}

impl Serialize for Money {
    /// Serialized as `{"minor": 5250, "currency": "NGN", "value": "52.50"}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Money", 3)?;
        st.serialize_field("minor", &self.minor)?;
        st.serialize_field("currency", &self.currency)?;
        st.serialize_field("value", &self.to_string())?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Money {
    /// Reads `{"minor", "currency"}`; a `value` present must agree with `minor`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Repr {
            minor: i64,
            currency: Currency,
            value: Option<String>,
        }
        let repr = Repr::deserialize(d)?;
        let money = Money::from_minor(repr.minor, repr.currency);
        if let Some(value) = repr.value {
            let parsed =
                Money::from_decimal_str(&value, repr.currency).map_err(serde::de::Error::custom)?;
            if parsed != money {
                return Err(serde::de::Error::custom(format!(
                    "value {value:?} disagrees with minor {}",
                    repr.minor
                )));
            }
        }
        Ok(money)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Result<i64, MoneyError> {
        Money::from_json_number(text, Currency::NGN).map(|m| m.minor())
    }

    fn string(text: &str) -> Result<i64, MoneyError> {
        Money::from_decimal_str(text, Currency::NGN).map(|m| m.minor())
    }

    #[test]
    fn the_plain_shortcut_takes_only_plain_amounts() {
        assert_eq!(plain_minor("1200.50", 2), Some(120_050));
        assert_eq!(plain_minor("-7", 2), Some(-700));
        assert_eq!(plain_minor("0.3", 2), Some(30));
        for text in [
            "0.30000000000000004",
            "01",
            "5.",
            ".5",
            "1e2",
            "1,200",
            " 5",
            "+5",
            "",
        ] {
            assert_eq!(plain_minor(text, 2), None, "{text:?}");
        }
        assert_eq!(plain_minor("99999999999999999", 2), None);
    }

    #[test]
    fn json_numbers_from_the_vendor_docs() {
        assert_eq!(json("0.01"), Ok(1));
        assert_eq!(json("52.5"), Ok(5250));
        assert_eq!(json("0.03"), Ok(3));
        assert_eq!(json("3.21"), Ok(321));
        assert_eq!(json("1e2"), Ok(10000));
        assert_eq!(json("1E+2"), Ok(10000));
        assert_eq!(json("5e-1"), Ok(50));
        assert_eq!(json("-0.0"), Ok(0));
        assert_eq!(json("0"), Ok(0));
        assert_eq!(json("-12.34"), Ok(-1234));
    }

    #[test]
    fn json_float_noise_is_rounded_to_the_whole_minor_unit() {
        assert_eq!(json("0.30000000000000004"), Ok(30));
        assert_eq!(json("0.29999999999999998"), Ok(30));
        assert_eq!(json("1234567.8899999999"), Ok(123456789));
        assert_eq!(json("100.00000000000001"), Ok(10000));
        // What JavaScript prints for 250000000.7 + 0.1: one ULP below 250000000.8.
        assert_eq!(json("250000000.79999998"), Ok(25_000_000_080));
        // 0.1 + 0.2 - 0.3: cancellation noise around zero, within 16 ULPs of 1.0.
        assert_eq!(json("5.551115123125783e-17"), Ok(0));
        assert_eq!(json("-5.551115123125783e-17"), Ok(0));
    }

    #[test]
    fn the_noise_bound_is_sixteen_ulps_of_the_nearest_double() {
        // Below one naira the ULP is that of 1.0, 2^-52 (2.2e-16): 16 ULPs is 3.55e-15.
        assert_eq!(json("0.300000000000003"), Ok(30));
        assert!(matches!(
            json("0.300000000000004"),
            Err(MoneyError::TooPrecise { .. })
        ));
        // At 1000.3 naira the ULP is 2^-43 (1.14e-13): 16 ULPs is 1.82e-12.
        assert_eq!(json("1000.3000000000017"), Ok(100030));
        assert!(matches!(
            json("1000.3000000000019"),
            Err(MoneyError::TooPrecise { .. })
        ));
        // At 250 million naira the ULP is 2^-25 (2.98e-8): 16 ULPs is 4.77e-7.
        assert_eq!(json("250000000.8000004"), Ok(25_000_000_080));
        assert!(matches!(
            json("250000000.8000005"),
            Err(MoneyError::TooPrecise { .. })
        ));
        // Above 2^41 naira doubles cannot carry kobo: every value rounds to the nearest kobo.
        assert_eq!(json("4398046511104.004"), Ok(439_804_651_110_400));
        assert_eq!(json("4398046511104.006"), Ok(439_804_651_110_401));
    }

    #[test]
    fn strings_follow_the_same_float_rule() {
        assert_eq!(string("0.30000000000000004"), Ok(30));
        assert_eq!(string("250000000.79999998"), Ok(25_000_000_080));
        assert_eq!(string("1,250,000,000.79999998"), Ok(125_000_000_080));
    }
    #[test]
    fn json_rejects_non_json_spellings() {
        for text in [
            "", "abc", "1.", ".5", "01", "+1", "1e", "1,000", " 1", "0x10", "1.2.3",
        ] {
            assert!(
                matches!(json(text), Err(MoneyError::NotANumber(_))),
                "{text:?}: {:?}",
                json(text)
            );
        }
        for text in ["NaN", "nan", "Infinity", "-Infinity", "inf", "-inf"] {
            assert!(
                matches!(json(text), Err(MoneyError::NotFinite(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn decimal_strings() {
        assert_eq!(string("200.00"), Ok(20000));
        assert_eq!(string("1,200.50"), Ok(120050));
        assert_eq!(string("1,234,567.89"), Ok(123456789));
        assert_eq!(string(" 7.5 "), Ok(750));
        assert_eq!(string("200.000"), Ok(20000));
        assert_eq!(string("200"), Ok(20000));
        assert_eq!(string("0.07"), Ok(7));
        assert_eq!(string("-3"), Ok(-300));
        assert_eq!(string("+3"), Ok(300));
        assert_eq!(string("0"), Ok(0));
        assert_eq!(string(".5"), Ok(50));
        assert_eq!(string("5."), Ok(500));
    }

    #[test]
    fn decimal_strings_rejected() {
        assert!(matches!(
            string("0.005"),
            Err(MoneyError::TooPrecise { .. })
        ));
        for text in [
            "abc", "", " ", "1,2", "12,34.5", "1,,000", ",100", "1,0000", "1e2", "1.2.3", "--1",
            ".",
        ] {
            assert!(
                matches!(string(text), Err(MoneyError::NotANumber(_))),
                "{text:?}: {:?}",
                string(text)
            );
        }
        for text in ["NaN", "inf", "-Infinity", " nan "] {
            assert!(
                matches!(string(text), Err(MoneyError::NotFinite(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn amounts_with_currency_signs_and_codes() {
        assert_eq!(string("₦1,200.50"), Ok(120050));
        assert_eq!(string("₦ 1,200.50"), Ok(120050));
        assert_eq!(string("NGN 5,000"), Ok(500000));
        assert_eq!(string("NGN5000.5"), Ok(500050));
        assert_eq!(string(" ngn 7 "), Ok(700));
        assert_eq!(string("1,200.50 NGN"), Ok(120050));
        assert_eq!(string("-₦5"), Ok(-500));
        assert_eq!(string("₦-5"), Ok(-500));
        assert_eq!(string("0.00"), Ok(0));
        assert_eq!(
            string("$5"),
            Err(MoneyError::CurrencyMismatch(Currency::USD, Currency::NGN))
        );
        assert_eq!(
            string("USD 5.00"),
            Err(MoneyError::CurrencyMismatch(Currency::USD, Currency::NGN))
        );
        assert!(matches!(string("XAF 5"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(string("₦"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(string("NGN"), Err(MoneyError::NotANumber(_))));
    }

    #[test]
    fn overflow_is_an_error() {
        assert_eq!(string("92233720368547758.07"), Ok(i64::MAX));
        assert_eq!(string("-92233720368547758.08"), Ok(i64::MIN));
        // The double nearest to i64::MAX kobo, as a vendor's float prints it.
        assert_eq!(json("92233720368547760"), Ok(i64::MAX));
        assert_eq!(json("9.223372036854776e16"), Ok(i64::MAX));
        assert_eq!(json("-92233720368547760"), Ok(i64::MIN));
        for text in [
            "92233720368548100",
            "-92233720368548100.09",
            "1000000000000000000000",
        ] {
            assert!(
                matches!(string(text), Err(MoneyError::Overflow(_))),
                "{text}"
            );
        }
        assert!(matches!(json("1e17"), Err(MoneyError::Overflow(_))));
        assert!(matches!(json("1.5e17"), Err(MoneyError::Overflow(_))));
        assert!(matches!(
            json("1e999999999999999999"),
            Err(MoneyError::Overflow(_))
        ));
        // Far below the noise bound of one naira: zero.
        assert_eq!(json("1e-999999999999999999"), Ok(0));
    }

    #[test]
    fn other_currencies_use_their_own_decimals() {
        assert_eq!(
            Money::from_decimal_str("5", Currency::JPY).map(|m| m.minor()),
            Ok(5)
        );
        assert!(Money::from_decimal_str("5.1", Currency::JPY).is_err());
        assert_eq!(
            Money::from_decimal_str("1.234", Currency::KWD).map(|m| m.minor()),
            Ok(1234)
        );
        assert_eq!(Money::from_minor(1234, Currency::KWD).to_string(), "1.234");
        assert_eq!(Money::from_minor(-5, Currency::JPY).to_string(), "-5");
    }

    #[test]
    fn formatting() {
        assert_eq!(Money::from_minor(5250, Currency::NGN).to_string(), "52.50");
        assert_eq!(Money::from_minor(1, Currency::NGN).to_string(), "0.01");
        assert_eq!(Money::from_minor(-1, Currency::NGN).to_string(), "-0.01");
        assert_eq!(
            Money::from_minor(i64::MIN, Currency::NGN).to_string(),
            "-92233720368547758.08"
        );
    }

    #[test]
    fn serde_shape() {
        let m = Money::from_minor(5250, Currency::NGN);
        let v = serde_json::to_value(m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"minor": 5250, "currency": "NGN", "value": "52.50"})
        );
        assert_eq!(serde_json::from_value::<Money>(v).unwrap(), m);
        let bad = serde_json::json!({"minor": 5250, "currency": "NGN", "value": "52.51"});
        assert!(serde_json::from_value::<Money>(bad).is_err());
    }

    #[test]
    fn currency_codes() {
        assert_eq!(Currency::from_code("ngn"), Ok(Currency::NGN));
        assert!(Currency::from_code("XYZ").is_err());
        assert_eq!(Currency::new("ABC", 1).map(|c| c.decimals()), Ok(1));
        assert!(Currency::new("abc", 2).is_err());
        assert!(Currency::new("ABCD", 2).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn currency() -> impl Strategy<Value = Currency> {
            prop::sample::select(Currency::KNOWN.to_vec())
        }

        proptest! {
            #[test]
            fn format_then_parse_round_trips(minor in any::<i64>(), currency in currency()) {
                let money = Money::from_minor(minor, currency);
                let text = money.to_string();
                prop_assert_eq!(Money::from_decimal_str(&text, currency), Ok(money));
                prop_assert_eq!(Money::from_json_number(&text, currency), Ok(money));
            }

            #[test]
            fn grouped_strings_parse_like_plain_ones(minor in 0i64..i64::MAX) {
                let plain = Money::from_minor(minor, Currency::NGN).to_string();
                let (whole, frac) = plain.split_once('.').unwrap();
                let mut grouped = String::new();
                for (i, ch) in whole.chars().enumerate() {
                    if i > 0 && (whole.len() - i) % 3 == 0 {
                        grouped.push(',');
                    }
                    grouped.push(ch);
                }
                let text = format!("{grouped}.{frac}");
                prop_assert_eq!(Money::from_decimal_str(&text, Currency::NGN).map(|m| m.minor()), Ok(minor));
            }

            #[test]
            fn the_plain_shortcut_reads_as_the_general_reading(
                negative in any::<bool>(),
                int in "[0-9]{0,20}",
                frac in proptest::option::of("[0-9]{0,4}"),
                decimals in 0u8..=4,
            ) {
                let sign = if negative { "-" } else { "" };
                let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
                let text = format!("{sign}{int}{frac}");
                let currency = Currency::new("ABC", decimals).unwrap();
                if let Some(minor) = plain_minor(&text, decimals) {
                    for syntax in [Syntax::DecimalString, Syntax::JsonNumber] {
                        let general =
                            Decimal::parse(&text, syntax).and_then(|d| d.to_money(&text, currency));
                        prop_assert_eq!(general, Ok(Money::from_minor(minor, currency)));
                    }
                }
            }

            #[test]
            fn parsing_any_string_never_panics(text in ".*") {
                let _ = Money::from_decimal_str(&text, Currency::NGN);
                let _ = Money::from_json_number(&text, Currency::NGN);
            }

            #[test]
            fn parsing_number_like_strings_never_panics(text in "[-+]?[0-9,]{0,25}(\\.[0-9]{0,25})?([eE][-+]?[0-9]{0,22})?") {
                let _ = Money::from_decimal_str(&text, Currency::NGN);
                let _ = Money::from_json_number(&text, Currency::NGN);
            }

        }
    }
}
