//! Fake kubelets: one HTTPS listener per node on its own 127.x.y.z address, serving
//! `/metrics/resource` from the simulated world, with switchable faults.

pub mod faults;
pub mod gofloat;
pub mod host;
pub mod render;
pub mod server;
pub mod worker;

pub use faults::{Family, Fault};
pub use host::{HostConfig, KubeletHost, KubeletStats};
