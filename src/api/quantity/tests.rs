use proptest::prelude::*;

use super::*;

fn q(mantissa: i128, scale: i32, format: Format) -> Quantity {
    Quantity::new(mantissa, scale, format).expect("in range")
}

/// The value metrics-server serves for `v`: above `i64::MAX` the last digit is dropped.
fn lossy(v: u64) -> i128 {
    if v > i64::MAX as u64 {
        i128::from(v / 10 * 10)
    } else {
        i128::from(v)
    }
}

#[test]
fn cpu_uses_the_largest_exact_si_suffix() {
    let cases = [
        (487_558_164, "487558164n"),
        (1_723_946, "1723946n"),
        (1500, "1500n"),
        (1000, "1u"),
        (312_500_000, "312500u"),
        (500_000_000, "500m"),
        (1_000_000_000, "1"),
        (2_500_000_000, "2500m"),
        (12_000_000_000, "12"),
        (1_000_000_000_000, "1k"),
        (1, "1n"),
        (0, "0"),
    ];
    for (nanocores, want) in cases {
        assert_eq!(format_cpu_nanocores(nanocores), want, "{nanocores} nanocores");
    }
}

#[test]
fn memory_uses_the_largest_exact_binary_suffix() {
    let cases = [
        (12240 * 1024, "12240Ki"),
        (732_212 * 1024, "732212Ki"),
        (5 << 20, "5Mi"),
        (1 << 30, "1Gi"),
        (4096 << 20, "4Gi"),
        (12_533_761, "12533761"),
        (1024, "1Ki"),
        (1500, "1500"),
        (1 << 60, "1Ei"),
        (1 << 62, "4Ei"),
        (0, "0"),
        // Below 1024 Go prints DecimalSI.
        (1000, "1k"),
        (500, "500"),
        (1023, "1023"),
    ];
    for (bytes, want) in cases {
        assert_eq!(format_memory_bytes(bytes), want, "{bytes} bytes");
    }
}

/// metrics-server `TestUint64Quantity` (`pkg/storage/types_test.go`), plus the printed forms.
#[test]
fn values_above_i64_max_lose_one_digit_like_uint64_quantity() {
    let max = i64::MAX as u64;
    let decimal = |v| Quantity::from_u64_scaled(v, 0, Format::DecimalSi);
    assert_eq!(
        decimal(max + 10),
        q(i128::from(i64::MAX / 10 + 1), 1, Format::DecimalSi)
    );
    assert_eq!(
        decimal(max + 20),
        q(i128::from(i64::MAX / 10 + 2), 1, Format::DecimalSi)
    );
    assert_eq!(decimal(max - 10), q(i128::from(i64::MAX - 10), 0, Format::DecimalSi));
    assert_eq!(decimal(max - 100), q(i128::from(i64::MAX - 100), 0, Format::DecimalSi));
    assert_eq!(format_memory_bytes(u64::MAX), "18446744073709551610");
    assert_eq!(format_memory_bytes(1 << 63), "9223372036854775800");
    assert_eq!(format_cpu_nanocores(u64::MAX), "18446744073709551610n");
    assert_eq!(format_cpu_nanocores(10_000_000_000_000_000_000), "10G");
}

