//! Kubernetes calls (kube-rs): what the probes ask the cluster, and as whom.
//!
//! [`KubeClient`] wraps one `kube::Client` for the bot's own identity and can make a second
//! one that authenticates with another bearer (the reviewer token, tried *as the caller*).
//! `claims` decodes ServiceAccount JWT claims for display and expiry checks; `error` types
//! the failures the diagnosis branches on.

pub mod claims;
mod client;
mod error;
mod restart;

pub use claims::TokenClaims;
pub use client::{IssuedToken, KubeClient, ReviewResult, SecretToken, Workload};
pub use error::KubeError;
