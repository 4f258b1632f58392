//! The fake kube-apiserver: discovery, `/version`, list/get/watch of Nodes, Pods, Namespaces and
//! ConfigMaps, TokenReview and SubjectAccessReview, and the aggregation proxy for
//! `/apis/metrics.k8s.io`.

pub mod auth;
pub mod discovery;
mod list;
pub mod objects;
pub mod params;
mod printers;
pub mod proxy;
pub mod resources;
pub mod server;
pub mod status;
pub mod store;
pub mod table;
pub mod watch;
