//! Scraping kubelets: where (`target`), how securely (`tls`) and the HTTP client (`client`).
//! Read path: kubelet -> **scrape** -> parse -> store.

pub mod client;
pub mod target;
pub mod tls;

pub use client::{KubeletClient, ScrapeError, Scraped};
pub use target::{AddressPolicy, NodeInfo, ScrapeTarget};
