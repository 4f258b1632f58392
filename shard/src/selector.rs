//! Kubernetes label and field selectors: parse the `labelSelector` and `fieldSelector` query
//! strings and match objects against them.
//!
//! Pure (no IO). The fake apiserver in `chaos/` filters nodes and pods with it, and shard owners
//! filter the samples a query asks for before `query::merge` sees them. Parsing and matching
//! follow k8s.io/apimachinery `labels.Parse` (`pkg/labels/selector.go`) and
//! `fields.ParseSelector` (`pkg/fields/selector.go`); the few deliberate differences are listed
//! on [`LabelSelector::parse`] and [`FieldSelector::parse`].
//!
//! ```
//! use shard::selector::{FieldSelector, LabelSelector};
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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

/// Longest selector string, in bytes, that [`LabelSelector::parse`] and [`FieldSelector::parse`]
/// accept; longer input is [`SelectorError::TooLong`].
pub const MAX_SELECTOR_LEN: usize = 8192;

/// Longest label name and label value, in bytes (apimachinery `qualifiedNameMaxLength`).
const MAX_NAME_LEN: usize = 63;
/// Longest label key prefix, in bytes (apimachinery `DNS1123SubdomainMaxLength`).
const MAX_PREFIX_LEN: usize = 253;

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
fn describe(found: &str) -> String {
    if found.is_empty() {
        "end of string".to_string()
    } else {
        format!("'{found}'")
    }
}

fn check_len(input: &str) -> Result<(), SelectorError> {
    if input.len() > MAX_SELECTOR_LEN {
        return Err(SelectorError::TooLong { len: input.len() });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Labels
// ---------------------------------------------------------------------------------------------

/// Read access to an object's labels, which is all the matcher needs.
pub trait Labels {
    /// The value of label `key`, or `None` if the object has no such label.
    fn get(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

/// A linear scan; if a key appears twice, the first pair wins.
impl Labels for [(String, String)] {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// A linear scan; if a key appears twice, the first pair wins.
impl Labels for Vec<(String, String)> {
    fn get(&self, key: &str) -> Option<&str> {
        <[(String, String)] as Labels>::get(self, key)
    }
}

/// The operator of one label [`Requirement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelOp {
    /// `k=v`: the label exists and equals the value.
    Equals,
    /// `k==v`: the same test as `Equals`, kept apart (as apimachinery does) so that
    /// `Display` writes it back as `==`.
    DoubleEquals,
    /// `k!=v`: the label is missing or has another value.
    NotEquals,
    /// `k in (a,b)`: the label exists and its value is in the set.
    In,
    /// `k notin (a,b)`: the label is missing or its value is not in the set.
    NotIn,
    /// `k`: the label exists.
    Exists,
    /// `!k`: the label is missing.
    DoesNotExist,
    /// `k>5`: the label exists, parses as an `i64` and is greater than the value.
    GreaterThan,
    /// `k<5`: the label exists, parses as an `i64` and is less than the value.
    LessThan,
}

impl LabelOp {
    /// The operator as written in a selector: `=`, `==`, `!=`, `in`, `notin`, `>`, `<`, `!`
    /// for `DoesNotExist` and `""` for `Exists`.
    pub fn as_str(self) -> &'static str {
        match self {
            LabelOp::Equals => "=",
            LabelOp::DoubleEquals => "==",
            LabelOp::NotEquals => "!=",
            LabelOp::In => "in",
            LabelOp::NotIn => "notin",
            LabelOp::Exists => "",
            LabelOp::DoesNotExist => "!",
            LabelOp::GreaterThan => ">",
            LabelOp::LessThan => "<",
        }
    }
}

/// One requirement of a [`LabelSelector`], such as `tier in (db,web)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    op: LabelOp,
    values: Vec<String>,
}

impl Requirement {
    /// The label key, validated as a qualified name.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn op(&self) -> LabelOp {
        self.op
    }

    /// The values, sorted and without duplicates: none for `Exists` and `DoesNotExist`, one
    /// for `=`, `==`, `!=`, `>` and `<` (an `i64` for the last two), one or more for `in` and
    /// `notin`. A value may be empty.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this requirement. A missing label satisfies only `!=`,
    /// `notin` and `!k`.
    pub fn matches(&self, labels: &(impl Labels + ?Sized)) -> bool {
        let got = labels.get(&self.key);
        match self.op {
            LabelOp::Equals | LabelOp::DoubleEquals | LabelOp::In => got.is_some_and(|v| self.has_value(v)),
            LabelOp::NotEquals | LabelOp::NotIn => got.is_none_or(|v| !self.has_value(v)),
            LabelOp::Exists => got.is_some(),
            LabelOp::DoesNotExist => got.is_none(),
            LabelOp::GreaterThan | LabelOp::LessThan => got.is_some_and(|v| self.compare(v)),
        }
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.binary_search_by(|v| v.as_str().cmp(value)).is_ok()
    }

    /// `>` or `<` against the bound; a label value that is not an `i64` never matches.
    fn compare(&self, label: &str) -> bool {
        let bound = self.values.first().and_then(|v| v.parse::<i64>().ok());
        match (label.parse::<i64>(), bound) {
            (Ok(label), Some(bound)) if self.op == LabelOp::GreaterThan => label > bound,
            (Ok(label), Some(bound)) => label < bound,
            _ => false,
        }
    }
}

/// Writes the requirement as apimachinery `Requirement.String()` does: `k=v`, `k==v`, `k!=v`,
/// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>5`, `k<5`.
impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map_or("", String::as_str);
        match self.op {
            LabelOp::Exists => write!(f, "{}", self.key),
            LabelOp::DoesNotExist => write!(f, "!{}", self.key),
            LabelOp::In | LabelOp::NotIn if self.values == [""] => {
                // `()` does not parse (see `LabelSelector::parse`), so the lone empty value
                // is written as `(,)`, which does.
                write!(f, "{} {} (,)", self.key, self.op.as_str())
            }
            LabelOp::In | LabelOp::NotIn => {
                write!(f, "{} {} ({})", self.key, self.op.as_str(), self.values.join(","))
            }
            _ => write!(f, "{}{}{}", self.key, self.op.as_str(), first),
        }
    }
}

