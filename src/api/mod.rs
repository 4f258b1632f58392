//! The Metrics API's response-building layer: pure functions that turn usage values (from the
//! store, the Node cache and the pod metadata cache) into the exact bytes metrics-server serves.
//! No IO and no actix here; the handlers (`routes.rs`) call these and move bytes.
//!
//! - [`types`]: `NodeMetrics` / `PodMetrics` objects and lists as JSON;
//! - [`table`]: `meta.k8s.io` Table output and `Accept` negotiation (JSON, Table, protobuf);
//! - [`protobuf`]: the Kubernetes protobuf envelope around the same objects and `Status`;
//! - [`discovery`]: `/apis`, `/apis/metrics.k8s.io[/v1beta1]` (legacy and aggregated v2), `/version`;
//! - [`openapi`]: `/openapi/v2`, `/openapi/v3` and the v3 group-version document;
//! - [`error`]: every failure as a Kubernetes `Status`;
//! - [`quantity`]: `resource.Quantity` strings (Go durations: `apimachinery::duration`);
//! - [`json`], [`accept`]: Go-compatible JSON bytes and `Accept` parsing.

pub mod accept;
pub mod discovery;
pub mod error;
pub mod json;
pub mod openapi;
pub mod protobuf;
pub mod quantity;
pub mod table;
pub mod types;
