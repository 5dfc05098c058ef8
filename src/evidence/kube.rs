//! What Kubernetes answered, as the diagnosis reads it: the Kubernetes client fills these
//! types, the pure core decides on them.

use serde::{Deserialize, Serialize};

/// The answer of a TokenReview.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReviewResult {
    pub authenticated: bool,
    pub username: Option<String>,
    pub uid: Option<String>,
    pub audiences: Vec<String>,
    pub error: Option<String>,
}

/// A workload that logs in to Vault: a Deployment whose pod template names a Vault role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Workload {
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub uid: String,
    pub role: String,
    pub service_account: String,
    pub replicas: i32,
}