/// A parsed label selector: a conjunction of [`Requirement`]s. The default (empty) selector
/// matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses a selector with the grammar of apimachinery `labels.Parse`: comma-separated
    /// requirements `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>5`,
    /// `k<5`, with optional spaces, tabs and newlines between tokens. Values may be empty
    /// (`k=`, `k in (a,)`). Keys and values are validated as apimachinery does. The empty
    /// string (or only whitespace) selects everything. Requirements are kept sorted by key
    /// (stable, so requirements on one key keep their order).
    ///
    /// Differences from apimachinery: `k in ()` and `k notin ()` are rejected with
    /// [`SelectorError::EmptySet`] (apimachinery reads them as the set `{""}`; write `(,)` for
    /// that); a NUL byte is an ordinary (invalid) character, not the end of the input; only the
    /// first problem is reported.
    ///
    /// # Errors
    ///
    /// [`SelectorError`] naming the first offending token and its byte offset.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        check_len(input)?;
        let mut reqs = Parser::new(input).parse_all()?;
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { reqs })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &(impl Labels + ?Sized)) -> bool {
        self.reqs.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector has no requirements, and so matches everything.
    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.reqs
    }
}

/// Writes the canonical form, as apimachinery `Selector.String()`: requirements sorted by key,
/// set values sorted, joined by `,` without spaces, e.g. `a=b,c in (x,y),!d`. The output parses
/// back to an equal selector.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, req) in self.reqs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{req}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Label selector lexer and parser (apimachinery `Lexer` and `Parser`)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    End,
    /// A key, a value, or the words `in` and `notin`, which the parser reads as operators
    /// only where an operator is expected.
    Ident(&'a str),
    OpenPar,
    ClosePar,
    Comma,
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
}

impl<'a> Kind<'a> {
    /// The token as written; empty for the end of the string.
    fn text(self) -> &'a str {
        match self {
            Kind::End => "",
            Kind::Ident(s) => s,
            Kind::OpenPar => "(",
            Kind::ClosePar => ")",
            Kind::Comma => ",",
            Kind::Bang => "!",
            Kind::Eq => "=",
            Kind::DoubleEq => "==",
            Kind::NotEq => "!=",
            Kind::Gt => ">",
            Kind::Lt => "<",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind<'a>,
    pos: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the input into tokens, always ending with `Kind::End`. Tokens are cut only at ASCII
/// bytes, so every slice falls on a character boundary.
fn lex(input: &str) -> Vec<Token<'_>> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if is_space(bytes[i]) {
            i += 1;
            continue;
        }
        let (kind, len) = symbol(bytes[i], bytes.get(i + 1).copied()).unwrap_or_else(|| identifier(&input[i..]));
        tokens.push(Token { kind, pos: i });
        i += len;
    }
    tokens.push(Token {
        kind: Kind::End,
        pos: bytes.len(),
    });
    tokens
}

