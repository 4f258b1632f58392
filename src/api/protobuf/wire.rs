//! The protobuf wire format as the Metrics API writes it: field keys, varints, strings and
//! length-delimited sub-messages, appended to one `Vec<u8>` in a single forward pass (prost's
//! varint primitives; no message structs on the hot path).
//!
//! A sub-message is written in place after a one-byte length placeholder; when it turns out to
//! be 128 bytes or longer, its bytes move up to make room for the longer varint. Most
//! sub-messages of a metrics list (quantities, usage entries, containers, times) are short, so
//! the move happens about once per list item.

use prost::encoding::{encode_varint, encoded_len_varint};

/// Wire type of varints (`int32`, `int64`, `bool`).
const VARINT: u8 = 0;
/// Wire type of strings, bytes and sub-messages.
const LEN: u8 = 2;

/// Appends the key of field `number` with wire type `wire_type` (field numbers here are < 16,
/// so a key is one byte).
fn key(out: &mut Vec<u8>, number: u8, wire_type: u8) {
    debug_assert!(number < 16, "one-byte keys only");
    out.push(number << 3 | wire_type);
}

/// Field `number` as a varint; written even when 0, as Kubernetes' gogo code writes every
/// non-pointer field.
pub fn varint(out: &mut Vec<u8>, number: u8, value: u64) {
    key(out, number, VARINT);
    encode_varint(value, out);
}

/// Field `number` as a signed 64-bit integer (`int64`: two's complement, ten bytes if negative).
pub fn int64(out: &mut Vec<u8>, number: u8, value: i64) {
    varint(out, number, value as u64);
}

/// Field `number` as length-delimited bytes (a `string` or `bytes`), written even when empty.
pub fn bytes(out: &mut Vec<u8>, number: u8, value: &[u8]) {
    key(out, number, LEN);
    encode_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

/// Field `number` as a string.
pub fn string(out: &mut Vec<u8>, number: u8, value: &str) {
    bytes(out, number, value.as_bytes());
}

/// Field `number` as a sub-message whose fields `body` appends.
pub fn message(out: &mut Vec<u8>, number: u8, body: impl FnOnce(&mut Vec<u8>)) {
    key(out, number, LEN);
    let length_at = out.len();
    out.push(0);
    body(out);
    let len = out.len() - length_at - 1;
    if len < 0x80 {
        out[length_at] = len as u8;
        return;
    }
    let extra = encoded_len_varint(len as u64) - 1;
    out.resize(out.len() + extra, 0);
    out.copy_within(length_at + 1..length_at + 1 + len, length_at + 1 + extra);
    let mut prefix = Vec::with_capacity(extra + 1);
    encode_varint(len as u64, &mut prefix);
    out[length_at..length_at + prefix.len()].copy_from_slice(&prefix);
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[derive(Clone, PartialEq, Message)]
    struct Outer {
        #[prost(string, optional, tag = "1")]
        name: Option<String>,
        #[prost(message, optional, tag = "2")]
        inner: Option<Inner>,
        #[prost(int64, optional, tag = "3")]
        n: Option<i64>,
    }

    #[derive(Clone, PartialEq, Message)]
    struct Inner {
        #[prost(bytes = "vec", optional, tag = "1")]
        data: Option<Vec<u8>>,
    }

    #[test]
    fn sub_messages_of_any_length_decode() {
        for len in [0, 1, 125, 126, 127, 128, 300, 16_383, 16_384, 70_000] {
            let data = vec![7u8; len];
            let mut out = Vec::new();
            string(&mut out, 1, "x");
            message(&mut out, 2, |o| bytes(o, 1, &data));
            int64(&mut out, 3, -5);
            let decoded = Outer::decode(&out[..]).unwrap();
            assert_eq!(decoded.name.as_deref(), Some("x"));
            assert_eq!(decoded.inner.unwrap().data.unwrap(), data, "len {len}");
            assert_eq!(decoded.n, Some(-5));
            let canonical = Outer {
                name: Some("x".into()),
                inner: Some(Inner { data: Some(data) }),
                n: Some(-5),
            }
            .encode_to_vec();
            assert_eq!(out, canonical, "minimal varints, same bytes as prost");
        }
    }
}
