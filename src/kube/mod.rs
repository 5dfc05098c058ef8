//! Kubernetes calls (kube-rs): what the probes ask the cluster, and as whom.
//!
//! [`KubeClient`] wraps one `kube::Client` for the bot's own identity and can make a second
//! one that authenticates with another bearer (the reviewer token, tried *as the caller*).
//! It fills the evidence model's types (`crate::evidence`); `error` types the failures the
//! diagnosis branches on; `restart` writes the restart patch and watches a workload; `resync`
//! annotates the operators' objects (merge patch); `injector` reads the agent injector's
//! annotations; `pods` follows the injected pods to their owners; `lists`
//! reads the blast radius's list pages into only the fields the bot uses.

mod client;
mod error;
pub mod injector;
mod lists;
pub mod operators;
pub mod pods;
mod restart;
mod resync;

pub use client::{IssuedToken, KubeClient, SecretToken};
pub use error::KubeError;
