//! Rollout status the way `kubectl rollout status` judges a Deployment, a StatefulSet and a
//! DaemonSet (facts/vault-consumers.md §5), and the restart patch `kubectl rollout restart`
//! sends to each of them. Pure; `restart` carries them to the cluster.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};

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

/// kubectl's error for a StatefulSet or DaemonSet whose `updateStrategy` is not RollingUpdate.
pub const ONLY_ROLLING_UPDATE: &str =
    "rollout status is only available for RollingUpdate strategy type";

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

/// kubectl's `StatefulSetStatusViewer`, rule for rule, on the object as the API server
/// returns it (an empty `updateStrategy.type` is defaulted to RollingUpdate with partition 0,
/// an absent `rollingUpdate.partition` to 0 and an absent `replicas` to 1, as the API server
/// defaults them). An OnDelete StatefulSet is [`RolloutStatus::Failed`] with kubectl's error.
pub fn statefulset_status(s: &StatefulSet) -> RolloutStatus {
    let id = workload_id("StatefulSet", &s.metadata);
    let strategy = s.spec.update_strategy.clone().unwrap_or_default();
    // Defaulting (kubernetes pkg/apis/apps/v1/defaults.go): rollingUpdate{partition: 0} only
    // when the type was empty.
    let (type_, rolling) = match strategy.type_.as_deref() {
        None | Some("") => (
            "RollingUpdate",
            Some(strategy.rolling_update.unwrap_or_default()),
        ),
        Some(t) => (t, strategy.rolling_update),
    };
    if type_ != "RollingUpdate" {
        return RolloutStatus::Failed(ONLY_ROLLING_UPDATE.into());
    }
    let generation = s.metadata.generation.unwrap_or(0);
    let status = s.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    if observed == 0 || generation > observed {
        return RolloutStatus::Progressing(
            "Waiting for statefulset spec update to be observed...".into(),
        );
    }
    let replicas = s.spec.replicas.unwrap_or(1);
    let ready = status.ready_replicas.unwrap_or(0);
    if ready < replicas {
        return RolloutStatus::Progressing(format!(
            "Waiting for {} pods to be ready...",
            replicas - ready
        ));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    if let Some(rolling) = rolling {
        let partition = rolling.partition.unwrap_or(0);
        let want = replicas - partition;
        if updated < want {
            return RolloutStatus::Progressing(format!(
                "Waiting for partitioned roll out to finish: {updated} out of {want} new pods have been updated..."
            ));
        }
        let part = if partition > 0 {
            format!(", partition {partition}")
        } else {
            String::new()
        };
        return RolloutStatus::Complete(format!(
            "{id} rolled out ({updated}/{want} updated{part})"
        ));
    }
    let update_revision = status.update_revision.clone().unwrap_or_default();
    let current_revision = status.current_revision.clone().unwrap_or_default();
    if update_revision != current_revision {
        return RolloutStatus::Progressing(format!(
            "waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
        ));
    }
    RolloutStatus::Complete(format!(
        "{id} rolled out ({} pods at revision {current_revision})",
        status.current_replicas.unwrap_or(0)
    ))
}

/// kubectl's `DaemonSetStatusViewer`, rule for rule (an empty `updateStrategy.type` is
/// RollingUpdate, as the API server defaults it). An OnDelete DaemonSet is
/// [`RolloutStatus::Failed`] with kubectl's error.
pub fn daemonset_status(d: &DaemonSet) -> RolloutStatus {
    let id = workload_id("DaemonSet", &d.metadata);
    let name = d.metadata.name.clone().unwrap_or_default();
    let type_ = d
        .spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        .filter(|t| !t.is_empty())
        .unwrap_or("RollingUpdate");
    if type_ != "RollingUpdate" {
        return RolloutStatus::Failed(ONLY_ROLLING_UPDATE.into());
    }
    let generation = d.metadata.generation.unwrap_or(0);
    let status = d.status.clone().unwrap_or_default();
    if generation > status.observed_generation.unwrap_or(0) {
        return RolloutStatus::Progressing(
            "Waiting for daemon set spec update to be observed...".into(),
        );
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    if updated < desired {
        return RolloutStatus::Progressing(format!(
            "Waiting for daemon set {name:?} rollout to finish: {updated} out of {desired} new pods have been updated..."
        ));
    }
    if available < desired {
        return RolloutStatus::Progressing(format!(
            "Waiting for daemon set {name:?} rollout to finish: {available} of {desired} updated pods are available..."
        ));
    }
    RolloutStatus::Complete(format!("{id} rolled out ({updated}/{desired} updated)"))
}

/// `StatefulSet production/ledger-db`.
fn workload_id(
    kind: &str,
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> String {
    format!(
        "{kind} {}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
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

    fn statefulset(spec: serde_json::Value, status: serde_json::Value) -> StatefulSet {
        let mut spec = spec;
        spec["selector"] = serde_json::json!({});
        spec["template"] = serde_json::json!({});
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "ledger-db", "namespace": "production", "generation": 4},
            "spec": spec,
            "status": status
        }))
        .unwrap()
    }

    fn rolling(partition: i32) -> serde_json::Value {
        serde_json::json!({"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}})
    }

    fn progressing(s: RolloutStatus) -> String {
        match s {
            RolloutStatus::Progressing(m) => m,
            other => panic!("not progressing: {other:?}"),
        }
    }

    #[test]
    fn an_on_delete_statefulset_has_no_rollout_status() {
        let s = statefulset(
            serde_json::json!({"replicas": 3, "updateStrategy": {"type": "OnDelete"}}),
            serde_json::json!({"replicas": 3, "observedGeneration": 4, "readyReplicas": 3, "updatedReplicas": 3}),
        );
        assert_eq!(
            statefulset_status(&s),
            RolloutStatus::Failed(
                "rollout status is only available for RollingUpdate strategy type".into()
            )
        );
    }

    #[test]
    fn a_statefulset_waits_for_its_generation_to_be_observed() {
        // observedGeneration 0 (never observed) and behind the generation both wait.
        for observed in [0, 3] {
            let s = statefulset(
                rolling(0),
                serde_json::json!({"replicas": 3, "observedGeneration": observed, "readyReplicas": 3, "updatedReplicas": 3}),
            );
            assert_eq!(
                progressing(statefulset_status(&s)),
                "Waiting for statefulset spec update to be observed..."
            );
        }
    }

    #[test]
    fn a_statefulset_waits_for_ready_replicas_before_counting_updates() {
        let s = statefulset(
            rolling(0),
            serde_json::json!({"replicas": 3, "observedGeneration": 4, "readyReplicas": 1, "updatedReplicas": 3}),
        );
        assert_eq!(
            progressing(statefulset_status(&s)),
            "Waiting for 2 pods to be ready..."
        );
    }

    #[test]
    fn a_partitioned_statefulset_is_done_when_the_pods_above_the_partition_are_updated() {
        let s = statefulset(
            rolling(0),
            serde_json::json!({"replicas": 3, "observedGeneration": 4, "readyReplicas": 3, "updatedReplicas": 2,
                "currentRevision": "ledger-db-1", "updateRevision": "ledger-db-2"}),
        );
        assert_eq!(
            progressing(statefulset_status(&s)),
            "Waiting for partitioned roll out to finish: 2 out of 3 new pods have been updated..."
        );
        let s = statefulset(
            rolling(0),
            serde_json::json!({"replicas": 3, "observedGeneration": 4, "readyReplicas": 3, "updatedReplicas": 3,
                "currentRevision": "ledger-db-1", "updateRevision": "ledger-db-2"}),
        );
        // With rollingUpdate set, kubectl does not compare the revisions.
        assert_eq!(
            statefulset_status(&s),
            RolloutStatus::Complete(
                "StatefulSet production/ledger-db rolled out (3/3 updated)".into()
            )
        );
        // Partition 2: only the pod with ordinal 2 is updated.
        let s = statefulset(
            rolling(2),
            serde_json::json!({"replicas": 3, "observedGeneration": 4, "readyReplicas": 3, "updatedReplicas": 1}),
        );
        assert_eq!(
            statefulset_status(&s),
            RolloutStatus::Complete(
                "StatefulSet production/ledger-db rolled out (1/1 updated, partition 2)".into()
            )
        );
    }

    #[test]
    fn a_statefulset_without_rolling_update_compares_revisions() {
        let spec = serde_json::json!({"replicas": 2, "updateStrategy": {"type": "RollingUpdate"}});
        let s = statefulset(
            spec.clone(),
            serde_json::json!({"replicas": 2, "observedGeneration": 4, "readyReplicas": 2, "updatedReplicas": 1,
                "currentReplicas": 1, "currentRevision": "ledger-db-1", "updateRevision": "ledger-db-2"}),
        );
        assert_eq!(
            progressing(statefulset_status(&s)),
            "waiting for statefulset rolling update to complete 1 pods at revision ledger-db-2..."
        );
        let s = statefulset(
            spec,
            serde_json::json!({"replicas": 2, "observedGeneration": 4, "readyReplicas": 2, "updatedReplicas": 2,
                "currentReplicas": 2, "currentRevision": "ledger-db-2", "updateRevision": "ledger-db-2"}),
        );
        assert_eq!(
            statefulset_status(&s),
            RolloutStatus::Complete(
                "StatefulSet production/ledger-db rolled out (2 pods at revision ledger-db-2)"
                    .into()
            )
        );
    }

    #[test]
    fn an_empty_statefulset_strategy_is_defaulted_to_partition_zero() {
        let s = statefulset(
            serde_json::json!({}),
            serde_json::json!({"replicas": 1, "observedGeneration": 4, "readyReplicas": 1, "updatedReplicas": 0}),
        );
        assert_eq!(
            progressing(statefulset_status(&s)),
            "Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated..."
        );
    }

    fn daemonset(strategy: &str, generation: i64, status: serde_json::Value) -> DaemonSet {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "log-shipper", "namespace": "production", "generation": generation},
            "spec": {"selector": {}, "template": {}, "updateStrategy": {"type": strategy}},
            "status": status
        }))
        .unwrap()
    }

    fn ds_status(observed: i64, desired: i32, updated: i32, available: i32) -> serde_json::Value {
        serde_json::json!({"observedGeneration": observed, "desiredNumberScheduled": desired,
            "updatedNumberScheduled": updated, "numberAvailable": available,
            "currentNumberScheduled": desired, "numberMisscheduled": 0, "numberReady": available})
    }

    #[test]
    fn daemonset_rules_in_kubectls_order() {
        let d = daemonset("OnDelete", 2, ds_status(2, 3, 3, 3));
        assert_eq!(
            daemonset_status(&d),
            RolloutStatus::Failed(
                "rollout status is only available for RollingUpdate strategy type".into()
            )
        );
        let d = daemonset("RollingUpdate", 3, ds_status(2, 3, 3, 3));
        assert_eq!(
            progressing(daemonset_status(&d)),
            "Waiting for daemon set spec update to be observed..."
        );
        let d = daemonset("RollingUpdate", 3, ds_status(3, 3, 1, 3));
        assert_eq!(
            progressing(daemonset_status(&d)),
            "Waiting for daemon set \"log-shipper\" rollout to finish: 1 out of 3 new pods have been updated..."
        );
        let d = daemonset("RollingUpdate", 3, ds_status(3, 3, 3, 2));
        assert_eq!(
            progressing(daemonset_status(&d)),
            "Waiting for daemon set \"log-shipper\" rollout to finish: 2 of 3 updated pods are available..."
        );
        let d = daemonset("RollingUpdate", 3, ds_status(3, 3, 3, 3));
        assert_eq!(
            daemonset_status(&d),
            RolloutStatus::Complete(
                "DaemonSet production/log-shipper rolled out (3/3 updated)".into()
            )
        );
    }
}
