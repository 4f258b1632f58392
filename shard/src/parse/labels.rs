//! The `{name="value",...}` block of a sample line: finds the `container`, `pod` and
//! `namespace` labels in any order, skipping others, and unescapes values only when needed.

use super::line::{LineError, skip_blanks};
use std::borrow::Cow;

/// `(namespace, pod, container)`: what names a container series.
pub(super) type ContainerKey<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>);

/// The labels a container series is keyed by; other labels are not kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Labels<'a> {
    pub container: Option<Cow<'a, str>>,
    pub pod: Option<Cow<'a, str>>,
    pub namespace: Option<Cow<'a, str>>,
}

impl<'a> Labels<'a> {
    /// `(namespace, pod, container)`, or [`LineError::MissingLabel`] if one is absent or
    /// empty (an empty value means "no label" in the text format).
    pub(super) fn into_key(self) -> Result<ContainerKey<'a>, LineError> {
        let present = |v: Option<Cow<'a, str>>| v.filter(|v| !v.is_empty());
        match (present(self.namespace), present(self.pod), present(self.container)) {
            (Some(ns), Some(pod), Some(container)) => Ok((ns, pod, container)),
            _ => Err(LineError::MissingLabel),
        }
    }

    fn set(&mut self, name: &[u8], raw: &'a [u8], escaped: bool) -> Result<(), LineError> {
        let slot = match name {
            b"container" => &mut self.container,
            b"pod" => &mut self.pod,
            b"namespace" => &mut self.namespace,
            _ => return Ok(()),
        };
        if slot.is_some() {
            return Err(LineError::DuplicateLabel);
        }
        *slot = Some(value(raw, escaped)?);
        Ok(())
    }
}

/// Parses a label block; `input` starts just after its `{`. Returns the labels and what
/// follows the closing `}`. Blanks may stand between tokens and a trailing comma is allowed,
/// as in Prometheus' own parser.
pub(super) fn parse(mut input: &[u8], max_len: usize) -> Result<(Labels<'_>, &[u8]), LineError> {
    let mut labels = Labels::default();
    loop {
        input = skip_blanks(input);
        if let [b'}', rest @ ..] = input {
            return Ok((labels, rest));
        }
        let (name, rest) = label_name(input)?;
        let rest = expect(b'"', expect(b'=', rest)?)?;
        let (raw, escaped, rest) = quoted(rest)?;
        if raw.len() > max_len {
            return Err(LineError::LabelTooLong);
        }
        labels.set(name, raw, escaped)?;
        input = match skip_blanks(rest) {
            [b',', rest @ ..] => rest,
            rest @ [b'}', ..] => rest,
            _ => return Err(LineError::Labels),
        };
    }
}

/// A label name (`[a-zA-Z_][a-zA-Z0-9_]*`) and the rest.
fn label_name(input: &[u8]) -> Result<(&[u8], &[u8]), LineError> {
    let len = input
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or(input.len());
    match input.first() {
        Some(b) if len > 0 && !b.is_ascii_digit() => Ok(input.split_at(len)),
        _ => Err(LineError::Labels),
    }
}

/// Skips blanks, then `byte`.
fn expect(byte: u8, input: &[u8]) -> Result<&[u8], LineError> {
    match skip_blanks(input) {
        [b, rest @ ..] if *b == byte => Ok(rest),
        _ => Err(LineError::Labels),
    }
}

/// A quoted value; `input` starts after the opening quote. Returns the raw bytes between the
/// quotes, whether they hold a backslash, and what follows the closing quote.
fn quoted(input: &[u8]) -> Result<(&[u8], bool, &[u8]), LineError> {
    let mut escaped = false;
    let mut at = 0;
    loop {
        match memchr::memchr2(b'"', b'\\', &input[at..]) {
            Some(i) if input[at + i] == b'"' => {
                let end = at + i;
                return Ok((&input[..end], escaped, &input[end + 1..]));
            }
            // A backslash escapes the next byte, whatever it is; a lone one at the end is
            // an unterminated value.
            Some(i) if at + i + 1 < input.len() => {
                escaped = true;
                at += i + 2;
            }
            _ => return Err(LineError::Labels),
        }
    }
}

/// The value as text: borrowed unless it has escapes. `\\`, `\"` and `\n` are unescaped;
/// any other escape is kept as written, as Prometheus' `textparse` does.
fn value(raw: &[u8], escaped: bool) -> Result<Cow<'_, str>, LineError> {
    let text = std::str::from_utf8(raw).map_err(|_| LineError::LabelNotUtf8)?;
    if !escaped {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(c @ ('\\' | '"')) => out.push(c),
            Some(other) => out.extend(['\\', other]),
            None => out.push('\\'),
        }
    }
    Ok(Cow::Owned(out))
}