/// apimachinery `TestQuantityString` (the canonical column).
#[test]
fn matches_go_quantity_string_table() {
    use Format::*;
    let cases = [
        (q(1 << 30, 0, BinarySi), "1Gi"),
        (q(300 << 20, 0, BinarySi), "300Mi"),
        (q(6 * 1024, 0, BinarySi), "6Ki"),
        (q(1001 << 30, 0, BinarySi), "1001Gi"),
        (q(1 << 40, 0, BinarySi), "1Ti"),
        (q(5, 0, BinarySi), "5"),
        (q(500, -3, BinarySi), "500m"),
        (q(1, 9, DecimalSi), "1G"),
        (q(1000, 6, DecimalSi), "1G"),
        (q(1_000_000, 3, DecimalSi), "1G"),
        (q(1_000_000_000, 0, DecimalSi), "1G"),
        (q(1, -3, DecimalSi), "1m"),
        (q(80, -3, DecimalSi), "80m"),
        (q(1080, -3, DecimalSi), "1080m"),
        (q(108, -2, DecimalSi), "1080m"),
        (q(10800, -4, DecimalSi), "1080m"),
        (q(300, 6, DecimalSi), "300M"),
        (q(1, 12, DecimalSi), "1T"),
        (q(1_234_567, 6, DecimalSi), "1234567M"),
        (q(1_234_567, -3, BinarySi), "1234567m"),
        (q(3, 3, DecimalSi), "3k"),
        (q(1025, 0, BinarySi), "1025"),
        (q(0, 0, DecimalSi), "0"),
        (q(0, 0, BinarySi), "0"),
        (q(1, 9, DecimalExponent), "1e9"),
        (q(1, -3, DecimalExponent), "1e-3"),
        (q(1, -9, DecimalExponent), "1e-9"),
        (q(80, -3, DecimalExponent), "80e-3"),
        (q(300, 6, DecimalExponent), "300e6"),
        (q(1, 12, DecimalExponent), "1e12"),
        (q(1, 3, DecimalExponent), "1e3"),
        (q(3, 3, DecimalExponent), "3e3"),
        (q(0, 0, DecimalExponent), "0"),
        (q(1, -9, DecimalSi), "1n"),
        (q(80, -9, DecimalSi), "80n"),
        (q(1080, -9, DecimalSi), "1080n"),
        (q(108, -8, DecimalSi), "1080n"),
        (q(10800, -10, DecimalSi), "1080n"),
        (q(1, -6, DecimalSi), "1u"),
        (q(80, -6, DecimalSi), "80u"),
        (q(1080, -6, DecimalSi), "1080u"),
        (q(-1080, -6, DecimalSi), "-1080u"),
        (q(-5 << 20, 0, BinarySi), "-5Mi"),
    ];
    for (quantity, want) in cases {
        assert_eq!(quantity.to_string(), want, "{quantity:?}");
    }
}

/// apimachinery `TestQuantityParse`, the vectors within our range (no int64 caps).
#[test]
fn parses_like_go() {
    use Format::*;
    let cases = [
        ("0", q(0, 0, DecimalSi)),
        ("0Ki", q(0, 0, BinarySi)),
        ("0e0", q(0, 0, DecimalExponent)),
        ("1Ki", q(1024, 0, BinarySi)),
        ("7Mi", q(7 << 20, 0, BinarySi)),
        ("3Ei", q(3 << 60, 0, BinarySi)),
        ("100Ti", q(100 << 40, 0, BinarySi)),
        ("5n", q(5, -9, DecimalSi)),
        ("4u", q(4, -6, DecimalSi)),
        ("3m", q(3, -3, DecimalSi)),
        ("9", q(9, 0, DecimalSi)),
        ("50k", q(5, 4, DecimalSi)),
        ("300T", q(3, 14, DecimalSi)),
        ("1E", q(1, 18, DecimalSi)),
        ("12E", q(12, 18, DecimalSi)),
        ("1E-3", q(1, -3, DecimalExponent)),
        ("1e15", q(1, 15, DecimalExponent)),
        ("100.035k", q(100_035, 0, DecimalSi)),
        ("0.0005k", q(5, -1, DecimalSi)),
        ("0.50000", q(5, -1, DecimalSi)),
        ("0.5e-2", q(5, -3, DecimalExponent)),
        ("1.3E+6", q(13, 5, DecimalExponent)),
        ("1.53E12", q(153, 10, DecimalExponent)),
        ("6.987654321G", q(6_987_654_321, 0, DecimalSi)),
        ("1.01E", q(101, 16, DecimalSi)),
        ("3.001n", q(4, -9, DecimalSi)),
        ("1.1E-9", q(2, -9, DecimalExponent)),
        ("0.0000000005", q(1, -9, DecimalSi)),
        ("0.00000012354", q(124, -9, DecimalSi)),
        ("100.035Ki", q(10_243_584, -2, BinarySi)),
        ("0.5Mi", q(1 << 19, 0, BinarySi)),
        ("0.025Ti", q(274_877_906_944, -1, BinarySi)),
        ("0.000000000001Ki", q(2, -9, DecimalSi)),
        (".001", q(1, -3, DecimalSi)),
        ("1.", q(1, 0, DecimalSi)),
        ("1.G", q(1, 9, DecimalSi)),
        ("-2k", q(-2, 3, DecimalSi)),
        ("+5m", q(5, -3, DecimalSi)),
    ];
    for (text, want) in cases {
        assert_eq!(Quantity::parse(text), Ok(want), "{text}");
    }
}

