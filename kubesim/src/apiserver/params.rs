//! Request decoding for list, get and watch: the query string as Go's `url.ParseQuery` reads it,
//! `ListOptions` with apimachinery's conversion and validation rules, and Accept negotiation
//! (JSON, `PartialObjectMetadata[List]` or `Table`; never protobuf).
//!
//! Pure: every function here maps strings to values or to an [`ApiError`].

use super::resources::{ApiError, FieldError};
use super::store::Kind;
use super::table::IncludeObject;
use apimachinery::selector::{FieldSelector, LabelSelector};

/// The decoded query string; repeated keys keep every value, readers take the first.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses like Go's `url.ParseQuery` as `req.URL.Query()` uses it: pairs split at `&`,
    /// `+` is a space, and a pair with a bad `%` escape or a `;` is dropped.
    pub fn parse(query: Option<&str>) -> Query {
        let pairs = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty() && !p.contains(';'));
        let decoded = pairs.filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape(key)?, unescape(value)?))
        });
        Query(decoded.collect())
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, `None` if absent or empty.
    fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }
}

/// Go's `url.QueryUnescape`: `None` for a `%` not followed by two hex digits.
fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let spaced = s.replace('+', " ");
    Some(
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// apimachinery `Convert_Slice_string_To_bool`: only `0` and `false` (any case) are false.
pub fn flag(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

fn integer(value: &str) -> Result<i64, ApiError> {
    value
        .parse::<i64>()
        .map_err(|_| ApiError::BadRequest(format!("strconv.ParseInt: parsing {value:?}: invalid syntax")))
}

/// A parsed `resourceVersion` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Absent or empty: the most recent state.
    Unset,
    /// `0`: any state (the cache's).
    Any,
    /// A positive resourceVersion.
    At(u64),
}

impl Version {
    pub fn parse(value: Option<&str>) -> Result<Version, ApiError> {
        match value.unwrap_or_default() {
            "" => Ok(Version::Unset),
            "0" => Ok(Version::Any),
            v => v.parse::<u64>().map(Version::At).map_err(|_| {
                ApiError::BadRequest(format!(
                    "resourceVersion: Invalid value: {v:?}: strconv.ParseUint: parsing {v:?}: invalid syntax"
                ))
            }),
        }
    }
}

/// `ListOptions` as the apiserver decodes them for list and watch requests.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    /// `limit` when positive.
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    /// The raw `resourceVersion`, `None` when absent or empty.
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub watch: bool,
    pub allow_watch_bookmarks: bool,
    /// `sendInitialEvents`; present (even `false`) matters for validation.
    pub send_initial_events: Option<bool>,
    pub timeout_seconds: Option<i64>,
}

