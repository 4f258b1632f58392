//! JSON bytes exactly as the Kubernetes apiserver library writes them, so that every body this
//! crate builds matches metrics-server byte for byte.
//!
//! - Compact bodies come from Go's `json.NewEncoder(w).Encode(obj)` (apimachinery's JSON
//!   serializer): HTML-sensitive characters `<`, `>`, `&` and U+2028/U+2029 are escaped as
//!   `\u003c` ..., and the body ends with a newline. [`to_vec`] does the same with serde_json,
//!   writing straight into a `Vec<u8>` (no `Value` trees).
//! - Pretty bodies (`?pretty=true`, or a `curl`/`Wget`/browser User-Agent, see [`wants_pretty`])
//!   come from `json.MarshalIndent(obj, "", "  ")`: two-space indent, `{}`/`[]` for empty
//!   containers, no trailing newline. [`indent`] turns a compact body into that form.

use std::fmt::{self, Write as _};
use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

/// `Content-Type` of every JSON body except Tables and aggregated discovery.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// Bytes that may start something Go escapes but serde_json does not: `<`, `>`, `&`, and the
/// first byte of U+2028 / U+2029.
static HTML_SENSITIVE: [bool; 256] = {
    let mut table = [false; 256];
    table[b'<' as usize] = true;
    table[b'>' as usize] = true;
    table[b'&' as usize] = true;
    table[0xE2] = true;
    table
};

/// A serde_json formatter that escapes strings the way Go's `encoding/json` does.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        while let Some(offset) = bytes[start..].iter().position(|&b| HTML_SENSITIVE[usize::from(b)]) {
            let i = start + offset;
            let escape: &[u8] = match (bytes[i], bytes.get(i + 1..i + 3)) {
                (b'<', _) => b"\\u003c",
                (b'>', _) => b"\\u003e",
                (b'&', _) => b"\\u0026",
                // U+2028 and U+2029 are E2 80 A8 / E2 80 A9 in UTF-8.
                (_, Some([0x80, 0xA8])) => b"\\u2028",
                (_, Some([0x80, 0xA9])) => b"\\u2029",
                _ => {
                    writer.write_all(&bytes[start..=i])?;
                    start = i + 1;
                    continue;
                }
            };
            writer.write_all(&bytes[start..i])?;
            writer.write_all(escape)?;
            start = i + if bytes[i] == 0xE2 { 3 } else { 1 };
        }
        writer.write_all(&bytes[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: serde_json::ser::CharEscape,
    ) -> io::Result<()> {
        CompactFormatter.write_char_escape(writer, char_escape)
    }
}

/// Go's `Encoder.Encode`: compact JSON with Go's string escaping and a trailing newline.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    to_vec_with_capacity(value, 256)
}

/// [`to_vec`] into a buffer of the given starting capacity (large lists: about 300 bytes a pod).
pub fn to_vec_with_capacity<T: Serialize + ?Sized>(value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    write(&mut out, value);
    out.push(b'\n');
    out
}

/// Appends `value` as compact Go-style JSON (no newline).
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let mut serializer = serde_json::Serializer::with_formatter(&mut *out, GoFormatter);
    // Our types only have string keys and infallible fields, and writing to a Vec cannot fail.
    value
        .serialize(&mut serializer)
        .expect("serialising API types to memory cannot fail");
}