/// The longest operator or punctuation token starting with `b`, as apimachinery's
/// `scanSpecialSymbol` (so `===` is `==` then `=`, and `>=` is `>` then `=`).
fn symbol(b: u8, next: Option<u8>) -> Option<(Kind<'static>, usize)> {
    let token = match (b, next) {
        (b'!', Some(b'=')) => (Kind::NotEq, 2),
        (b'=', Some(b'=')) => (Kind::DoubleEq, 2),
        (b'!', _) => (Kind::Bang, 1),
        (b'=', _) => (Kind::Eq, 1),
        (b'(', _) => (Kind::OpenPar, 1),
        (b')', _) => (Kind::ClosePar, 1),
        (b',', _) => (Kind::Comma, 1),
        (b'>', _) => (Kind::Gt, 1),
        (b'<', _) => (Kind::Lt, 1),
        _ => return None,
    };
    Some(token)
}

/// An identifier runs to the next whitespace or special byte; `rest` starts with neither.
fn identifier(rest: &str) -> (Kind<'_>, usize) {
    let len = rest
        .bytes()
        .position(|b| is_space(b) || is_special(b))
        .unwrap_or(rest.len());
    (Kind::Ident(&rest[..len]), len)
}

/// A value as written and where it starts.
type Spanned<'a> = (&'a str, usize);

struct Parser<'a> {
    /// Never empty; the last token is `Kind::End`.
    tokens: Vec<Token<'a>>,
    /// Index of the next token; never moves past the `End` token.
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Self {
            tokens: lex(input),
            at: 0,
        }
    }

    fn peek(&self) -> Token<'a> {
        self.tokens[self.at]
    }

    fn next(&mut self) -> Token<'a> {
        let token = self.peek();
        if token.kind != Kind::End {
            self.at += 1;
        }
        token
    }

    fn parse_all(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut reqs = Vec::new();
        if self.peek().kind == Kind::End {
            return Ok(reqs);
        }
        loop {
            reqs.push(self.parse_requirement()?);
            let token = self.next();
            match token.kind {
                Kind::End => return Ok(reqs),
                Kind::Comma => {}
                _ => return Err(syntax(token, "',' or end of string")),
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let negated = self.peek().kind == Kind::Bang;
        if negated {
            self.next();
            let key = self.parse_key("a label key after '!'")?;
            return Ok(Requirement {
                key,
                op: LabelOp::DoesNotExist,
                values: Vec::new(),
            });
        }
        let key = self.parse_key("a label key or '!'")?;
        if matches!(self.peek().kind, Kind::End | Kind::Comma) {
            return Ok(Requirement {
                key,
                op: LabelOp::Exists,
                values: Vec::new(),
            });
        }
        let op = self.parse_operator()?;
        let values = match op {
            LabelOp::In | LabelOp::NotIn => self.parse_set(&key)?,
            _ => vec![self.parse_exact_value()?],
        };
        build(key, op, &values)
    }

    fn parse_key(&mut self, expected: &'static str) -> Result<String, SelectorError> {
        let token = self.next();
        let Kind::Ident(key) = token.kind else {
            return Err(syntax(token, expected));
        };
        if let Some(reason) = key_problem(key) {
            let key = key.to_string();
            return Err(SelectorError::InvalidKey {
                pos: token.pos,
                key,
                reason,
            });
        }
        Ok(key.to_string())
    }

    fn parse_operator(&mut self) -> Result<LabelOp, SelectorError> {
        let token = self.next();
        let op = match token.kind {
            Kind::Eq => LabelOp::Equals,
            Kind::DoubleEq => LabelOp::DoubleEquals,
            Kind::NotEq => LabelOp::NotEquals,
            Kind::Gt => LabelOp::GreaterThan,
            Kind::Lt => LabelOp::LessThan,
            Kind::Ident("in") => LabelOp::In,
            Kind::Ident("notin") => LabelOp::NotIn,
            other => {
                let found = other.text().to_string();
                return Err(SelectorError::UnknownOperator { pos: token.pos, found });
            }
        };
        Ok(op)
    }

    /// The value after `=`, `==`, `!=`, `>` or `<`; nothing before `,` or the end means `""`.
    fn parse_exact_value(&mut self) -> Result<Spanned<'a>, SelectorError> {
        let token = self.peek();
        if matches!(token.kind, Kind::End | Kind::Comma) {
            return Ok(("", token.pos));
        }
        self.next();
        match token.kind {
            Kind::Ident(value) => Ok((value, token.pos)),
            _ => Err(syntax(token, "a value")),
        }
    }

    /// `( ... )` after `in` or `notin`.
    fn parse_set(&mut self, key: &str) -> Result<Vec<Spanned<'a>>, SelectorError> {
        let open = self.next();
        if open.kind != Kind::OpenPar {
            return Err(syntax(open, "'(' to open the value set"));
        }
        let first = self.peek();
        match first.kind {
            Kind::Ident(_) | Kind::Comma => {}
            Kind::ClosePar => {
                let key = key.to_string();
                return Err(SelectorError::EmptySet { pos: open.pos, key });
            }
            _ => return Err(syntax(first, "a value, ',' or ')'")),
        }
        let values = self.parse_set_items()?;
        let close = self.next();
        if close.kind != Kind::ClosePar {
            return Err(syntax(close, "')'"));
        }
        Ok(values)
    }

    /// The items inside `( ... )`, up to but not including `)`, with apimachinery's
    /// `parseIdentifiersList` rules for empty items: `(,a)` and `(a,)` add `""`, `(a,,b)` is
    /// `a`, `""`, `b`.
    fn parse_set_items(&mut self) -> Result<Vec<Spanned<'a>>, SelectorError> {
        let mut values = Vec::new();
        loop {
            let token = self.next();
            match token.kind {
                Kind::Ident(value) => {
                    values.push((value, token.pos));
                    let after = self.peek();
                    match after.kind {
                        Kind::Comma => {}
                        Kind::ClosePar => return Ok(values),
                        _ => return Err(syntax(after, "',' or ')'")),
                    }
                }
                Kind::Comma => {
                    if values.is_empty() {
                        values.push(("", token.pos));
                    }
                    let after = self.peek();
                    match after.kind {
                        Kind::ClosePar => {
                            values.push(("", after.pos));
                            return Ok(values);
                        }
                        Kind::Comma => {
                            self.next();
                            values.push(("", after.pos));
                        }
                        _ => {}
                    }
                }
                _ => return Err(syntax(token, "a value or ','")),
            }
        }
    }
}

