//! Serving the Metrics API over HTTPS: TLS configuration and caller identity.

pub mod identity;
pub mod tls;
