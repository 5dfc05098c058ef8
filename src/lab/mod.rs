//! The lab: a simulated Vault and Kubernetes API on loopback.
