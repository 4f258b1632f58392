//! Serving the Metrics API over HTTPS: the TLS configuration and the reloadable serving
//! certificate, the listener (HTTP/2 and HTTP/1.1, graceful shutdown with GOAWAY) and the
//! bridge that hands each request to the actix-web application. Who the caller is and what it
//! may do live in [`crate::auth`].

pub mod bridge;
pub mod listener;
pub mod reload;
pub mod tls;
