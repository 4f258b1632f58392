//! Serving the Metrics API over HTTPS: the TLS configuration and the reloadable serving
//! certificate. Who the caller is and what it may do live in [`crate::auth`].

pub mod reload;
pub mod tls;
