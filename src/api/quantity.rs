//! Kubernetes `resource.Quantity`: the canonical strings metrics-server serves for `usage.cpu`
//! and `usage.memory`, the sums Table pod rows show, and parsing of quantity strings (node
//! allocatable, tests).
//!
//! Sits at the end of the read path: the store hands over integer nanocores and bytes,
//! [`crate::api::types`] and [`crate::api::table`] print them through [`Quantity`]. A port of
//! apimachinery `pkg/api/resource` (`quantity.go` `CanonicalizeBytes`, `amount.go`
//! `AsCanonicalBytes` / `AsCanonicalBase1024Bytes`, `Add`, `ParseQuantity`) restricted to what
//! the Metrics API needs, and of metrics-server's `uint64Quantity` (`pkg/storage/types.go`):
//!
//! - CPU: nanocores at scale −9, `DecimalSI`: `487558164n`, `1500n`, `1u`, `500m`, `1`, `2500m`;
//! - memory: bytes at scale 0, `BinarySI`: `12240Ki`, `5Mi`, `12533761`, and (as Go does) values
//!   below 1024 in `DecimalSI`: `1000` bytes is `1k`;
//! - a value above `i64::MAX` loses its last decimal digit (scale + 1), exactly as
//!   `uint64Quantity` does.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// How a quantity prints, as apimachinery's `resource.Format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Powers of ten with SI suffixes: `n`, `u`, `m`, ``, `k`, `M`, `G`, `T`, `P`, `E`.
    DecimalSi,
    /// Powers of 1024 with `Ki` ... `Ei`; falls back to `DecimalSi` for |value| < 1024 and for
    /// non-integers.
    BinarySi,
    /// `e<n>` exponents, n a multiple of 3.
    DecimalExponent,
}

/// Why a quantity string was rejected; bad input, never worth retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The text does not look like a quantity (Go's `ErrFormatWrong`).
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    Format,
    /// The suffix is none of the SI, binary or exponent suffixes (Go's `ErrSuffix`).
    #[error("unable to parse quantity's suffix")]
    Suffix,
    /// The value is 10^36 or larger (Go caps or uses big numbers; we refuse).
    #[error("quantity is too large")]
    TooLarge,
}

/// `mantissa * 10^scale`, printed in `format`. Scale is never below −9 (nano): parsing and
/// [`Quantity::new`] round finer values up, as apimachinery does. Equality compares values and
/// formats, not representations (`1000m == 1`).
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    mantissa: i128,
    scale: i32,
    format: Format,
}

/// Values stay below this magnitude so that canonicalisation (at most x100) cannot overflow.
const LIMIT: i128 = 10i128.pow(36);
const NANO: i32 = -9;
const DECIMAL_SUFFIXES: [&str; 10] = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"];
const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

impl Quantity {
    /// Zero in `format` (prints `0`).
    pub const fn zero(format: Format) -> Self {
        Self {
            mantissa: 0,
            scale: 0,
            format,
        }
    }

    /// `mantissa * 10^scale`, rounded up (away from zero) to nano precision; `None` if the
    /// magnitude is 10^36 or more.
    pub fn new(mantissa: i128, scale: i32, format: Format) -> Option<Self> {
        let (mantissa, scale) = round_to_nano(mantissa, scale)?;
        let q = Self {
            mantissa,
            scale,
            format,
        };
        q.integer_magnitude_below_limit().then_some(q)
    }

    /// A CPU usage: `uint64Quantity(nanocores, DecimalSI, -9)`.
    pub fn cpu_from_nanocores(nanocores: u64) -> Self {
        Self::from_u64_scaled(nanocores, NANO, Format::DecimalSi)
    }

    /// A memory usage: `uint64Quantity(bytes, BinarySI, 0)`.
    pub fn memory_from_bytes(bytes: u64) -> Self {
        Self::from_u64_scaled(bytes, 0, Format::BinarySi)
    }

    /// metrics-server's `uint64Quantity`: above `i64::MAX` drop one decimal digit (scale + 1).
    fn from_u64_scaled(value: u64, scale: i32, format: Format) -> Self {
        if value > i64::MAX as u64 {
            return Self {
                mantissa: i128::from(value / 10),
                scale: scale + 1,
                format,
            };
        }
        Self {
            mantissa: i128::from(value),
            scale,
            format,
        }
    }

