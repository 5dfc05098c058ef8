//! Remediation: plans, their fingerprints, and the executor — the only code that writes.
//!
//! `plan` computes what a fix will change from a triage report (pure); `rollout` holds
//! kubectl's restart patch and its rollout-status rules for Deployments, StatefulSets and
//! DaemonSets (pure) and `restart` applies them to a workload of each kind; `executor`
//! re-probes, checks the approved fingerprint, writes the Vault config or restarts workloads
//! in batches (stopping after a batch with a failed rollout), and verifies; `watch` judges the
//! reviewer token's expiry (pure).

pub mod executor;
pub mod plan;
pub mod restart;
pub mod rollout;
pub mod watch;

pub use executor::{ExecError, ExecutionOutcome, Remediator, Step};
pub use plan::{Plan, PlanError, PlanSettings, Strategy};
