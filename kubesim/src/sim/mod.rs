//! The simulated cluster's model: pure state, events and ground truth.

pub mod events;
pub mod generate;
pub mod model;
pub mod rng;
pub mod truth;
pub mod usage;
pub mod world;

pub use events::SimEvent;
pub use model::{ContainerKind, ContainerSpec, Millis, NodeSpec, PodKey, PodPhase, PodSpec};
pub use usage::Profile;
pub use world::{Changed, World, WorldError};
