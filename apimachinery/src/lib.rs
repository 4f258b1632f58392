//! Kubernetes text formats, each written once for the whole workspace, after
//! k8s.io/apimachinery and Go's `time` package: label and field selectors ([`selector`]) and Go
//! durations ([`duration`]). Pure: no IO, no clocks.

pub mod duration;
pub mod selector;