    /// The format the quantity prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// Go's `Quantity.Add`: the exact sum; the format is `self`'s unless `self` is zero, then
    /// `other`'s. `None` when the sum is 10^36 or more, or when aligning a huge value with a
    /// nano-precise one would overflow `i128` (never for sums of `u64` usages).
    pub fn checked_add(self, other: Self) -> Option<Self> {
        let format = if self.is_zero() { other.format } else { self.format };
        let scale = self.scale.min(other.scale);
        let a = self.mantissa.checked_mul(pow10(self.scale - scale)?)?;
        let b = other.mantissa.checked_mul(pow10(other.scale - scale)?)?;
        Self::new(a.checked_add(b)?, scale, format)
    }

    /// Sums as metrics-server's Table code does (`u := usage[k]; u.Add(v)` from a zero
    /// Quantity): the result has the first addend's format. `None` past 10^36.
    pub fn sum(quantities: impl IntoIterator<Item = Quantity>) -> Option<Self> {
        quantities
            .into_iter()
            .try_fold(Self::zero(Format::DecimalSi), Self::checked_add)
    }

    /// `ceil(value / 10^scale)`, saturating at the `i128` range.
    pub fn scaled_value_ceil(&self, scale: i32) -> i128 {
        let shift = self.scale - scale;
        if shift >= 0 {
            return match pow10(shift) {
                Some(p) => self.mantissa.saturating_mul(p),
                None if self.mantissa == 0 => 0,
                None => self.mantissa.signum() * i128::MAX,
            };
        }
        match pow10(-shift) {
            Some(p) => ceil_div(self.mantissa, p),
            None => i128::from(self.mantissa > 0),
        }
    }

    /// `ceil(value)`, as Go's `Value()` (bytes for memory, cores for CPU).
    pub fn value(&self) -> i128 {
        self.scaled_value_ceil(0)
    }

    /// `ceil(value * 1000)`, as Go's `MilliValue()` (millicores).
    pub fn milli_value(&self) -> i128 {
        self.scaled_value_ceil(-3)
    }

    /// `value * 10^9`, exact (nanocores for CPU).
    pub fn nano_value(&self) -> i128 {
        self.scaled_value_ceil(NANO)
    }

    /// Parses `8`, `7900m`, `1.5`, `32Gi`, `33554432Ki`, `1e3`, `-2k` like Go's `ParseQuantity`
    /// (no surrounding spaces; at least one digit, where Go also takes a bare suffix as zero).
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (int_part, rest) = split_digits(rest);
        let (frac_part, suffix) = match rest.strip_prefix('.') {
            Some(after_point) => split_digits(after_point),
            None => ("", rest),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(QuantityError::Format);
        }
        let (base, exponent, format) = interpret_suffix(suffix)?;
        let mut mantissa = parse_digits(int_part, frac_part)?;
        let mut scale = -i32::try_from(frac_part.len()).map_err(|_| QuantityError::TooLarge)?;
        if base == 2 {
            mantissa = mantissa.checked_mul(1i128 << exponent).ok_or(QuantityError::TooLarge)?;
        } else {
            scale = scale.checked_add(exponent).ok_or(QuantityError::TooLarge)?;
        }
        let signed = if negative { -mantissa } else { mantissa };
        let mut q = Self::new(signed, scale, format).ok_or(QuantityError::TooLarge)?;
        // Go: a binary quantity strictly between -1 and 1 (after rounding) becomes DecimalSI.
        let below_one = q.scale < 0 && pow10(-q.scale).is_some_and(|p| q.mantissa.abs() < p);
        if q.format == Format::BinarySi && q.mantissa != 0 && below_one {
            q.format = Format::DecimalSi;
        }
        Ok(q)
    }

    /// `|value|` rounded up to an integer (the part at scale >= 0) is below [`LIMIT`].
    fn integer_magnitude_below_limit(&self) -> bool {
        let magnitude = self.mantissa.unsigned_abs();
        match pow10(self.scale.max(0)) {
            Some(p) => magnitude.checked_mul(p as u128).is_some_and(|m| m < LIMIT as u128),
            None => magnitude == 0,
        }
    }

    /// The integer Go prints in `BinarySI`, or `None` when Go falls back to `DecimalSI`:
    /// |value| < 1024, or the value is not an integer.
    fn binary_integer(&self) -> Option<i128> {
        let value = if self.scale >= 0 {
            self.mantissa * pow10(self.scale)?
        } else {
            let p = pow10(-self.scale)?;
            (self.mantissa % p == 0).then(|| self.mantissa / p)?
        };
        (value.unsigned_abs() >= 1024).then_some(value)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.format == other.format && self.cmp_value(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl Quantity {
    /// Compares values, ignoring formats.
    pub fn cmp_value(&self, other: &Self) -> Ordering {
        self.split_nanos().cmp(&other.split_nanos())
    }

    /// `(floor(value), nanoseconds-like fraction in 0..10^9)`; both fit because |value| < 10^36
    /// and the scale is at least −9.
    fn split_nanos(&self) -> (i128, i128) {
        if self.scale >= 0 {
            return (self.mantissa * pow10(self.scale).unwrap_or(0), 0);
        }
        let p = pow10(-self.scale).unwrap_or(1);
        let frac = self.mantissa.rem_euclid(p) * pow10(9 + self.scale).unwrap_or(1);
        (self.mantissa.div_euclid(p), frac)
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// The canonical form, as Go's `Quantity.String()`.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mantissa == 0 {
            return f.write_str("0");
        }
        if self.format == Format::BinarySi
            && let Some(value) = self.binary_integer()
        {
            let (amount, exponent) = remove_factors_of_1024(value);
            return write_amount(f, amount, BINARY_SUFFIXES[exponent]);
        }
        let (amount, exponent) = canonical_decimal(self.mantissa, self.scale);
        match self.format {
            Format::DecimalExponent if exponent == 0 => write_amount(f, amount, ""),
            Format::DecimalExponent => write!(f, "{amount}e{exponent}"),
            _ => write_decimal_si(f, amount, exponent),
        }
    }
}

/// Serialises as the canonical string, without allocating.
impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        super::json::serialize_display(serializer, self)
    }
}

