//! Go's `strconv.FormatFloat(v, 'g', -1, 64)`, the number format of the Prometheus text
//! exposition written by the kubelet: shortest round-trip digits, exponent form when the decimal
//! exponent is below -4 or at least 6 (`1.137475584e+09`, `6197.005020909`, `3.3792e+06`).

use std::fmt::Write as _;

/// A fixed stack buffer for formatting without allocating.
struct StackBuf {
    buf: [u8; 48],
    len: usize,
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Appends `v` formatted as Go's `%g` with shortest precision.
pub fn write_go_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    let mut sci = StackBuf { buf: [0; 48], len: 0 };
    write!(sci, "{v:e}").expect("an f64 in exponent form fits in 48 bytes");
    let sci = &sci.buf[..sci.len];
    let e_at = sci.iter().position(|&b| b == b'e').expect("exponent form has an 'e'");
    let exp: i32 = std::str::from_utf8(&sci[e_at + 1..])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if !(-4..6).contains(&exp) {
        out.extend_from_slice(&sci[..e_at]);
        out.extend_from_slice(if exp < 0 { b"e-" } else { b"e+" });
        let abs = exp.unsigned_abs();
        if abs < 10 {
            out.push(b'0');
        }
        let mut digits = StackBuf { buf: [0; 48], len: 0 };
        write!(digits, "{abs}").expect("fits");
        out.extend_from_slice(&digits.buf[..digits.len]);
    } else {
        let mut plain = StackBuf { buf: [0; 48], len: 0 };
        write!(plain, "{v}").expect("a plain f64 with exponent in -4..6 fits in 48 bytes");
        out.extend_from_slice(&plain.buf[..plain.len]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(v: f64) -> String {
        let mut out = Vec::new();
        write_go_float(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn matches_go_formatting_seen_in_kubelet_output() {
        assert_eq!(go(6197.005020909), "6197.005020909");
        assert_eq!(go(1.137475584e9), "1.137475584e+09");
        assert_eq!(go(3_379_200.0), "3.3792e+06");
        assert_eq!(go(9_015_296.0), "9.015296e+06");
        assert_eq!(go(1.7506078418297591e9), "1.7506078418297591e+09");
        assert_eq!(go(184.554461619), "184.554461619");
        assert_eq!(go(0.0), "0");
        assert_eq!(go(1.0), "1");
        assert_eq!(go(123456.789), "123456.789");
        assert_eq!(go(0.0001234), "0.0001234");
        assert_eq!(go(0.00001234), "1.234e-05");
        assert_eq!(go(1e21), "1e+21");
        assert_eq!(go(-2.5e7), "-2.5e+07");
        assert_eq!(go(f64::NAN), "NaN");
        assert_eq!(go(f64::INFINITY), "+Inf");
    }

    #[test]
    fn round_trips() {
        for v in [0.1, 1.0 / 3.0, 12345678.901234, 1e-300, 6.02214076e23, 987654.321] {
            assert_eq!(go(v).parse::<f64>().unwrap(), v);
        }
    }
}