impl ListOptions {
    /// Decodes the options and checks the field selector's fields against what `kind` supports
    /// (`field label not supported: <f>`, as `ConvertFieldLabel` says).
    pub fn parse(query: &Query, kind: Kind) -> Result<ListOptions, ApiError> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        for requirement in fields.requirements() {
            if !field_supported(kind, &requirement.field) {
                return Err(ApiError::BadRequest(format!(
                    "field label not supported: {}",
                    requirement.field
                )));
            }
        }
        let limit = query.non_empty("limit").map(integer).transpose()?;
        let timeout_seconds = query.non_empty("timeoutSeconds").map(integer).transpose()?;
        Ok(ListOptions {
            labels,
            fields,
            limit: limit
                .filter(|l| *l > 0)
                .map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
            continue_token: query.non_empty("continue").map(str::to_string),
            resource_version: query.non_empty("resourceVersion").map(str::to_string),
            resource_version_match: query.non_empty("resourceVersionMatch").map(str::to_string),
            watch: query.get("watch").is_some_and(flag),
            allow_watch_bookmarks: query.get("allowWatchBookmarks").is_some_and(flag),
            send_initial_events: query.get("sendInitialEvents").map(flag),
            timeout_seconds,
        })
    }

    /// apimachinery `ValidateListOptions` with the WatchList feature enabled; violations are
    /// `422 Invalid` for kind `ListOptions.meta.k8s.io`.
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        let matching = self.resource_version_match.as_deref();
        let rvm = "resourceVersionMatch";
        if self.watch {
            if self.send_initial_events.is_some() && matching != Some("NotOlderThan") {
                errors.push(FieldError::forbidden(
                    rvm,
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                ));
            }
            if let Some(matching) = matching {
                if self.send_initial_events.is_none() {
                    errors.push(FieldError::forbidden(
                        rvm,
                        "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                    ));
                }
                if matching != "NotOlderThan" {
                    errors.push(FieldError::not_supported(rvm, matching, &["NotOlderThan"]));
                }
                if self.continue_token.is_some() {
                    errors.push(FieldError::forbidden(
                        rvm,
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
            }
        } else {
            if let Some(matching) = matching {
                if self.resource_version.is_none() {
                    errors.push(FieldError::forbidden(
                        rvm,
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    ));
                }
                if self.continue_token.is_some() {
                    errors.push(FieldError::forbidden(
                        rvm,
                        "resourceVersionMatch is forbidden when continue is provided",
                    ));
                }
                if matching != "Exact" && matching != "NotOlderThan" {
                    errors.push(FieldError::not_supported(rvm, matching, &["Exact", "NotOlderThan", ""]));
                }
                if matching == "Exact" && self.resource_version.as_deref() == Some("0") {
                    errors.push(FieldError::forbidden(
                        rvm,
                        "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                    ));
                }
            }
            if self.send_initial_events.is_some() {
                errors.push(FieldError::forbidden(
                    "sendInitialEvents",
                    "sendInitialEvents is forbidden for list",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Invalid(errors))
        }
    }
}

/// Whether a field selector may name `field` for `kind`.
pub fn field_supported(kind: Kind, field: &str) -> bool {
    field == "metadata.name"
        || (field == "metadata.namespace" && kind.namespaced())
        || kind.extra_fields().contains(&field)
}

/// `includeObject` for Table output; anything but `None`, `Metadata`, `Object` or empty is 400.
pub fn include_object(query: &Query) -> Result<IncludeObject, ApiError> {
    match query.get("includeObject").unwrap_or_default() {
        "" | "Metadata" => Ok(IncludeObject::Metadata),
        "None" => Ok(IncludeObject::None),
        "Object" => Ok(IncludeObject::Object),
        other => Err(ApiError::BadRequest(format!(
            "unrecognized includeObject value: {other:?}"
        ))),
    }
}

/// The response representation chosen from the Accept header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The objects themselves (`NodeList`, `Pod`, ...).
    Json,
    /// `PartialObjectMetadata` (get, watch) or `PartialObjectMetadataList` (list).
    Metadata,
    /// `meta.k8s.io/v1` Table.
    Table,
}

/// What the request returns, which decides the acceptable metadata form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    List,
    Object,
    Watch,
}

/// Picks the first acceptable media type in `accept`, as the apiserver's negotiation does.
/// Protobuf and YAML are answered with JSON (a protobuf-only Accept gets JSON); `as=` forms
/// other than `meta.k8s.io/v1` Table and `PartialObjectMetadata[List]` are skipped.
pub fn negotiate(accept: Option<&str>, shape: Shape) -> Result<Format, ApiError> {
    let accept = accept.unwrap_or_default().trim();
    if accept.is_empty() {
        return Ok(Format::Json);
    }
    let mut json_fallback = false;
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let params: Vec<(&str, &str)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        match media.as_str() {
            "application/json" | "application/yaml" | "application/*" | "*/*" => {}
            "application/vnd.kubernetes.protobuf" => {
                json_fallback = true;
                continue;
            }
            _ => continue,
        }
        let Some(target) = param("as") else {
            return Ok(Format::Json);
        };
        if param("g") != Some("meta.k8s.io") || param("v") != Some("v1") {
            continue;
        }
        return match (target, shape) {
            ("Table", _) => Ok(Format::Table),
            ("PartialObjectMetadata", Shape::Object | Shape::Watch) => Ok(Format::Metadata),
            ("PartialObjectMetadataList", Shape::List) => Ok(Format::Metadata),
            ("PartialObjectMetadata", Shape::List) => Err(ApiError::NotAcceptable(
                "you requested PartialObjectMetadata, but the requested object is a list".to_string(),
            )),
            ("PartialObjectMetadataList", _) => Err(ApiError::NotAcceptable(
                "you requested PartialObjectMetadataList, but the requested object is not a list".to_string(),
            )),
            _ => continue,
        };
    }
    if json_fallback {
        return Ok(Format::Json);
    }
    Err(ApiError::NotAcceptable(
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
            .to_string(),
    ))
}

/// The response Content-Type of a list or get in `format`.
pub fn content_type(format: Format, shape: Shape) -> &'static str {
    match (format, shape) {
        (Format::Json, _) | (_, Shape::Watch) => "application/json",
        (Format::Metadata, Shape::List) => "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        (Format::Metadata, Shape::Object) => "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        (Format::Table, _) => "application/json;as=Table;v=v1;g=meta.k8s.io",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_follows_go() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&bad=%zz&x;y=1&limit=5&limit=9&=v&k",
        ));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(q.get("watch"), Some("1"));
        assert_eq!(q.get("bad"), None);
        assert_eq!(q.get("x"), None);
        assert_eq!(q.get("limit"), Some("5"));
        assert_eq!(q.get("k"), Some(""));
        assert_eq!(Query::parse(Some("a=%4")).get("a"), None);
        assert_eq!(Query::parse(None).get("a"), None);
    }

    #[test]
    fn booleans_follow_apimachinery() {
        for (value, want) in [
            ("true", true),
            ("1", true),
            ("", true),
            ("yes", true),
            ("0", false),
            ("FALSE", false),
        ] {
            assert_eq!(flag(value), want, "{value:?}");
        }
    }

    fn options(query: &str, kind: Kind) -> Result<ListOptions, ApiError> {
        ListOptions::parse(&Query::parse(Some(query)), kind)
    }

    #[test]
    fn list_options_parse() {
        let o = options("limit=2&continue=abc&resourceVersion=5&watch=true&allowWatchBookmarks=true&sendInitialEvents=false&timeoutSeconds=290", Kind::Pods).unwrap();
        assert_eq!(
            (o.limit, o.continue_token.as_deref(), o.resource_version.as_deref()),
            (Some(2), Some("abc"), Some("5"))
        );
        assert!(o.watch && o.allow_watch_bookmarks);
        assert_eq!((o.send_initial_events, o.timeout_seconds), (Some(false), Some(290)));
        assert_eq!(options("limit=0", Kind::Pods).unwrap().limit, None);
        assert_eq!(options("limit=-3", Kind::Pods).unwrap().limit, None);
        assert!(matches!(options("limit=x", Kind::Pods), Err(ApiError::BadRequest(_))));
        assert!(matches!(
            options("labelSelector=a%20in%20(", Kind::Pods),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            options("fieldSelector=a%3Db%3Dc", Kind::Pods),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn field_labels_per_kind() {
        assert!(options("fieldSelector=spec.nodeName%3Dn1,status.phase!%3DRunning", Kind::Pods).is_ok());
        assert!(options("fieldSelector=metadata.namespace%3Dx", Kind::ConfigMaps).is_ok());
        assert!(
            options(
                "fieldSelector=spec.unschedulable%3Dfalse,metadata.name%3Dn",
                Kind::Nodes
            )
            .is_ok()
        );
        let Err(ApiError::BadRequest(message)) = options("fieldSelector=metadata.namespace%3Dx", Kind::Nodes) else {
            panic!("nodes are cluster-scoped");
        };
        assert_eq!(message, "field label not supported: metadata.namespace");
        assert!(options("fieldSelector=spec.nodeName%3Dx", Kind::ConfigMaps).is_err());
    }

    fn invalid(query: &str) -> Vec<String> {
        match options(query, Kind::Pods).unwrap().validate() {
            Err(ApiError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn list_options_validation() {
        for ok in [
            "",
            "resourceVersion=0&resourceVersionMatch=NotOlderThan",
            "resourceVersion=5&resourceVersionMatch=Exact",
            "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
            "watch=1&resourceVersion=7",
        ] {
            assert!(options(ok, Kind::Pods).unwrap().validate().is_ok(), "{ok}");
        }
        assert_eq!(
            invalid("sendInitialEvents=true"),
            ["sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"]
        );
        assert_eq!(
            invalid("resourceVersionMatch=Exact&resourceVersion=0"),
            ["resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""]
        );
        assert_eq!(
            invalid("resourceVersionMatch=Bogus&continue=x"),
            [
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
                "resourceVersionMatch: Unsupported value: \"Bogus\": supported values: \"Exact\", \"NotOlderThan\", \"\"",
            ]
        );
        assert_eq!(
            invalid("watch=true&sendInitialEvents=true"),
            [
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
            ]
        );
        assert_eq!(
            invalid("watch=true&resourceVersionMatch=NotOlderThan"),
            [
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
            ]
        );
    }

    #[test]
    fn versions() {
        assert_eq!(Version::parse(None).unwrap(), Version::Unset);
        assert_eq!(Version::parse(Some("")).unwrap(), Version::Unset);
        assert_eq!(Version::parse(Some("0")).unwrap(), Version::Any);
        assert_eq!(Version::parse(Some("42")).unwrap(), Version::At(42));
        assert!(Version::parse(Some("-1")).is_err());
        assert!(Version::parse(Some("abc")).is_err());
    }

    #[test]
    fn accept_negotiation() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(table), Shape::List).unwrap(), Format::Table);
        assert_eq!(negotiate(Some(table), Shape::Watch).unwrap(), Format::Table);
        let kubectl_top = "application/vnd.kubernetes.protobuf,application/json";
        assert_eq!(negotiate(Some(kubectl_top), Shape::List).unwrap(), Format::Json);
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf"), Shape::List).unwrap(),
            Format::Json
        );
        assert_eq!(
            negotiate(Some("application/json, */*"), Shape::Object).unwrap(),
            Format::Json
        );
        assert_eq!(negotiate(None, Shape::List).unwrap(), Format::Json);
        let meta_list = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        assert_eq!(negotiate(Some(meta_list), Shape::List).unwrap(), Format::Metadata);
        let meta = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
        assert_eq!(negotiate(Some(meta), Shape::Watch).unwrap(), Format::Metadata);
        assert_eq!(negotiate(Some(meta), Shape::Object).unwrap(), Format::Metadata);
        assert!(matches!(
            negotiate(Some(meta), Shape::List),
            Err(ApiError::NotAcceptable(_))
        ));
        assert!(matches!(
            negotiate(Some(meta_list), Shape::Object),
            Err(ApiError::NotAcceptable(_))
        ));
        let client_go_meta = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
        assert_eq!(negotiate(Some(client_go_meta), Shape::List).unwrap(), Format::Metadata);
        let beta_only = "application/json;as=Table;v=v1beta1;g=meta.k8s.io";
        assert!(matches!(
            negotiate(Some(beta_only), Shape::List),
            Err(ApiError::NotAcceptable(_))
        ));
        assert!(matches!(
            negotiate(Some("text/html"), Shape::List),
            Err(ApiError::NotAcceptable(_))
        ));
        assert_eq!(
            content_type(Format::Table, Shape::List),
            "application/json;as=Table;v=v1;g=meta.k8s.io"
        );
        assert_eq!(content_type(Format::Metadata, Shape::Watch), "application/json");
    }
}
