//! `Accept` header parsing for content negotiation: protobuf, Table or plain JSON on data
//! requests ([`crate::api::table::negotiate`]) and aggregated vs legacy discovery
//! ([`crate::api::discovery::negotiate_discovery`]).
//!
//! Media ranges are ordered as Go's `goautoneg.ParseAccept` orders them for the apiserver:
//! higher `q` first, then concrete types before wildcards; ties keep the client's order. `q=0`
//! ranges are dropped. Data requests are answered in protobuf when that comes first (kubectl
//! `top` sends `application/vnd.kubernetes.protobuf, */*`); discovery and OpenAPI are JSON
//! only, and YAML is never answered, so callers skip those ranges and fall through to the next.

/// One media range of an `Accept` header, e.g. `application/json;as=Table;v=v1;g=meta.k8s.io`.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange<'a> {
    /// `application`, or `*`.
    pub kind: &'a str,
    /// `json`, `vnd.kubernetes.protobuf`, or `*`.
    pub subtype: &'a str,
    /// Parameters other than `q`, in order, values unquoted.
    pub params: Vec<(&'a str, &'a str)>,
    /// Quality, 0.0 to 1.0.
    pub q: f32,
}

impl<'a> MediaRange<'a> {
    /// The value of parameter `key` (case-insensitive key).
    pub fn param(&self, key: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| *v)
    }

    /// `application/json`, `application/*` or `*/*`: a range JSON satisfies.
    pub fn accepts_json(&self) -> bool {
        let any_subtype = self.subtype == "*";
        (self.kind == "*" && any_subtype)
            || (self.kind.eq_ignore_ascii_case("application")
                && (any_subtype || self.subtype.eq_ignore_ascii_case("json")))
    }

    /// `application/vnd.kubernetes.protobuf` (with any parameters).
    pub fn is_protobuf(&self) -> bool {
        self.kind.eq_ignore_ascii_case("application") && self.subtype.eq_ignore_ascii_case("vnd.kubernetes.protobuf")
    }

    /// Whether the range carries `g`, `v` and `as` with exactly these values.
    pub fn is_gvk(&self, group: &str, versions: &[&str], kind: &str) -> bool {
        self.param("g") == Some(group)
            && self.param("as") == Some(kind)
            && self.param("v").is_some_and(|v| versions.contains(&v))
    }
}

/// The media ranges of `accept`, best first.
pub fn parse_accept(accept: &str) -> Vec<MediaRange<'_>> {
    let mut ranges: Vec<MediaRange<'_>> = accept
        .split(',')
        .filter_map(parse_range)
        .filter(|r| r.q > 0.0)
        .collect();
    ranges.sort_by(|a, b| {
        b.q.total_cmp(&a.q)
            .then((a.kind == "*").cmp(&(b.kind == "*")))
            .then((a.subtype == "*").cmp(&(b.subtype == "*")))
    });
    ranges
}

fn parse_range(text: &str) -> Option<MediaRange<'_>> {
    let mut parts = text.split(';');
    let (kind, subtype) = parts.next()?.trim().split_once('/')?;
    let (kind, subtype) = (kind.trim(), subtype.trim());
    if kind.is_empty() || subtype.is_empty() {
        return None;
    }
    let mut range = MediaRange {
        kind,
        subtype,
        params: Vec::new(),
        q: 1.0,
    };
    for param in parts {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim().trim_matches('"'));
        if key.eq_ignore_ascii_case("q") {
            range.q = value
                .parse::<f32>()
                .ok()
                .filter(|q| q.is_finite())
                .unwrap_or(0.0)
                .clamp(0.0, 1.0);
        } else {
            range.params.push((key, value));
        }
    }
    Some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubectl_get_accept() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        let ranges = parse_accept(accept);
        assert_eq!(ranges.len(), 3);
        assert_eq!(ranges[0].param("as"), Some("Table"));
        assert_eq!(ranges[0].param("v"), Some("v1"));
        assert_eq!(ranges[1].param("v"), Some("v1beta1"));
        assert!(ranges[2].params.is_empty() && ranges[2].accepts_json());
    }

    #[test]
    fn orders_by_quality_then_specificity() {
        let ranges =
            parse_accept("*/*;q=0.8, application/yaml;q=0.9, text/*, application/json;q=0, application/json;v=\"x\"");
        let order: Vec<_> = ranges.iter().map(|r| (r.kind, r.subtype)).collect();
        assert_eq!(
            order,
            [
                ("application", "json"),
                ("text", "*"),
                ("application", "yaml"),
                ("*", "*")
            ]
        );
        assert_eq!(ranges[0].param("V"), Some("x"));
    }

    #[test]
    fn skips_garbage() {
        assert!(parse_accept("").is_empty());
        assert!(parse_accept("garbage, /json, application/").is_empty());
        assert_eq!(parse_accept("application/json;q=abc").len(), 0, "an unparseable q is 0");
    }
}
