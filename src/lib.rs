//! The `ha-metrics-server` library: the server's modules, wired together by `main.rs`.

pub mod config;
pub mod informer;