/// Appends `Quantity::cpu_from_nanocores(nanocores)` as text, without the `i128` maths and the
/// formatting machinery of [`fmt::Display`] (the list writer calls this for every container).
pub fn push_cpu_nanocores(out: &mut Vec<u8>, nanocores: u64) {
    if nanocores == 0 || nanocores > i64::MAX as u64 {
        return push_display(out, &Quantity::cpu_from_nanocores(nanocores));
    }
    // DecimalSI at scale -9: strip factors of ten, round the exponent down to a multiple of 3.
    let (mut amount, mut exponent) = (nanocores, NANO);
    while amount % 10 == 0 {
        amount /= 10;
        exponent += 1;
    }
    match exponent.rem_euclid(3) {
        1 => (amount, exponent) = (amount * 10, exponent - 1),
        2 => (amount, exponent) = (amount * 100, exponent - 2),
        _ => {}
    }
    push_u64(out, amount);
    out.extend_from_slice(DECIMAL_SUFFIXES[((exponent - NANO) / 3) as usize].as_bytes());
}

/// Appends `Quantity::memory_from_bytes(bytes)` as text (see [`push_cpu_nanocores`]).
pub fn push_memory_bytes(out: &mut Vec<u8>, bytes: u64) {
    if bytes < 1024 || bytes > i64::MAX as u64 {
        return push_display(out, &Quantity::memory_from_bytes(bytes));
    }
    // BinarySI: strip factors of 1024 (at most six, `Ei`).
    let (mut amount, mut exponent) = (bytes, 0);
    while exponent < BINARY_SUFFIXES.len() - 1 && amount % 1024 == 0 {
        amount /= 1024;
        exponent += 1;
    }
    push_u64(out, amount);
    out.extend_from_slice(BINARY_SUFFIXES[exponent].as_bytes());
}

fn push_display(out: &mut Vec<u8>, q: &Quantity) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{q}");
}

/// Appends the decimal digits of `value`.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// The canonical string of a CPU usage in nanocores (`487558164n`, `500m`, `2`).
pub fn format_cpu_nanocores(nanocores: u64) -> String {
    Quantity::cpu_from_nanocores(nanocores).to_string()
}

/// The canonical string of a memory usage in bytes (`12240Ki`, `5Mi`, `12533761`).
pub fn format_memory_bytes(bytes: u64) -> String {
    Quantity::memory_from_bytes(bytes).to_string()
}

/// `10^n` for `0 <= n <= 38`.
fn pow10(n: i32) -> Option<i128> {
    u32::try_from(n).ok().and_then(|n| 10i128.checked_pow(n))
}

/// `ceil(a / d)` for `d > 0`.
fn ceil_div(a: i128, d: i128) -> i128 {
    a.div_euclid(d) + i128::from(a.rem_euclid(d) != 0)
}

