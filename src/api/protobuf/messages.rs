//! The messages the protobuf bodies carry, as prost structs written from the published
//! definitions (`k8s.io/metrics` `pkg/apis/metrics/v1beta1/generated.proto`, apimachinery
//! `pkg/runtime/generated.proto`, `pkg/apis/meta/v1/generated.proto`,
//! `pkg/api/resource/generated.proto`; `v1` has the same messages under another package).
//! Only the fields we write are declared; decoders skip the others.
//!
//! The writers in `metrics.rs` and `status.rs` do not use these (they write straight from the
//! rows); the structs decode what they wrote, in tests and for anyone reading our bodies in
//! Rust.

use std::collections::BTreeMap;

use prost::Message;

/// `runtime.Unknown`: the envelope after the `k8s\0` magic.
#[derive(Clone, PartialEq, Message)]
pub struct Unknown {
    #[prost(message, optional, tag = "1")]
    pub type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub raw: Option<Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    pub content_encoding: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub content_type: Option<String>,
}

/// `runtime.TypeMeta`.
#[derive(Clone, PartialEq, Message)]
pub struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    pub api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub kind: Option<String>,
}

/// `meta.v1.ObjectMeta` (the fields a metrics object uses).
#[derive(Clone, PartialEq, Message)]
pub struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub namespace: Option<String>,
    #[prost(message, optional, tag = "8")]
    pub creation_timestamp: Option<Time>,
    #[prost(btree_map = "string, string", tag = "11")]
    pub labels: BTreeMap<String, String>,
}

/// `meta.v1.ListMeta`.
#[derive(Clone, PartialEq, Message)]
pub struct ListMeta {
    #[prost(string, optional, tag = "2")]
    pub resource_version: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub r#continue: Option<String>,
    #[prost(int64, optional, tag = "4")]
    pub remaining_item_count: Option<i64>,
}

/// `meta.v1.Time` (as `meta.v1.Timestamp`: seconds; nanos always 0).
#[derive(Clone, PartialEq, Message)]
pub struct Time {
    #[prost(int64, optional, tag = "1")]
    pub seconds: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    pub nanos: Option<i32>,
}

/// `meta.v1.Duration`, nanoseconds.
#[derive(Clone, PartialEq, Message)]
pub struct Duration {
    #[prost(int64, optional, tag = "1")]
    pub duration: Option<i64>,
}

/// `resource.Quantity`, as its canonical string.
#[derive(Clone, PartialEq, Message)]
pub struct Quantity {
    #[prost(string, optional, tag = "1")]
    pub string: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeMetrics {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    pub timestamp: Option<Time>,
    #[prost(message, optional, tag = "3")]
    pub window: Option<Duration>,
    #[prost(btree_map = "string, message", tag = "4")]
    pub usage: BTreeMap<String, Quantity>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeMetricsList {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ListMeta>,
    #[prost(message, repeated, tag = "2")]
    pub items: Vec<NodeMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ContainerMetrics {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(btree_map = "string, message", tag = "2")]
    pub usage: BTreeMap<String, Quantity>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PodMetrics {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    pub timestamp: Option<Time>,
    #[prost(message, optional, tag = "3")]
    pub window: Option<Duration>,
    #[prost(message, repeated, tag = "4")]
    pub containers: Vec<ContainerMetrics>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PodMetricsList {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ListMeta>,
    #[prost(message, repeated, tag = "2")]
    pub items: Vec<PodMetrics>,
}

/// `meta.v1.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<ListMeta>,
    #[prost(string, optional, tag = "2")]
    pub status: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub message: Option<String>,
    #[prost(string, optional, tag = "4")]
    pub reason: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub details: Option<StatusDetails>,
    #[prost(int32, optional, tag = "6")]
    pub code: Option<i32>,
}

/// `meta.v1.StatusDetails`.
#[derive(Clone, PartialEq, Message)]
pub struct StatusDetails {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub group: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub kind: Option<String>,
    #[prost(message, repeated, tag = "4")]
    pub causes: Vec<StatusCause>,
    #[prost(int32, optional, tag = "5")]
    pub retry_after_seconds: Option<i32>,
}

/// `meta.v1.StatusCause`.
#[derive(Clone, PartialEq, Message)]
pub struct StatusCause {
    #[prost(string, optional, tag = "1")]
    pub reason: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub message: Option<String>,
    #[prost(string, optional, tag = "3")]
    pub field: Option<String>,
}