/// Bytes that serde_json escapes in strings (control characters, `"`, `\\`) or that may start
/// something Go escapes ([`HTML_SENSITIVE`]).
static NEEDS_ESCAPE: [bool; 256] = {
    let mut table = HTML_SENSITIVE;
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Appends `s` as a JSON string literal, byte for byte what [`write`] writes for a `&str`: a
/// plain copy between quotes unless some byte needs escaping, then the serde path.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| NEEDS_ESCAPE[usize::from(b)]) {
        return write(out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Serialises a short `Display` value (a quantity, duration or time) as one JSON string, formatted
/// on the stack: cheaper than `collect_str`, which escapes every piece separately.
pub(crate) fn serialize_display<S: serde::Serializer, T: fmt::Display + ?Sized>(
    serializer: S,
    value: &T,
) -> Result<S::Ok, S::Error> {
    let mut text = StackStr { buf: [0; 64], len: 0 };
    match write!(text, "{value}") {
        Ok(()) => serializer.serialize_str(text.as_str()),
        Err(_) => serializer.collect_str(value),
    }
}

/// A fixed-capacity string on the stack; writing past the end fails.
struct StackStr {
    buf: [u8; 64],
    len: usize,
}

impl StackStr {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever copied in, so the bytes are valid UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Go's `isPrettyPrint`: `?pretty=<bool>` decides if present and parseable (`strconv.ParseBool`),
/// otherwise a User-Agent starting with `curl`, `Wget` or `Mozilla/5.0` gets pretty output.
pub fn wants_pretty(pretty_param: Option<&str>, user_agent: Option<&str>) -> bool {
    if let Some(value) = pretty_param.filter(|v| !v.is_empty()) {
        return matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True");
    }
    let agent = user_agent.unwrap_or("");
    ["curl", "Wget", "Mozilla/5.0"]
        .iter()
        .any(|prefix| agent.starts_with(prefix))
}

/// Re-indents compact JSON (as produced by [`to_vec`]) like Go's `json.MarshalIndent(v, "", "  ")`.
/// A trailing newline is dropped.
pub fn indent(compact: &[u8]) -> Vec<u8> {
    let body = compact.strip_suffix(b"\n").unwrap_or(compact);
    let mut out = Vec::with_capacity(body.len() * 2);
    let mut depth = 0usize;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        match b {
            b'"' => {
                let end = string_end(body, i);
                out.extend_from_slice(&body[i..end]);
                i = end;
                continue;
            }
            b'{' | b'[' if matches!((b, body.get(i + 1)), (b'{', Some(b'}')) | (b'[', Some(b']'))) => {
                out.extend_from_slice(&body[i..i + 2]);
                i += 2;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                out.push(b);
                newline(&mut out, depth);
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(b);
            }
            b',' => {
                out.push(b);
                newline(&mut out, depth);
            }
            b':' => out.extend_from_slice(b": "),
            b' ' | b'\n' | b'\r' | b'\t' => {}
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

fn newline(out: &mut Vec<u8>, depth: usize) {
    out.push(b'\n');
    out.extend(std::iter::repeat_n(b' ', 2 * depth));
}

/// Index just past the string literal that starts at `start` (a `"`).
fn string_end(body: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    body.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html_characters_like_go() {
        let text = "a<b>&c\u{2028}d\u{2029}e\"f\\g\nh\u{1}é";
        let out = to_vec(&text);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\u003cb\\u003e\\u0026c\\u2028d\\u2029e\\\"f\\\\g\\nh\\u0001é\"\n"
        );
    }

    #[test]
    fn pushed_strings_match_serde() {
        let texts = [
            "",
            "plain-name.x_y",
            "a<b",
            "q\"s",
            "back\\slash",
            "nl\n",
            "\u{7f}\u{1}",
            "é\u{2028}",
            "\u{2030}",
        ];
        for text in texts {
            let mut pushed = Vec::new();
            push_str(&mut pushed, text);
            let mut serde = Vec::new();
            write(&mut serde, text);
            assert_eq!(pushed, serde, "{text:?}");
        }
    }

    #[test]
    fn compact_output_ends_with_a_newline() {
        assert_eq!(to_vec(&serde_json::json!({"a": [1, 2]})), b"{\"a\":[1,2]}\n");
    }

    #[test]
    fn indents_like_marshal_indent() {
        let compact = b"{\"kind\":\"NodeMetricsList\",\"metadata\":{},\"items\":[],\
            \"x\":[{\"a\":\"b,c:{\\\"\"},1]}\n";
        let want = "{\n  \"kind\": \"NodeMetricsList\",\n  \"metadata\": {},\n  \"items\": [],\n  \
            \"x\": [\n    {\n      \"a\": \"b,c:{\\\"\"\n    },\n    1\n  ]\n}";
        assert_eq!(String::from_utf8(indent(compact)).unwrap(), want);
    }

    #[test]
    fn pretty_follows_the_query_then_the_user_agent() {
        assert!(wants_pretty(Some("true"), None));
        assert!(wants_pretty(Some("1"), Some("kubectl/v1.32.5")));
        assert!(!wants_pretty(Some("false"), Some("curl/8.0")));
        assert!(!wants_pretty(Some("yes"), Some("curl/8.0")), "unparseable is false");
        assert!(wants_pretty(Some(""), Some("curl/8.0")));
        assert!(wants_pretty(None, Some("Wget/1.21")));
        assert!(wants_pretty(None, Some("Mozilla/5.0 (X11)")));
        assert!(!wants_pretty(None, Some("kubectl.1.32/v1.32.5 (linux/amd64)")));
        assert!(!wants_pretty(None, None));
    }
}
