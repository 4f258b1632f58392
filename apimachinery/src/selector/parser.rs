//! The label selector lexer and parser (apimachinery `Lexer` and `Parser`).

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind<'a> {
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
pub(super) struct Token<'a> {
    kind: Kind<'a>,
    pos: usize,
}

pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(super) fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the input into tokens, always ending with `Kind::End`. Tokens are cut only at ASCII
/// bytes, so every slice falls on a character boundary.
pub(super) fn lex(input: &str) -> Vec<Token<'_>> {
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
pub(super) fn symbol(b: u8, next: Option<u8>) -> Option<(Kind<'static>, usize)> {
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
pub(super) fn identifier(rest: &str) -> (Kind<'_>, usize) {
    let len = rest
        .bytes()
        .position(|b| is_space(b) || is_special(b))
        .unwrap_or(rest.len());
    (Kind::Ident(&rest[..len]), len)
}

/// A value as written and where it starts.
pub(super) type Spanned<'a> = (&'a str, usize);

pub(super) struct Parser<'a> {
    /// Never empty; the last token is `Kind::End`.
    tokens: Vec<Token<'a>>,
    /// Index of the next token; never moves past the `End` token.
    at: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn new(input: &'a str) -> Self {
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

    pub(super) fn parse_all(&mut self) -> Result<Vec<Requirement>, SelectorError> {
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

pub(super) fn syntax(token: Token<'_>, expected: &'static str) -> SelectorError {
    let found = token.kind.text().to_string();
    SelectorError::Syntax {
        pos: token.pos,
        found,
        expected,
    }
}

/// Validates the values and makes the requirement, with values sorted and deduplicated.
pub(super) fn build(key: String, op: LabelOp, values: &[Spanned<'_>]) -> Result<Requirement, SelectorError> {
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