#[test]
fn parses_node_allocatable_and_reprints_canonically() {
    let cases = [
        ("8", 8_000_000_000, "8"),
        ("7900m", 7_900_000_000, "7900m"),
        ("1.5", 1_500_000_000, "1500m"),
        ("1500m", 1_500_000_000, "1500m"),
        ("0.1m", 100_000, "100u"),
    ];
    for (text, nanos, canonical) in cases {
        let cpu: Quantity = text.parse().unwrap();
        assert_eq!(cpu.nano_value(), nanos, "{text}");
        assert_eq!(cpu.to_string(), canonical, "{text}");
    }
    let memory = Quantity::parse("32Gi").unwrap();
    assert_eq!(memory.value(), 32 << 30);
    assert_eq!(Quantity::parse("33554432Ki").unwrap(), memory);
    assert_eq!(Quantity::parse("33554432Ki").unwrap().to_string(), "32Gi");
    assert_eq!(Quantity::parse("1.5Gi").unwrap().to_string(), "1536Mi");
    assert_eq!(Quantity::parse("1250m").unwrap().milli_value(), 1250);
    assert_eq!(Quantity::parse("1n").unwrap().milli_value(), 1, "MilliValue rounds up");
    assert_eq!(Quantity::parse("-1n").unwrap().milli_value(), 0, "ceil towards +inf");
}

#[test]
fn rejects_malformed_quantities() {
    let cases = [
        ("", QuantityError::Format),
        ("abc", QuantityError::Format),
        ("Ki", QuantityError::Format),
        (".", QuantityError::Format),
        ("-", QuantityError::Format),
        ("1.2.3", QuantityError::Format),
        ("1 ", QuantityError::Format),
        ("1K", QuantityError::Suffix),
        ("1e", QuantityError::Suffix),
        ("1Kii", QuantityError::Suffix),
        ("1e1000", QuantityError::TooLarge),
        ("1e40", QuantityError::TooLarge),
        ("99999999999999999999999999999999999999999", QuantityError::TooLarge),
    ];
    for (text, want) in cases {
        assert_eq!(Quantity::parse(text), Err(want), "{text:?}");
    }
}

/// Table pod rows: the sum of the containers' quantities, printed like Go's `Add` + `String`.
#[test]
fn sums_keep_the_addends_format() {
    let cpu = |n| Quantity::cpu_from_nanocores(n);
    let mem = |b| Quantity::memory_from_bytes(b);
    let cases = [
        (Quantity::sum([cpu(1000), cpu(1000)]), "2u"),
        (Quantity::sum([cpu(250_000_000), cpu(250_000_000)]), "500m"),
        (Quantity::sum([cpu(1_723_946), cpu(276_054)]), "2m"),
        (Quantity::sum([cpu(0), cpu(0)]), "0"),
        (Quantity::sum([mem(500), mem(500)]), "1k"),
        (Quantity::sum([mem(1024), mem(512)]), "1536"),
        (Quantity::sum([mem(1 << 20), mem(1 << 20)]), "2Mi"),
        (Quantity::sum([mem(0), mem(1024)]), "1Ki"),
        (Quantity::sum([mem(u64::MAX), mem(u64::MAX)]), "36893488147419103220"),
        (Quantity::sum([]), "0"),
    ];
    for (sum, want) in cases {
        assert_eq!(sum.expect("in range").to_string(), want);
    }
    let formats = Quantity::sum([mem(0), mem(1024)]).unwrap().format();
    assert_eq!(
        formats,
        Format::BinarySi,
        "a zero first addend takes the next one's format"
    );
}

