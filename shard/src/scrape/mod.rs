//! Scraping kubelets: where (`target`), how securely (`tls`), with which credentials (`token`)
//! and the HTTP client (`client`).
//! Read path: kubelet -> **scrape** -> parse -> store.

pub mod client;
pub mod dns;
pub mod http1;
pub mod target;
pub mod tls;
pub mod token;

pub use client::{KubeletClient, ScrapeError, Scraped};
pub use target::{AddressPolicy, NodeInfo, ScrapeTarget};
pub use token::{BearerToken, TokenError};
