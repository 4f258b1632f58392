//! Label key and value validation (apimachinery `IsQualifiedName`, `IsValidLabelValue`).

use super::*;

/// Why `key` is not `[prefix/]name`, or `None` if it is valid.
pub(super) fn key_problem(key: &str) -> Option<&'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if name.contains('/') {
        return Some(
            "must be a name with an optional DNS subdomain prefix and '/' \
             (e.g. 'example.com/MyName'), with at most one '/'",
        );
    }
    prefix.and_then(prefix_problem).or_else(|| name_problem(name))
}

pub(super) fn prefix_problem(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        Some("prefix part must be non-empty")
    } else if prefix.len() > MAX_PREFIX_LEN {
        Some("prefix part must be no more than 253 characters")
    } else if !prefix.split('.').all(is_dns_label) {
        Some(
            "prefix part must be a lowercase RFC 1123 subdomain: lowercase alphanumerics, '-' \
             and '.', starting and ending with an alphanumeric (e.g. 'example.com')",
        )
    } else {
        None
    }
}

pub(super) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("name part must be non-empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("name part must be no more than 63 characters")
    } else if !is_edged(name, |b| b.is_ascii_alphanumeric(), is_value_byte) {
        Some(
            "name part must consist of alphanumerics, '-', '_' or '.', \
             starting and ending with an alphanumeric (e.g. 'MyName', 'my.name', '123-abc')",
        )
    } else {
        None
    }
}

pub(super) fn value_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        None
    } else if value.len() > MAX_NAME_LEN {
        Some("must be no more than 63 characters")
    } else if !is_edged(value, |b| b.is_ascii_alphanumeric(), is_value_byte) {
        Some(
            "must be empty or consist of alphanumerics, '-', '_' or '.', \
             starting and ending with an alphanumeric (e.g. 'MyValue', 'my_value', '12345')",
        )
    } else {
        None
    }
}

pub(super) fn is_value_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

pub(super) fn is_dns_label(label: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    is_edged(label, edge, |b| edge(b) || b == b'-')
}

/// Non-empty, first and last byte pass `edge`, every byte passes `inner`.
pub(super) fn is_edged(s: &str, edge: impl Fn(u8) -> bool, inner: impl Fn(u8) -> bool) -> bool {
    match (s.bytes().next(), s.bytes().last()) {
        (Some(first), Some(last)) => edge(first) && edge(last) && s.bytes().all(inner),
        _ => false,
    }
}
