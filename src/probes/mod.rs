//! Probe runner: asks Vault and Kubernetes everything the diagnosis needs, as evidence.
//!
//! Probes only read (the canary login and its secret read are the only calls with an effect,
//! and the canary's Vault token is revoked afterwards). They fill the evidence model
//! (`crate::evidence`) the pure `diagnosis` reads; `runner` schedules the calls so that independent ones run
//! together and dependent ones wait only for what they need; `kube_api` checks Vault's
//! `kubernetes_host` from the bot's vantage point and compares CAs; `active_node` reads
//! `sys/monitor` from the active node when `VAULT_ADDR` is a standby; `triage` runs them and
//! diagnoses what they saw.

mod active_node;
mod kube_api;
mod runner;
mod triage;

pub use kube_api::{ca_bundles_share_a_certificate, check_kube_api};
pub use runner::{CANARY_TOKEN_SECONDS, ProbeTarget, Probes, run};
pub use triage::triage;
