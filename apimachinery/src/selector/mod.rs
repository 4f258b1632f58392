//! Kubernetes label and field selectors: parse the `labelSelector` and `fieldSelector` query
//! strings and match objects against them.
//!
//! Pure (no IO). kubesim's apiserver filters nodes and pods with it; the server parses the
//! request's selectors and `--node-selector` with it, and shard owners filter the rows a query
//! asks for (`src/query/answer.rs`) before they travel. Parsing and matching
//! follow k8s.io/apimachinery `labels.Parse` (`pkg/labels/selector.go`) and
//! `fields.ParseSelector` (`pkg/fields/selector.go`); the few deliberate differences are listed
//! on [`LabelSelector::parse`] and [`FieldSelector::parse`].
//!
//! ```
//! use apimachinery::selector::{FieldSelector, LabelSelector};
//! use std::collections::BTreeMap;
//!
//! let sel = LabelSelector::parse("tier in (web, db), !canary").unwrap();
//! let labels = BTreeMap::from([("tier".to_string(), "web".to_string())]);
//! assert!(sel.matches(&labels));
//! assert_eq!(sel.to_string(), "!canary,tier in (db,web)");
//!
//! let fields = FieldSelector::parse("metadata.namespace=kube-system").unwrap();
//! assert!(fields.matches(|f| (f == "metadata.namespace").then_some("kube-system")));
//! ```

mod field;
mod label;
mod parser;
mod validate;

pub use field::*;
pub use label::*;
use parser::*;
use validate::*;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

/// Longest selector string, in bytes, that [`LabelSelector::parse`] and [`FieldSelector::parse`]
/// accept; longer input is [`SelectorError::TooLong`].
pub const MAX_SELECTOR_LEN: usize = 8192;

/// Longest label name and label value, in bytes (apimachinery `qualifiedNameMaxLength`).
pub(super) const MAX_NAME_LEN: usize = 63;
/// Longest label key prefix, in bytes (apimachinery `DNS1123SubdomainMaxLength`).
pub(super) const MAX_PREFIX_LEN: usize = 253;

/// Why a selector string was rejected. Every variant describes bad input, so none is worth
/// retrying. `pos` is a byte offset into the selector string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The input is longer than [`MAX_SELECTOR_LEN`] bytes.
    #[error("selector is {len} bytes long, the limit is {max} bytes", max = MAX_SELECTOR_LEN)]
    TooLong {
        /// Length of the rejected input in bytes.
        len: usize,
    },
    /// A label selector token that is not allowed where it stands.
    #[error("found {} at byte {pos}, expected {expected}", describe(.found))]
    Syntax {
        /// Where the token starts.
        pos: usize,
        /// The token as written; empty for the end of the string.
        found: String,
        /// What the parser wanted instead.
        expected: &'static str,
    },
    /// A label requirement whose operator is not `=`, `==`, `!=`, `in`, `notin`, `>` or `<`.
    #[error(
        "unknown operator {} at byte {pos}, expected one of =, ==, !=, in, notin, >, <",
        describe(.found)
    )]
    UnknownOperator {
        /// Where the operator starts.
        pos: usize,
        /// The operator as written.
        found: String,
    },
    /// `key in ()` or `key notin ()`: the value set is empty.
    #[error("empty value set '()' for key '{key}' at byte {pos}; write '(,)' for the empty value")]
    EmptySet {
        /// Where the `(` is.
        pos: usize,
        /// The label key of the requirement.
        key: String,
    },
    /// A label key that is not a valid qualified name.
    #[error("invalid label key '{key}' at byte {pos}: {reason}")]
    InvalidKey {
        /// Where the key starts.
        pos: usize,
        /// The key as written.
        key: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A label value that is not valid, or not an integer after `>` or `<`.
    #[error("invalid label value '{value}' at byte {pos}: {reason}")]
    InvalidValue {
        /// Where the value starts.
        pos: usize,
        /// The value as written.
        value: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A field selector term without `=`, `==` or `!=`.
    #[error(
        "field selector term '{term}' at byte {pos} has no operator, \
         expected field=value, field==value or field!=value"
    )]
    MissingOperator {
        /// Where the term starts.
        pos: usize,
        /// The term as written.
        term: String,
    },
    /// A backslash in a field selector value not followed by `\`, `,` or `=`.
    #[error(
        "invalid escape sequence '{sequence}' at byte {pos} in field selector value, \
         only \\\\, \\, and \\= are allowed"
    )]
    InvalidEscape {
        /// Where the backslash is.
        pos: usize,
        /// The backslash and the character after it, if any.
        sequence: String,
    },
    /// A `,` or `=` in a field selector value without a backslash before it.
    #[error("unescaped '{ch}' at byte {pos} in field selector value, write '\\{ch}'")]
    UnescapedChar {
        /// Where the character is.
        pos: usize,
        /// The character.
        ch: char,
    },
}

/// Quotes a token for an error message; the empty token is the end of the string.
pub(super) fn describe(found: &str) -> String {
    if found.is_empty() {
        "end of string".to_string()
    } else {
        format!("'{found}'")
    }
}

pub(super) fn check_len(input: &str) -> Result<(), SelectorError> {
    if input.len() > MAX_SELECTOR_LEN {
        return Err(SelectorError::TooLong { len: input.len() });
    }
    Ok(())
}

/// Writes `items` joined by `,`, the canonical separator of both selector kinds.
pub(super) fn write_joined<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
