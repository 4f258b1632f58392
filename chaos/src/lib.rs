//! `chaos`: the cluster simulator `kubesim` (a fake kube-apiserver with an aggregation proxy and
//! thousands of fake kubelets), fault injection, and later the chaos runner and scale benchmark.
//!
//! Everything else in the project is tested against this crate, so it speaks the real
//! protocols: the kubelet's `/metrics/resource` text format over HTTPS, the apiserver's list and
//! watch JSON, and the aggregation layer's front-proxy authentication.

pub mod http;
pub mod kubelet;
pub mod pki;
pub mod sim;
