//! [`Report`]: the outcome of one triage, as `probe --format json` prints it. Pure data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::verdict::Verdict;
use crate::evidence::Evidence;

/// The outcome of one triage: the verdict and the evidence it rests on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub verdict: Verdict,
    pub evidence: Evidence,
    pub triaged_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub version: String,
}