#[test]
fn serializes_as_a_json_string() {
    let json = serde_json::to_string(&Quantity::cpu_from_nanocores(500_000_000)).unwrap();
    assert_eq!(json, r#""500m""#);
}

proptest! {
    #[test]
    fn cpu_round_trips(nanocores in any::<u64>()) {
        let text = format_cpu_nanocores(nanocores);
        let parsed = Quantity::parse(&text).unwrap();
        prop_assert_eq!(parsed.nano_value(), lossy(nanocores), "{}", text);
        prop_assert_eq!(parsed, Quantity::cpu_from_nanocores(nanocores));
    }

    #[test]
    fn memory_round_trips(bytes in any::<u64>()) {
        let text = format_memory_bytes(bytes);
        let parsed = Quantity::parse(&text).unwrap();
        // Text need not survive: a parsed "1000000" is DecimalSI and prints "1M", as in Go.
        prop_assert_eq!(parsed.value(), lossy(bytes), "{}", text);
    }

    #[test]
    fn small_memory_round_trips_exactly(bytes in 0u64..(1 << 40)) {
        let text = format_memory_bytes(bytes);
        prop_assert_eq!(Quantity::parse(&text).unwrap().value(), i128::from(bytes));
    }

    #[test]
    fn canonical_strings_are_fixed_points(mantissa in any::<i64>(), scale in -12i32..12, f in 0..3u8) {
        let format = [Format::DecimalSi, Format::BinarySi, Format::DecimalExponent][usize::from(f)];
        let quantity = q(i128::from(mantissa), scale, format);
        let text = quantity.to_string();
        let parsed = Quantity::parse(&text).unwrap();
        prop_assert_eq!(parsed.cmp_value(&quantity), Ordering::Equal, "{}", text);
        // A plain integer printed in BinarySI parses back as DecimalSI (as in Go).
        if format != Format::BinarySi {
            prop_assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn sums_are_exact(values in proptest::collection::vec(any::<u64>(), 0..8)) {
        let sum = Quantity::sum(values.iter().map(|v| Quantity::cpu_from_nanocores(*v))).unwrap();
        let want: i128 = values.iter().map(|v| lossy(*v)).sum();
        prop_assert_eq!(sum.nano_value(), want);
    }
}

fn pushed(push: fn(&mut Vec<u8>, u64), value: u64) -> String {
    let mut out = b"x".to_vec();
    push(&mut out, value);
    String::from_utf8(out[1..].to_vec()).unwrap()
}

#[test]
fn pushed_quantities_match_display_at_the_edges() {
    let edges = [
        0,
        1,
        9,
        10,
        999,
        1000,
        1023,
        1024,
        1025,
        1_000_000,
        1 << 20,
        1 << 60,
        3 << 50,
    ];
    let edges = edges
        .into_iter()
        .chain([i64::MAX as u64 - 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX]);
    for v in edges {
        assert_eq!(pushed(push_cpu_nanocores, v), format_cpu_nanocores(v), "cpu {v}");
        assert_eq!(pushed(push_memory_bytes, v), format_memory_bytes(v), "memory {v}");
    }
}

proptest! {
    #[test]
    fn pushed_quantities_match_display(v in any::<u64>(), zeros in 0u32..19, shift in 0u32..64) {
        for v in [v, v / 10u64.pow(zeros) * 10u64.pow(zeros), (v >> shift) << shift] {
            prop_assert_eq!(pushed(push_cpu_nanocores, v), format_cpu_nanocores(v));
            prop_assert_eq!(pushed(push_memory_bytes, v), format_memory_bytes(v));
        }
    }
}
