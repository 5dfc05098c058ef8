//! The services below chat: what the bot does, whoever asks. Chat, the alert intake, the
//! reviewer watch and the demo all go through [`Services`]; none of them decides anything the
//! services decide.
//!
//! - [`triage`]: runs triages, keeps the ones people may act on, one per cause.
//! - [`fixes`]: proposals, approvals and execution at quorum, recorded.
//! - [`approvals`]: the live, recorded approval requests.
//! - [`changes`]: the bot's own changes, counted, so no triage from before one is reused.
//! - [`reviewer`]: the reviewer watch's round.
//! - [`work`]: the work in flight behind the edges' answers.
//! - [`keyed`]: one async lock per key, forgotten when unused.
//!
//! The composition root (`crate::app`) builds one `Services` for `serve`, the demo and the
//! tests alike.

pub mod approvals;
pub mod changes;
pub mod fixes;
pub mod keyed;
pub mod reviewer;
pub mod triage;
pub mod work;

use std::sync::Arc;
use std::time::Duration;

use crate::approval::Policy;
use crate::config::FileConfig;
use crate::store::Store;

pub use approvals::{ApprovalStore, INTERRUPTED_OUTCOME, Proposal, RestoreReport};
pub use changes::Changes;
pub use fixes::{Approved, FixError, Fixes, Progress};
pub use triage::{Kept, TriageService, Triaged};
pub use work::InFlight;

/// Everything a running bot shares.
pub struct Services {
    pub config: FileConfig,
    /// The state: the audit trail and the live requests and incidents.
    pub store: Arc<Store>,
    pub triage: TriageService,
    pub fixes: Fixes,
    /// The tasks behind the edges' answers (commands, clicks, incidents).
    pub work: InFlight,
    /// What the journal's replay found at start: requests a restart interrupted, and requests
    /// that reached their quorum but never started.
    pub restored: RestoreReport,
}

impl Services {
    /// The approval policy.
    pub fn policy(&self) -> &Policy {
        self.fixes.policy()
    }

    /// How long before the reviewer token of `cluster` expires the watch warns.
    pub fn warn_before_in(&self, cluster: &str) -> Duration {
        self.config
            .clusters()
            .into_iter()
            .find(|c| c.name == cluster)
            .and_then(|c| c.reviewer)
            .map(|r| r.warn_before)
            .unwrap_or_else(|| self.warn_before())
    }

    /// How long before the reviewer token expires the watch warns (`[reviewer]`).
    pub fn warn_before(&self) -> Duration {
        self.config
            .reviewer
            .as_ref()
            .map(|r| r.warn_before)
            .unwrap_or(crate::remediation::watch::DEFAULT_WARN_BEFORE)
    }
}
