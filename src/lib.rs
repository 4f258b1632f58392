//! The `ha-metrics-server` library: the server's modules, wired together by `main.rs`.
//!
//! Read path: `shard` (scrape -> parse -> store, in shard actors) -> [`query`] -> [`web`] ->
//! [`api`] bytes. Control: [`informer`] caches -> [`app`] recomputes scrape targets.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod cpus;
pub mod ha;
pub mod health;
pub mod informer;
pub mod kubeconfig;
pub mod listeners;
pub mod memory;
pub mod metrics;
pub mod peer;
pub mod query;
pub mod serve;
pub mod web;
