//! The `ha-metrics-server` library: the server's modules, wired together by `main.rs`.

pub mod config;
pub mod health;
pub mod informer;
pub mod metrics;
pub mod serve;
