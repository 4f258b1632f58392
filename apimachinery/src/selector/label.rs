//! Label selectors: requirements, matching, canonical form.

use super::*;

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
    pub(super) key: String,
    pub(super) op: LabelOp,
    pub(super) values: Vec<String>,
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
    pub(super) reqs: Vec<Requirement>,
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
        write_joined(f, &self.reqs)
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}
