//! vault-triage: root-causes Vault Kubernetes-auth incidents and drives approval-gated fixes.
//!
//! The crate is split along the design's layers: `vault` and `kube` do I/O against the two
//! systems, `probes` runs them into evidence, `diagnosis` turns evidence into a verdict without
//! any I/O, `remediation` plans and runs fixes, `approval` decides who may let them run,
//! `incident` keeps the audit journal, `chat` speaks to people, and `lab` simulates Vault and
//! Kubernetes for demos and tests.

pub mod alerts;
pub mod app;
pub mod approval;
pub mod chat;
pub mod cli;
pub mod config;
pub mod demo;
pub mod diagnosis;
pub mod evidence;
pub mod id;
pub mod kube;
pub mod lab;
pub mod leader;
pub mod metrics;
pub mod probes;
pub mod remediation;
pub mod server;
pub mod services;
pub mod store;
pub mod telemetry;
pub mod terminal;
pub mod vault;

/// Joins an error and its sources into one line.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
