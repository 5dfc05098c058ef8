//! Rollout status the way `kubectl rollout status` judges a Deployment (facts §5.6), and the
//! restart patch `kubectl rollout restart` sends (facts §5.5). Pure; `restart` carries them
//! to the cluster.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;

/// Field manager `kubectl rollout restart` uses.
pub const FIELD_MANAGER: &str = "kubectl-rollout";
/// Pod-template annotation that triggers the restart.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutStatus {
    /// Still rolling; the message says how far, in kubectl's words.
    Progressing(String),
    /// `deployment "<n>" successfully rolled out`.
    Complete(String),
    /// `deployment "<n>" exceeded its progress deadline`.
    Failed(String),
}

/// The strategic-merge patch body of a restart at `at`.
pub fn restart_patch(at: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "spec": {"template": {"metadata": {"annotations": {
            RESTARTED_AT: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }}}}
    })
}

/// kubectl's `DeploymentStatusViewer`, rule for rule.
pub fn rollout_status(d: &Deployment) -> RolloutStatus {
    let name = d.metadata.name.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return RolloutStatus::Progressing(
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    let deadline_exceeded = status.conditions.as_ref().is_some_and(|cs| {
        cs.iter().any(|c| {
            c.type_.as_deref() == Some("Progressing")
                && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
    });
    if deadline_exceeded {
        return RolloutStatus::Failed(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    let want = d.spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    if updated < want {
        return RolloutStatus::Progressing(format!(
            "Waiting for deployment {name:?} rollout to finish: {updated} out of {want} new replicas have been updated..."
        ));
    }
    if replicas > updated {
        return RolloutStatus::Progressing(format!(
            "Waiting for deployment {name:?} rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return RolloutStatus::Progressing(format!(
            "Waiting for deployment {name:?} rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    RolloutStatus::Complete(format!("deployment {name:?} successfully rolled out"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(json: serde_json::Value) -> Deployment {
        serde_json::from_value(json).unwrap()
    }

    fn base(generation: i64, observed: i64, status: serde_json::Value) -> Deployment {
        let mut s = status;
        s["observedGeneration"] = observed.into();
        deployment(serde_json::json!({
            "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": 2, "selector": {}, "template": {}},
            "status": s
        }))
    }

    #[test]
    fn an_unobserved_generation_is_waiting_for_the_spec_update() {
        let d = base(
            3,
            2,
            serde_json::json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(
            rollout_status(&d),
            RolloutStatus::Progressing(
                "Waiting for deployment spec update to be observed...".into()
            )
        );
    }

    #[test]
    fn kubectls_stages_in_order() {
        let d = base(
            3,
            3,
            serde_json::json!({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 2}),
        );
        assert!(
            matches!(rollout_status(&d), RolloutStatus::Progressing(m) if m.contains("1 out of 2 new replicas"))
        );
        let d = base(
            3,
            3,
            serde_json::json!({"replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert!(
            matches!(rollout_status(&d), RolloutStatus::Progressing(m) if m.contains("1 old replicas are pending termination"))
        );
        let d = base(
            3,
            3,
            serde_json::json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}),
        );
        assert!(
            matches!(rollout_status(&d), RolloutStatus::Progressing(m) if m.contains("1 of 2 updated replicas are available"))
        );
        let d = base(
            3,
            3,
            serde_json::json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
        );
        assert_eq!(
            rollout_status(&d),
            RolloutStatus::Complete("deployment \"web\" successfully rolled out".into())
        );
    }

    #[test]
    fn progress_deadline_exceeded_is_a_failure() {
        let d = base(
            3,
            3,
            serde_json::json!({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 2,
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        );
        assert_eq!(
            rollout_status(&d),
            RolloutStatus::Failed("deployment \"web\" exceeded its progress deadline".into())
        );
    }

    #[test]
    fn the_restart_patch_sets_kubectls_annotation() {
        let at = DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            restart_patch(at),
            serde_json::json!({"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-28T12:00:00Z"}}}}})
        );
    }
}