fn syntax(token: Token<'_>, expected: &'static str) -> SelectorError {
    let found = token.kind.text().to_string();
    SelectorError::Syntax {
        pos: token.pos,
        found,
        expected,
    }
}

/// Validates the values and makes the requirement, with values sorted and deduplicated.
fn build(key: String, op: LabelOp, values: &[Spanned<'_>]) -> Result<Requirement, SelectorError> {
    let ordered = matches!(op, LabelOp::GreaterThan | LabelOp::LessThan);
    for &(value, pos) in values {
        let reason = if ordered && value.parse::<i64>().is_err() {
            Some("must be a 64-bit integer for '>' and '<'")
        } else {
            value_problem(value)
        };
        if let Some(reason) = reason {
            let value = value.to_string();
            return Err(SelectorError::InvalidValue { pos, value, reason });
        }
    }
    let mut values: Vec<String> = values.iter().map(|(v, _)| v.to_string()).collect();
    values.sort();
    values.dedup();
    Ok(Requirement { key, op, values })
}

// ---------------------------------------------------------------------------------------------
// Key and value validation (apimachinery `IsQualifiedName`, `IsValidLabelValue`)
// ---------------------------------------------------------------------------------------------

/// Why `key` is not `[prefix/]name`, or `None` if it is valid.
fn key_problem(key: &str) -> Option<&'static str> {
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

fn prefix_problem(prefix: &str) -> Option<&'static str> {
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

fn name_problem(name: &str) -> Option<&'static str> {
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

fn value_problem(value: &str) -> Option<&'static str> {
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

fn is_value_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn is_dns_label(label: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    is_edged(label, edge, |b| edge(b) || b == b'-')
}

/// Non-empty, first and last byte pass `edge`, every byte passes `inner`.
fn is_edged(s: &str, edge: impl Fn(u8) -> bool, inner: impl Fn(u8) -> bool) -> bool {
    match (s.bytes().next(), s.bytes().last()) {
        (Some(first), Some(last)) => edge(first) && edge(last) && s.bytes().all(inner),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------------

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
    reqs: Vec<FieldRequirement>,
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
        for (i, req) in self.reqs.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{req}")?;
        }
        Ok(())
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
fn split_terms(input: &str) -> Vec<(usize, &str)> {
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
fn parse_term(term: &str, pos: usize) -> Result<FieldRequirement, SelectorError> {
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
fn split_term(term: &str) -> Option<(&str, FieldOp, usize)> {
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
fn unescape(raw: &str, pos: usize) -> Result<String, SelectorError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn err(s: &str) -> SelectorError {
        LabelSelector::parse(s).expect_err(s)
    }

    /// Which of `candidates` the selector matches, as indices.
    fn matching(s: &str, candidates: &[BTreeMap<String, String>]) -> Vec<usize> {
        let selector = sel(s);
        (0..candidates.len())
            .filter(|&i| selector.matches(&candidates[i]))
            .collect()
    }

    fn pods() -> Vec<BTreeMap<String, String>> {
        vec![
            labels(&[("app", "web"), ("n", "3")]),
            labels(&[("app", "db"), ("n", "10")]),
            labels(&[("other", "x")]),
            labels(&[("app", ""), ("n", "x")]),
        ]
    }

    #[test]
    fn empty_selector_matches_everything() {
        for s in ["", "   ", "\t\n\r "] {
            let selector = sel(s);
            assert!(selector.is_empty());
            assert!(selector.requirements().is_empty());
            assert_eq!(matching(s, &pods()), vec![0, 1, 2, 3]);
            assert_eq!(selector.to_string(), "");
        }
        assert!(LabelSelector::default().matches(&labels(&[])));
    }

    #[test]
    fn equality_operators() {
        assert_eq!(matching("app=web", &pods()), vec![0]);
        assert_eq!(matching("app==web", &pods()), vec![0]);
        assert_eq!(sel("app==web").requirements()[0].op(), LabelOp::DoubleEquals);
        // `!=` matches objects without the key, as in Kubernetes.
        assert_eq!(matching("app!=web", &pods()), vec![1, 2, 3]);
    }

    #[test]
    fn empty_values() {
        assert_eq!(matching("app=", &pods()), vec![3]);
        assert_eq!(matching("app!=", &pods()), vec![0, 1, 2]);
        assert_eq!(matching("app=,n=x", &pods()), vec![3]);
        assert_eq!(sel("app=").requirements()[0].values(), [""]);
        assert_eq!(matching("app in (,web)", &pods()), vec![0, 3]);
        assert_eq!(sel("app in (web,)").requirements()[0].values(), ["", "web"]);
        assert_eq!(sel("app in (a,,b)").requirements()[0].values(), ["", "a", "b"]);
        assert_eq!(sel("app in (,)").requirements()[0].values(), [""]);
    }

    #[test]
    fn set_operators() {
        assert_eq!(matching("app in (web,db)", &pods()), vec![0, 1]);
        assert_eq!(matching("app in (web)", &pods()), vec![0]);
        // `notin` matches objects without the key, as in Kubernetes.
        assert_eq!(matching("app notin (web,db)", &pods()), vec![2, 3]);
        let selector = sel("app in (web,db,web)");
        let req = &selector.requirements()[0];
        assert_eq!((req.key(), req.op()), ("app", LabelOp::In));
        assert_eq!(req.values(), ["db", "web"]);
    }

    #[test]
    fn existence_operators() {
        assert_eq!(matching("app", &pods()), vec![0, 1, 3]);
        assert_eq!(matching("!app", &pods()), vec![2]);
        assert_eq!(matching("! app", &pods()), vec![2]);
        assert_eq!(matching("app,!other", &pods()), vec![0, 1, 3]);
        assert_eq!(sel("!app").requirements()[0].op(), LabelOp::DoesNotExist);
        assert_eq!(sel("app").requirements()[0].op(), LabelOp::Exists);
    }

    #[test]
    fn ordering_operators() {
        // Labels that are missing or not integers never match.
        assert_eq!(matching("n>5", &pods()), vec![1]);
        assert_eq!(matching("n<5", &pods()), vec![0]);
        assert_eq!(matching("n>3", &pods()), vec![1]);
        assert_eq!(matching("n<3", &pods()), Vec::<usize>::new());
        assert_eq!(matching("n>05", &pods()), vec![1]);
        let negative = labels(&[("n", "-7")]);
        assert!(sel("n<0").matches(&negative));
        assert!(matches!(err("n>x"), SelectorError::InvalidValue { pos: 2, .. }));
        assert!(matches!(err("n>"), SelectorError::InvalidValue { pos: 2, .. }));
        assert!(matches!(err("n<-1"), SelectorError::InvalidValue { .. }));
        assert!(matches!(
            err("n>99999999999999999999"),
            SelectorError::InvalidValue { .. }
        ));
    }

    #[test]
    fn several_requirements_are_anded() {
        assert_eq!(matching("app in (web,db),n>5", &pods()), vec![1]);
        assert_eq!(matching("app,app!=db,n", &pods()), vec![0, 3]);
    }

    #[test]
    fn whitespace_between_tokens() {
        let spaced = sel("  app  in  ( web ,  db )  ,\tn\n>\r5 , ! other  ");
        assert_eq!(spaced, sel("app in (web,db),n>5,!other"));
        assert_eq!(sel("app = web"), sel("app=web"));
        assert_eq!(sel("app in(web)"), sel("app in (web)"));
        assert_eq!(sel("app notin(web)").requirements()[0].op(), LabelOp::NotIn);
    }

    #[test]
    fn in_and_notin_are_also_keys_and_values() {
        let selector = sel("in=notin,notin in (in)");
        let both = labels(&[("in", "notin"), ("notin", "in")]);
        assert!(selector.matches(&both));
        assert_eq!(selector.to_string(), "in=notin,notin in (in)");
    }

    #[test]
    fn key_validation() {
        let ok = sel("example.com/app=x,a.b-c_d=1,a/B=2,k8s.io/x");
        assert_eq!(ok.requirements().len(), 4);
        assert!(sel(&format!("{}=x", "k".repeat(63))).matches(&labels(&[(&"k".repeat(63), "x")])));
        let bad = [
            "-app=x",
            "app-=x",
            "a@b=x",
            "/app=x",
            "example.com/=x",
            "a/b/c=x",
            "Example.com/app=x",
            "exa_mple.com/app=x",
            "example..com/app=x",
            "!-a",
            "é=x",
        ];
        for s in bad {
            assert!(matches!(err(s), SelectorError::InvalidKey { pos: 0 | 1, .. }), "{s}");
        }
        let long_name = format!("{}=x", "k".repeat(64));
        assert!(err(&long_name).to_string().contains("no more than 63"));
        let long_prefix = format!("{}/a=x", "p".repeat(254));
        assert!(err(&long_prefix).to_string().contains("no more than 253"));
    }

    #[test]
    fn value_validation() {
        assert!(sel("a=A.b-c_9").matches(&labels(&[("a", "A.b-c_9")])));
        assert!(sel(&format!("a={}", "v".repeat(63))).requirements().len() == 1);
        for s in ["a=-x", "a=x-", "a=x/y", "a in (ok,_x)", "a=é"] {
            assert!(matches!(err(s), SelectorError::InvalidValue { .. }), "{s}");
        }
        let long = format!("a={}", "v".repeat(64));
        assert!(matches!(err(&long), SelectorError::InvalidValue { pos: 2, .. }));
        assert!(matches!(
            err("a in (ok, _x)"),
            SelectorError::InvalidValue { pos: 10, .. }
        ));
    }

    #[test]
    fn syntax_errors_name_token_and_position() {
        let cases = [
            ("a=b,", "found end of string at byte 4, expected a label key or '!'"),
            (",a", "found ',' at byte 0, expected a label key or '!'"),
            ("a,,b", "found ',' at byte 2, expected a label key or '!'"),
            ("a=b c", "found 'c' at byte 4, expected ',' or end of string"),
            ("a in (x", "found end of string at byte 7, expected ',' or ')'"),
            ("a in x)", "found 'x' at byte 5, expected '(' to open the value set"),
            ("a in (x))", "found ')' at byte 8, expected ',' or end of string"),
            ("a in ((x)", "found '(' at byte 6, expected a value, ',' or ')'"),
            ("a in (x y)", "found 'y' at byte 8, expected ',' or ')'"),
            ("a in (,,)", "found ')' at byte 8, expected a value or ','"),
            (
                "a in",
                "found end of string at byte 4, expected '(' to open the value set",
            ),
            ("a=(x)", "found '(' at byte 2, expected a value"),
            ("a>=1", "found '=' at byte 2, expected a value"),
            ("!a=b", "found '=' at byte 2, expected ',' or end of string"),
            ("!!a", "found '!' at byte 1, expected a label key after '!'"),
            ("a=b)", "found ')' at byte 3, expected ',' or end of string"),
            (")", "found ')' at byte 0, expected a label key or '!'"),
        ];
        for (input, message) in cases {
            assert_eq!(err(input).to_string(), message, "{input}");
        }
    }

    #[test]
    fn unknown_operators() {
        for (input, pos, found) in [("a ~ b", 2, "~"), ("a (b)", 2, "("), ("a ! b", 2, "!")] {
            let e = err(input);
            assert_eq!(
                e,
                SelectorError::UnknownOperator {
                    pos,
                    found: found.into()
                }
            );
            assert!(e.to_string().contains(&format!("'{found}' at byte {pos}")), "{e}");
        }
        assert!(matches!(
            err("a ins (b)"),
            SelectorError::UnknownOperator { pos: 2, .. }
        ));
    }

    #[test]
    fn empty_set_is_rejected() {
        let e = err("a in ()");
        assert_eq!(
            e,
            SelectorError::EmptySet {
                pos: 5,
                key: "a".into()
            }
        );
        assert!(e.to_string().contains("'a'"));
        assert!(matches!(err("a notin ( )"), SelectorError::EmptySet { pos: 8, .. }));
    }

    #[test]
    fn display_is_canonical() {
        assert_eq!(sel("c in (y,x),!d,a=b").to_string(), "a=b,c in (x,y),!d");
        let all = sel(" z<3 , y>2, x , !w, v notin (b, a), u==1, t!=2, s=3, r in (,q) ");
        let text = "r in (,q),s=3,t!=2,u==1,v notin (a,b),!w,x,y>2,z<3";
        assert_eq!(all.to_string(), text);
        assert_eq!(sel(text), all);
        // Requirements on one key keep their order.
        assert_eq!(sel("b,a=2,a=1").to_string(), "a=2,a=1,b");
        // The lone empty value round-trips through `(,)`.
        assert_eq!(sel("k in (,)").to_string(), "k in (,)");
        assert_eq!("k=".parse::<LabelSelector>().map(|s| s.to_string()), Ok("k=".into()));
    }

    #[test]
    fn labels_implementations_agree() {
        let pairs = vec![("app".to_string(), "web".to_string())];
        let hash: HashMap<String, String> = pairs.iter().cloned().collect();
        let tree: BTreeMap<String, String> = pairs.iter().cloned().collect();
        let slice: &[(String, String)] = &pairs;
        for s in ["app=web", "app!=web", "app", "!app", "x notin (y)", "app in (db)"] {
            let selector = sel(s);
            let expected = selector.matches(&tree);
            assert_eq!(selector.matches(&hash), expected, "{s}");
            assert_eq!(selector.matches(&pairs), expected, "{s}");
            assert_eq!(selector.matches(slice), expected, "{s}");
        }
        let duplicated = vec![("a".to_string(), "1".to_string()), ("a".into(), "2".into())];
        assert!(sel("a=1").matches(&duplicated));
    }

    #[test]
    fn too_long() {
        let ok = format!("a in ({})", vec!["b"; (MAX_SELECTOR_LEN - 6) / 2].join(","));
        assert!(ok.len() <= MAX_SELECTOR_LEN);
        assert!(LabelSelector::parse(&ok).is_ok());
        let long = "a".repeat(MAX_SELECTOR_LEN + 1);
        let e = LabelSelector::parse(&long).expect_err("too long");
        assert_eq!(
            e,
            SelectorError::TooLong {
                len: MAX_SELECTOR_LEN + 1
            }
        );
        assert_eq!(FieldSelector::parse(&long), Err(e.clone()));
        assert!(e.to_string().contains("8193 bytes"));
    }

    fn fields(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn req(field: &str, op: FieldOp, value: &str) -> FieldRequirement {
        FieldRequirement {
            field: field.into(),
            op,
            value: value.into(),
        }
    }

    #[test]
    fn field_operators() {
        let pod = |f: &str| match f {
            "metadata.name" => Some("web-0"),
            "metadata.namespace" => Some("default"),
            _ => None,
        };
        assert!(fields("metadata.name=web-0").matches(pod));
        assert!(fields("metadata.name==web-0").matches(pod));
        assert!(!fields("metadata.name!=web-0").matches(pod));
        assert!(fields("metadata.name!=web-1,metadata.namespace=default").matches(pod));
        assert!(!fields("metadata.name=web-0,metadata.namespace=kube-system").matches(pod));
        let parsed = fields("metadata.name==a,metadata.namespace!=b");
        let expected = [
            req("metadata.name", FieldOp::Eq, "a"),
            req("metadata.namespace", FieldOp::NotEq, "b"),
        ];
        assert_eq!(parsed.requirements(), expected);
    }

    #[test]
    fn field_missing_counts_as_empty() {
        let nothing = |_: &str| None;
        assert!(fields("spec.nodeName=").matches(nothing));
        assert!(!fields("spec.nodeName=n1").matches(nothing));
        assert!(fields("spec.nodeName!=n1").matches(nothing));
    }

    #[test]
    fn field_getter_may_borrow_from_the_object() {
        let object = BTreeMap::from([("metadata.name".to_string(), "web-0".to_string())]);
        let get = |f: &str| object.get(f).map(String::as_str);
        assert!(fields("metadata.name=web-0").matches(get));
    }

    #[test]
    fn field_empty_and_empty_terms() {
        for s in ["", ",", ",,"] {
            assert!(fields(s).is_empty(), "{s:?}");
            assert!(fields(s).matches(|_| Some("x")));
        }
        assert_eq!(fields("a=b,").requirements(), [req("a", FieldOp::Eq, "b")]);
        assert_eq!(fields(",a=b,,c=d").requirements().len(), 2);
        // Whitespace is data, as in apimachinery.
        assert_eq!(fields(" a = b").requirements(), [req(" a ", FieldOp::Eq, " b")]);
        assert_eq!(fields("=b").requirements(), [req("", FieldOp::Eq, "b")]);
    }

    #[test]
    fn field_escaping() {
        let parsed = fields(r"a=x\,y\=z\\w,b!=\\");
        let expected = [req("a", FieldOp::Eq, r"x,y=z\w"), req("b", FieldOp::NotEq, r"\")];
        assert_eq!(parsed.requirements(), expected);
        assert!(parsed.matches(|f| (f == "a").then_some(r"x,y=z\w")));
        assert_eq!(parsed.to_string(), r"a=x\,y\=z\\w,b!=\\");
        assert_eq!(fields("a=é").requirements()[0].value, "é");
    }

    #[test]
    fn field_errors() {
        let missing = SelectorError::MissingOperator {
            pos: 4,
            term: "abc".into(),
        };
        assert_eq!(FieldSelector::parse("a=b,abc"), Err(missing));
        let bad_escape = SelectorError::InvalidEscape {
            pos: 2,
            sequence: r"\x".into(),
        };
        assert_eq!(FieldSelector::parse(r"a=\x"), Err(bad_escape));
        let trailing = SelectorError::InvalidEscape {
            pos: 3,
            sequence: r"\".into(),
        };
        assert_eq!(FieldSelector::parse(r"a=b\"), Err(trailing));
        let bare = SelectorError::UnescapedChar { pos: 3, ch: '=' };
        assert_eq!(FieldSelector::parse("a=b=c"), Err(bare.clone()));
        assert_eq!(
            bare.to_string(),
            r"unescaped '=' at byte 3 in field selector value, write '\='"
        );
        // `a!==b` splits at `!=`, leaving the bare `=` in the value.
        assert!(matches!(
            FieldSelector::parse("a!==b"),
            Err(SelectorError::UnescapedChar { .. })
        ));
        assert!(FieldSelector::parse(" ").is_err());
    }

    #[test]
    fn field_display_is_canonical() {
        let parsed = fields(r"b==2,a!=1,c=x\,y");
        assert_eq!(parsed.to_string(), r"a!=1,b=2,c=x\,y");
        assert_eq!(fields(&parsed.to_string()), parsed);
        assert_eq!("".parse::<FieldSelector>().map(|s| s.to_string()), Ok(String::new()));
    }

    /// Calls `check` with every string of up to `max_len` pieces from `alphabet`.
    fn each_string(alphabet: &[&str], max_len: u32, mut check: impl FnMut(&str)) {
        let base = alphabet.len();
        let mut s = String::new();
        for len in 0..=max_len {
            for mut n in 0..base.pow(len) {
                s.clear();
                for _ in 0..len {
                    s.push_str(alphabet[n % base]);
                    n /= base;
                }
                check(&s);
            }
        }
    }

    fn check_label_input(s: &str) {
        let Ok(selector) = LabelSelector::parse(s) else {
            return;
        };
        selector.matches(&labels(&[("a", "1"), ("b/a", "")]));
        let text = selector.to_string();
        assert_eq!(LabelSelector::parse(&text), Ok(selector), "{s:?} printed as {text:?}");
    }

    fn check_field_input(s: &str) {
        let Ok(selector) = FieldSelector::parse(s) else {
            return;
        };
        selector.matches(|f| (f == "a").then_some("x"));
        let text = selector.to_string();
        let mut again = FieldSelector::parse(&text).expect(&text).requirements().to_vec();
        let mut reqs = selector.requirements().to_vec();
        again.sort();
        reqs.sort();
        assert_eq!(again, reqs, "{s:?} printed as {text:?}");
    }

    #[test]
    fn never_panics_and_round_trips() {
        let tokens = ["a", "b/", "in", "notin", "=", "!", "(", ")", ",", " ", ">", "1", "é"];
        each_string(&tokens, 5, check_label_input);
        let chars = ["a", "=", "!", "(", ")", ",", " ", "\\", "é"];
        each_string(&chars, 6, |s| {
            check_label_input(s);
            check_field_input(s);
            let errors = [LabelSelector::parse(s).err(), FieldSelector::parse(s).err()];
            assert!(errors.iter().flatten().all(|e| !e.to_string().is_empty()));
        });
    }
}