/// Rounds `mantissa * 10^scale` away from zero to scale >= −9 (Go's `RoundUp` to `Nano`).
fn round_to_nano(mantissa: i128, scale: i32) -> Option<(i128, i32)> {
    if scale >= NANO {
        return Some((mantissa, scale));
    }
    let magnitude = match pow10(NANO - scale) {
        Some(p) => ceil_div(mantissa.abs(), p),
        None => i128::from(mantissa != 0),
    };
    Some((mantissa.signum() * magnitude, NANO))
}

/// `AsCanonicalBytes`: strips factors of ten, then lowers the exponent to a multiple of three.
fn canonical_decimal(mantissa: i128, scale: i32) -> (i128, i32) {
    let (amount, times) = remove_factors_of_10(mantissa);
    let exponent = scale + times;
    match exponent.rem_euclid(3) {
        1 => (amount * 10, exponent - 1),
        2 => (amount * 100, exponent - 2),
        _ => (amount, exponent),
    }
}

/// `v` without trailing decimal zeros and how many were removed; `v` is not zero. Runs in
/// `i64` when it can, where division by a constant is cheap.
fn remove_factors_of_10(v: i128) -> (i128, i32) {
    let mut times = 0;
    if let Ok(mut small) = i64::try_from(v) {
        while small % 10 == 0 {
            small /= 10;
            times += 1;
        }
        return (i128::from(small), times);
    }
    let mut v = v;
    while v % 10 == 0 {
        v /= 10;
        times += 1;
    }
    (v, times)
}

/// `v` divided by 1024 as often as it divides exactly, at most six times (`Ei`).
fn remove_factors_of_1024(mut v: i128) -> (i128, usize) {
    let mut times = 0;
    while times < BINARY_SUFFIXES.len() - 1 && v % 1024 == 0 {
        v /= 1024;
        times += 1;
    }
    (v, times)
}

/// Prints `amount * 10^exponent` with an SI suffix; the exponent is a multiple of three and at
/// least −9. Above `E` (10^18) the amount grows instead, where Go would print no suffix at all.
fn write_decimal_si(f: &mut fmt::Formatter<'_>, amount: i128, exponent: i32) -> fmt::Result {
    let (amount, exponent) = if exponent > 18 {
        (amount * pow10(exponent - 18).unwrap_or(1), 18)
    } else {
        (amount, exponent)
    };
    let index = usize::try_from((exponent - NANO) / 3).unwrap_or(0);
    write_amount(f, amount, DECIMAL_SUFFIXES[index])
}

fn write_amount(f: &mut fmt::Formatter<'_>, amount: i128, suffix: &str) -> fmt::Result {
    match i64::try_from(amount) {
        Ok(small) => write!(f, "{small}{suffix}"),
        Err(_) => write!(f, "{amount}{suffix}"),
    }
}

/// Splits off the leading ASCII digits.
fn split_digits(text: &str) -> (&str, &str) {
    let n = text.bytes().take_while(u8::is_ascii_digit).count();
    text.split_at(n)
}

/// The integer made of the digits of `int_part` followed by `frac_part`.
fn parse_digits(int_part: &str, frac_part: &str) -> Result<i128, QuantityError> {
    int_part.bytes().chain(frac_part.bytes()).try_fold(0i128, |acc, digit| {
        acc.checked_mul(10)
            .and_then(|acc| acc.checked_add(i128::from(digit - b'0')))
            .ok_or(QuantityError::TooLarge)
    })
}

/// `(base, exponent, format)` of a suffix, as apimachinery's `suffixHandler.interpret`.
fn interpret_suffix(suffix: &str) -> Result<(u32, i32, Format), QuantityError> {
    if let Some(i) = DECIMAL_SUFFIXES.iter().position(|s| *s == suffix) {
        return Ok((10, 3 * i as i32 + NANO, Format::DecimalSi));
    }
    if let Some(i) = BINARY_SUFFIXES.iter().skip(1).position(|s| *s == suffix) {
        return Ok((2, 10 * (i as i32 + 1), Format::BinarySi));
    }
    let exponent = suffix
        .strip_prefix(['e', 'E'])
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            let lexes = suffix
                .bytes()
                .all(|b| b"eEinumkKMGTP+-".contains(&b) || b.is_ascii_digit());
            if lexes {
                QuantityError::Suffix
            } else {
                QuantityError::Format
            }
        })?;
    let exponent: i32 = exponent.parse().map_err(|_| QuantityError::Format)?;
    if exponent.abs() > 100 {
        return Err(QuantityError::TooLarge);
    }
    Ok((10, exponent, Format::DecimalExponent))
}

#[cfg(test)]
mod tests;
