//! `chaos`: the chaos runner ([`runner`], binary `chaos`: seeded faults against a replica set
//! on kubesim, invariants, reports, campaigns), the scale benchmark ([`bench`], binary
//! `scale-bench`) and the demo (binary `demo`). The simulated cluster itself is the `kubesim`
//! crate.

pub mod bench;
pub mod runner;
