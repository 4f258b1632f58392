//! Field selectors (apimachinery `fields.ParseSelector`).

use super::*;

/// The comparison of one [`FieldRequirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldOp {
    /// `field=value` or `field==value`.
    Eq,
    /// `field!=value`.
    NotEq,
}

/// One term of a [`FieldSelector`], such as `metadata.name=web-0`. The field name is kept as
/// written (it is not validated or unescaped); the value is unescaped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldRequirement {
    /// The field path, e.g. `metadata.namespace`.
    pub field: String,
    /// The comparison.
    pub op: FieldOp,
    /// The value, unescaped; may be empty.
    pub value: String,
}

impl FieldRequirement {
    /// Whether a field whose value is `actual` satisfies this requirement.
    pub fn matches(&self, actual: &str) -> bool {
        match self.op {
            FieldOp::Eq => actual == self.value,
            FieldOp::NotEq => actual != self.value,
        }
    }
}

/// Writes `field=value` or `field!=value` with `\`, `,` and `=` in the value escaped.
impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            FieldOp::Eq => "=",
            FieldOp::NotEq => "!=",
        };
        write!(f, "{}{op}", self.field)?;
        for c in self.value.chars() {
            if matches!(c, '\\' | ',' | '=') {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A parsed field selector: a conjunction of [`FieldRequirement`]s. The default (empty)
/// selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldSelector {
    pub(super) reqs: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses a selector as apimachinery `fields.ParseSelector`: terms `field=value`,
    /// `field==value` or `field!=value` separated by `,`. In a value, `\,`, `\=` and `\\` stand
    /// for `,`, `=` and `\`; any other backslash, or a bare `=`, is an error. A term splits at
    /// its first operator. Like apimachinery, whitespace is not trimmed (it is part of the
    /// field or value), empty terms are skipped (`a=b,` is `a=b`, and `""` selects everything),
    /// field names are not checked (see [`requirements`](Self::requirements)), and the
    /// requirements are sorted by their text as written.
    ///
    /// # Errors
    ///
    /// [`SelectorError::TooLong`], [`SelectorError::MissingOperator`],
    /// [`SelectorError::InvalidEscape`] or [`SelectorError::UnescapedChar`], for the first bad
    /// term.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        check_len(input)?;
        let mut terms = Vec::new();
        for (pos, term) in split_terms(input) {
            if !term.is_empty() {
                terms.push((term, parse_term(term, pos)?));
            }
        }
        terms.sort_by(|a, b| a.0.cmp(b.0));
        Ok(Self {
            reqs: terms.into_iter().map(|(_, req)| req).collect(),
        })
    }

    /// Whether the object satisfies every requirement; `get` returns a field's value. As in
    /// apimachinery (`fields.Set.Get`), a field `get` does not know (returns `None` for)
    /// counts as the empty string: `f=` matches it, `f=x` does not, `f!=x` does. Callers that
    /// want unknown fields to be an error should check [`requirements`](Self::requirements)
    /// first.
    pub fn matches<'v>(&self, get: impl Fn(&str) -> Option<&'v str>) -> bool {
        self.reqs.iter().all(|r| r.matches(get(&r.field).unwrap_or("")))
    }

    /// Whether the selector has no requirements, and so matches everything.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The requirements, e.g. to reject fields an API does not support.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.reqs
    }
}

/// Writes the canonical form, as apimachinery `Selector.String()`: `==` becomes `=`, values
/// are escaped, terms are joined by `,`. The output parses back to the same requirements.
impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_joined(f, &self.reqs)
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Splits at commas not escaped by a backslash, keeping the backslashes; each term comes with
/// its byte offset.
pub(super) fn split_terms(input: &str) -> Vec<(usize, &str)> {
    let mut terms = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in input.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push((start, &input[start..i]));
            start = i + 1;
        }
    }
    terms.push((start, &input[start..]));
    terms
}

/// Parses one non-empty term that starts at byte `pos` of the selector.
pub(super) fn parse_term(term: &str, pos: usize) -> Result<FieldRequirement, SelectorError> {
    let Some((field, op, value_at)) = split_term(term) else {
        let term = term.to_string();
        return Err(SelectorError::MissingOperator { pos, term });
    };
    let value = unescape(&term[value_at..], pos + value_at)?;
    Ok(FieldRequirement {
        field: field.to_string(),
        op,
        value,
    })
}

/// The field before the first operator, the operator, and where the value starts.
pub(super) fn split_term(term: &str) -> Option<(&str, FieldOp, usize)> {
    const OPERATORS: [(&str, FieldOp); 3] = [("!=", FieldOp::NotEq), ("==", FieldOp::Eq), ("=", FieldOp::Eq)];
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        if let Some((text, op)) = OPERATORS.iter().find(|(text, _)| rest.starts_with(text)) {
            return Some((&term[..i], *op, i + text.len()));
        }
    }
    None
}

/// apimachinery `fields.UnescapeValue`; `pos` is where `raw` starts in the selector.
pub(super) fn unescape(raw: &str, pos: usize) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(raw.len());
    let mut backslash_at = None;
    for (i, c) in raw.char_indices() {
        if let Some(at) = backslash_at.take() {
            if !matches!(c, '\\' | ',' | '=') {
                let sequence = format!("\\{c}");
                return Err(SelectorError::InvalidEscape {
                    pos: pos + at,
                    sequence,
                });
            }
            out.push(c);
        } else if c == '\\' {
            backslash_at = Some(i);
        } else if c == ',' || c == '=' {
            return Err(SelectorError::UnescapedChar { pos: pos + i, ch: c });
        } else {
            out.push(c);
        }
    }
    if let Some(at) = backslash_at {
        let sequence = "\\".to_string();
        return Err(SelectorError::InvalidEscape {
            pos: pos + at,
            sequence,
        });
    }
    Ok(out)
}
