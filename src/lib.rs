//! vault-triage: root-causes Vault Kubernetes-auth incidents and drives approval-gated fixes.
//!
//! The crate is split along the design's layers: `vault` and `kube` do I/O against the two
//! systems, `probes` runs them into evidence, `diagnosis` turns evidence into a verdict without
//! any I/O, and `lab` simulates both systems for demos and tests.

pub mod lab;
