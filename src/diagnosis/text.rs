//! Words for people: the headline, the summary paragraph, the fitting remediations and the
//! reminders. Everything here is derived from the evidence; nothing reads a clock.

use chrono::{DateTime, Utc};

use super::consumers::Signs;
use super::verdict::{
    AffectedWorkload, Remediation, RemediationKind, SecretSyncState, VerdictCode,
};
use super::words::{ago, log_reason, utc};
use crate::evidence::{Evidence, LoginOutcome, Probe, ReviewerEvidence, Via, WorkloadKind};

fn reviewer(e: &Evidence) -> Option<&ReviewerEvidence> {
    e.reviewer.value()
}

fn reviewer_name(e: &Evidence) -> String {
    e.target
        .reviewer
        .clone()
        .unwrap_or_else(|| "the configured reviewer".into())
}

fn login_message(e: &Evidence) -> String {
    match e.login.value() {
        Some(LoginOutcome::Refused { status, message }) => format!("{status} {message}"),
        _ => String::new(),
    }
}

fn vault_state(e: &Evidence) -> &'static str {
    match e.health.value() {
        Some(h) if h.standby => "Vault is healthy (unsealed, standby).",
        Some(_) => "Vault is healthy (unsealed, active).",
        None => "Vault's health could not be read.",
    }
}

/// One line.
pub fn headline(e: &Evidence, code: VerdictCode, now: DateTime<Utc>) -> String {
    let mount = &e.target.auth_mount;
    let role = &e.target.role;
    match code {
        VerdictCode::Healthy => {
            format!("Vault Kubernetes auth works: a canary login through auth/{mount} succeeds")
        }
        VerdictCode::VaultUnreachable => {
            format!("Vault does not answer at {}", e.target.vault_addr)
        }
        VerdictCode::VaultSealed => {
            "Vault is sealed: every request fails until it is unsealed".into()
        }
        VerdictCode::K8sAuthMountMissing => {
            format!("No Kubernetes auth method is mounted at auth/{mount}")
        }
        VerdictCode::K8sAuthUnconfigured => format!("auth/{mount} has never been configured"),
        VerdictCode::ReviewerJwtExpired => {
            let exp = reviewer(e)
                .and_then(|r| r.claims.as_ref())
                .and_then(|c| c.expires_at);
            match exp {
                Some(x) => format!(
                    "Vault Kubernetes auth is failing: the reviewer token expired {}",
                    ago(now, x)
                ),
                None => "Vault Kubernetes auth is failing: the reviewer token expired".into(),
            }
        }
        VerdictCode::ReviewerJwtRejected => {
            "Vault Kubernetes auth is failing: Kubernetes rejects the reviewer token".into()
        }
        VerdictCode::ReviewerRbacMissing => {
            "Vault Kubernetes auth is failing: the reviewer may not create TokenReviews".into()
        }
        VerdictCode::KubeApiUnreachable => {
            "Vault Kubernetes auth is failing: Vault cannot reach the Kubernetes API".into()
        }
        VerdictCode::KubeCaMismatch => {
            "Vault Kubernetes auth is failing: the configured CA does not verify the Kubernetes API"
                .into()
        }
        VerdictCode::ClientJwtRejected => "Kubernetes itself rejects the pod token".into(),
        VerdictCode::RoleBindingMismatch => {
            format!("Role {role} does not bind the ServiceAccount that logs in")
        }
        VerdictCode::AudienceMismatch => format!("Role {role} expects another token audience"),
        VerdictCode::IssuerMismatch => format!("auth/{mount} expects another token issuer"),
        VerdictCode::RoleNotFound if role == &e.target.canary_role => {
            format!("The bot's canary role {role} does not exist in auth/{mount}")
        }
        VerdictCode::RoleNotFound => format!("Role {role} does not exist in auth/{mount}"),
        VerdictCode::PolicyDenied => "Login works; the Vault policy denies the secret".into(),
        VerdictCode::Inconclusive => {
            "Logins fail, and the evidence does not point at one cause".into()
        }
    }
}

/// "5 deployments", or "7 workloads (4 Deployments, 1 StatefulSet, 1 DaemonSet, 1 CronJob)"
/// when other kinds are among them.
pub fn workload_count(workloads: &[AffectedWorkload]) -> String {
    let n = workloads.len();
    let s = if n == 1 { "" } else { "s" };
    if workloads.iter().all(|w| w.kind == WorkloadKind::Deployment) {
        return format!("{n} deployment{s}");
    }
    let mut by_kind: Vec<String> = Vec::new();
    for kind in [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::CronJob,
        WorkloadKind::Job,
        WorkloadKind::Rollout,
        WorkloadKind::ReplicaSet,
        WorkloadKind::Pod,
    ] {
        let k = workloads.iter().filter(|w| w.kind == kind).count();
        if k > 0 {
            by_kind.push(format!("{k} {kind}{}", if k == 1 { "" } else { "s" }));
        }
    }
    format!("{n} workload{s} ({})", by_kind.join(", "))
}

/// One paragraph.
pub fn summary(e: &Evidence, code: VerdictCode, workloads: &[AffectedWorkload]) -> String {
    let affected = workloads.len();
    let mount = &e.target.auth_mount;
    let role = &e.target.role;
    let ok = vault_state(e);
    let ttl = "Pods that already hold a Vault token keep working until its max TTL; pods that restart fail.";
    let no_rotation = "No secret needs rotating.";
    let scope = if affected > 0 {
        format!(
            " {} use Vault through this mount.",
            workload_count(workloads)
        )
    } else {
        String::new()
    };
    match code {
        VerdictCode::Healthy => format!(
            "{ok} A fresh canary token for {}/{} logs in through auth/{mount}{}. If an application still sees `permission denied`, check its own role, policy and token.",
            e.target.canary_namespace,
            e.target.canary_service_account,
            if e.secret_read.value().is_some() { " and reads its secret" } else { "" }
        ),
        VerdictCode::VaultUnreachable => format!(
            "The bot gets no answer from Vault at {} ({}). Nothing else can be checked until Vault answers: check the Vault pods or service, the network path and DNS.",
            e.target.vault_addr,
            e.health.error().map(|x| x.describe()).unwrap_or_default()
        ),
        VerdictCode::VaultSealed => "Vault answers but is sealed (or not initialized), so every login and secret read fails. Unseal it (or check auto-unseal); Kubernetes auth itself may be fine.".into(),
        VerdictCode::K8sAuthMountMissing => {
            let elsewhere = e
                .auth_mount
                .value()
                .map(|m| m.kubernetes_mounts.clone())
                .unwrap_or_default();
            format!(
                "{ok} There is no kubernetes auth method at auth/{mount}, so logins there fail.{} Point the workloads (and `vault.auth_mount`) at the right path, or enable the method.",
                if elsewhere.is_empty() { String::new() } else { format!(" Kubernetes auth is mounted at {}.", elsewhere.join(", ")) }
            )
        }
        VerdictCode::K8sAuthUnconfigured => format!(
            "{ok} auth/{mount} is enabled but has no config, so every login fails with 500 `could not load backend configuration`. Write the config (kubernetes_host, CA, reviewer)."
        ),
        VerdictCode::ReviewerJwtExpired => {
            let exp = reviewer(e).and_then(|r| r.claims.as_ref()).and_then(|c| c.expires_at);
            format!(
                "{ok} Every new login through auth/{mount} fails with 403 because the token Vault uses to call the Kubernetes TokenReview API (token_reviewer_jwt, ServiceAccount {}) expired{}. {ttl} {no_rotation}{scope}",
                reviewer_name(e),
                exp.map(|x| format!(" at {}", utc(x))).unwrap_or_default()
            )
        }
        VerdictCode::ReviewerJwtRejected => {
            let why = match reviewer(e) {
                Some(r) if r.legacy_invalid_since.is_some() => " Its legacy token Secret was marked invalid by Kubernetes' legacy-token cleaner.",
                Some(r) if r.claims.as_ref().is_some_and(|c| c.legacy) => " It is a legacy token without expiry: revoked, its Secret or ServiceAccount deleted or recreated.",
                _ => " Its expiry cannot be proven: it was revoked, its ServiceAccount or pod deleted or recreated, or the signing key rotated.",
            };
            let source = match e.auth_config.value().and_then(|c| c.as_ref()).and_then(|c| c.token_reviewer_jwt_set) {
                Some(false) => "the token Vault presents to the TokenReview API (its own pod token, or the client's)".to_string(),
                _ => format!("the token Vault uses to call the Kubernetes TokenReview API (token_reviewer_jwt, {})", reviewer_name(e)),
            };
            format!("{ok} Every new login through auth/{mount} fails with 403 because Kubernetes answers 401 to {source}.{why} {ttl} {no_rotation}{scope}")
        }
        VerdictCode::ReviewerRbacMissing => format!(
            "{ok} Every new login through auth/{mount} fails with 403 because the reviewer ({}) authenticates but may not create tokenreviews: its ClusterRoleBinding to system:auth-delegator is missing. {ttl} {no_rotation}{scope}",
            reviewer_name(e)
        ),
        VerdictCode::KubeApiUnreachable => format!(
            "{ok} Every new login through auth/{mount} fails with 403 because Vault cannot reach the Kubernetes API at {} to review tokens. Check kubernetes_host, DNS and network policy between Vault and the API server. {ttl} {no_rotation}{scope}",
            e.kube_api.value().map(|k| k.host.clone()).unwrap_or_else(|| "kubernetes_host".into())
        ),
        VerdictCode::KubeCaMismatch => format!(
            "{ok} Every new login through auth/{mount} fails with 403 because kubernetes_ca_cert does not verify the API server's certificate (the cluster CA was rotated or the wrong CA was written). {ttl} {no_rotation}{scope}"
        ),
        VerdictCode::ClientJwtRejected => {
            let why = e
                .canary_review
                .value()
                .and_then(|r| r.error.clone())
                .unwrap_or_else(|| login_message(e));
            format!("{ok} Vault's TokenReview works, but Kubernetes rejects the pod token itself ({why}). The ServiceAccount or pod the token is bound to was deleted or recreated: restart the affected pods so they get fresh tokens. {no_rotation}")
        }
        VerdictCode::RoleBindingMismatch => format!(
            "{ok} Role {role} does not bind the ServiceAccount name or namespace that logs in ({}). Fix bound_service_account_names / bound_service_account_namespaces on the role.",
            if login_message(e).is_empty() { "a workload using the role is not bound".into() } else { login_message(e) }
        ),
        VerdictCode::AudienceMismatch => format!(
            "{ok} Role {role} requires audience {} but the token carries {}. Align the role's audience with the audience the pods' projected tokens request.",
            e.canary_role.value().and_then(|r| r.as_ref()).and_then(|r| r.audience.clone()).unwrap_or_else(|| "a specific value".into()),
            e.canary_token.value().map(|c| c.audiences.join(",")).filter(|a| !a.is_empty()).unwrap_or_else(|| "another".into())
        ),
        VerdictCode::IssuerMismatch => format!(
            "{ok} auth/{mount} validates the token issuer against {} and the cluster's tokens carry {}. Set disable_iss_validation=true (the default since Vault 1.9) or write the cluster's issuer.",
            e.auth_config.value().and_then(|c| c.as_ref()).map(|c| c.issuer.clone()).unwrap_or_default(),
            e.canary_token.value().and_then(|c| c.issuer.clone()).unwrap_or_else(|| "another issuer".into())
        ),
        VerdictCode::RoleNotFound if role == &e.target.canary_role => format!("{ok} The bot's own canary role {role} does not exist in auth/{mount}, so the bot cannot test logins; this says nothing about the workloads' roles. Create it with deploy/vault/canary-role.sh, or set canary.role to the role that exists."),
        VerdictCode::RoleNotFound => format!("{ok} Logins with role {role} fail with 400 `invalid role name`: the role does not exist in auth/{mount}. Create it, or fix the role name the workloads use."),
        VerdictCode::PolicyDenied => format!(
            "{ok} Authentication works: the canary logs in. Reading {} is denied by the token's policies, so this is an authorization problem, not an auth-method outage. Fix the policy.",
            e.target.secret_path.clone().unwrap_or_else(|| "the secret".into())
        ),
        VerdictCode::Inconclusive => {
            let seen = match e.login.value() {
                Some(LoginOutcome::Refused { .. }) => format!("The canary login fails with {}.", login_message(e)),
                _ => "The canary login could not be made.".into(),
            };
            format!(
                "{ok} {seen} Vault's DEBUG reason was not available and nothing the bot could check explains it. Candidates: an expired or revoked reviewer token, reviewer RBAC, Vault unable to reach the API server, or a CA mismatch. Give the bot's Vault token `read` on sys/monitor and set `[reviewer]` in the config to tell them apart."
            )
        }
    }
}

/// The remediations that fit.
pub fn remediations(
    e: &Evidence,
    code: VerdictCode,
    workloads: &[AffectedWorkload],
    syncs: &[SecretSyncState],
) -> Vec<Remediation> {
    // What logs in itself: a workload that reads a Secret an operator syncs keeps it.
    let restartable = |w: &&AffectedWorkload| w.kind.restartable() && w.via.logs_in();
    let has_deployments = workloads.iter().any(|w| restartable(&w));
    let only_deployments = workloads
        .iter()
        .filter(restartable)
        .all(|w| w.kind == WorkloadKind::Deployment);
    let mount = &e.target.auth_mount;
    let manual = |id: &str, title: &str, detail: String| Remediation {
        id: id.into(),
        title: title.into(),
        detail,
        action: None,
    };
    let restart = if only_deployments {
        RemediationKind::RestartDeployments.remediation(
            "Restart affected deployments",
            "After the fix is verified, `kubectl rollout restart` each affected deployment so its pods log in again.",
        )
    } else {
        RemediationKind::RestartDeployments.remediation(
            "Restart affected workloads",
            "After the fix is verified, `kubectl rollout restart` each affected Deployment, StatefulSet and DaemonSet so its pods log in again (OnDelete ones and CronJobs are listed, not restarted).",
        )
    };
    let reviewer_sa = reviewer_name(e);
    let mut out = match code {
        VerdictCode::ReviewerJwtExpired | VerdictCode::ReviewerJwtRejected => vec![
            RemediationKind::RotateReviewer.remediation(
                "Rotate reviewer token",
                format!("Mint a fresh token for {reviewer_sa} and rewrite auth/{mount}/config with it, keeping every other field."),
            ),
            RemediationKind::UseLocalToken.remediation(
                "Use Vault's own token",
                format!("When Vault runs in the cluster: rewrite auth/{mount}/config without token_reviewer_jwt so Vault uses its auto-rotated pod token (its ServiceAccount needs system:auth-delegator). The durable fix."),
            ),
        ],
        VerdictCode::ReviewerRbacMissing => vec![manual(
            "bind-auth-delegator",
            "Bind system:auth-delegator",
            format!(
                "kubectl create clusterrolebinding vault-auth-delegator --clusterrole=system:auth-delegator --serviceaccount={}",
                reviewer_sa.replace('/', ":")
            ),
        )],
        VerdictCode::KubeApiUnreachable => vec![manual(
            "fix-kubernetes-host",
            "Fix kubernetes_host or the network",
            "Make kubernetes_host an address Vault can reach (in-cluster: https://kubernetes.default.svc), and check DNS and network policy.".into(),
        )],
        VerdictCode::KubeCaMismatch => vec![manual(
            "write-cluster-ca",
            "Write the cluster CA",
            format!("Rewrite auth/{mount}/config with kubernetes_ca_cert from ConfigMap kube-root-ca.crt, keeping every other field."),
        )],
        VerdictCode::ClientJwtRejected => vec![manual(
            "refresh-pod-tokens",
            "Refresh the pods' tokens",
            "Restart the affected pods; check that their ServiceAccount was not deleted or recreated.".into(),
        )],
        VerdictCode::RoleBindingMismatch => vec![manual(
            "fix-role-binding",
            "Fix the role's bindings",
            format!("vault write auth/{mount}/role/{} bound_service_account_names=… bound_service_account_namespaces=… (with the role's other fields)", e.target.role),
        )],
        VerdictCode::AudienceMismatch => vec![manual(
            "fix-audience",
            "Align the audience",
            "Set the role's audience to what the pods' tokens carry, or request that audience in the pods' projected token (vault.hashicorp.com/auth-config-audience).".to_string(),
        )],
        VerdictCode::IssuerMismatch => vec![manual(
            "fix-issuer",
            "Fix issuer validation",
            format!("Rewrite auth/{mount}/config with disable_iss_validation=true, or with the cluster's issuer."),
        )],
        VerdictCode::RoleNotFound if e.target.role == e.target.canary_role => vec![manual(
            "create-canary-role",
            "Create the bot's canary role",
            format!("MOUNT={mount} sh deploy/vault/canary-role.sh (binds only {}/{}), or point canary.role at the role that exists", e.target.canary_namespace, e.target.canary_service_account),
        )],
        VerdictCode::RoleNotFound => vec![manual(
            "create-role",
            "Create the role",
            format!("vault write auth/{mount}/role/{} bound_service_account_names=… bound_service_account_namespaces=… token_policies=…", e.target.role),
        )],
        VerdictCode::PolicyDenied => vec![manual(
            "fix-policy",
            "Grant the path in the policy",
            format!("Add `path \"{}\" {{ capabilities = [\"read\"] }}` to the role's policy.", e.target.secret_path.clone().unwrap_or_else(|| "<secret path>".into())),
        )],
        VerdictCode::K8sAuthUnconfigured => vec![manual(
            "write-config",
            "Write the auth config",
            format!("vault write auth/{mount}/config kubernetes_host=https://kubernetes.default.svc (plus CA and reviewer when Vault runs outside the cluster)"),
        )],
        VerdictCode::K8sAuthMountMissing => vec![manual(
            "enable-auth",
            "Enable or point at the mount",
            format!("vault auth enable -path={mount} kubernetes, or set vault.auth_mount to the existing path."),
        )],
        VerdictCode::VaultSealed => vec![manual("unseal", "Unseal Vault", "vault operator unseal (or check the auto-unseal KMS).".into())],
        VerdictCode::VaultUnreachable => vec![manual(
            "check-vault",
            "Check Vault's pods and network",
            "kubectl get pods for Vault, its Service and endpoints, and the bot's network path.".into(),
        )],
        VerdictCode::Inconclusive => vec![manual(
            "enable-debug-capture",
            "Let the bot see the reason",
            "Grant the bot's Vault policy `read` on sys/monitor and configure [reviewer] so the next triage can tell the causes apart.".into(),
        )],
        VerdictCode::Healthy => Vec::new(),
    };
    let restart_fits = matches!(
        code,
        VerdictCode::ReviewerJwtExpired
            | VerdictCode::ReviewerJwtRejected
            | VerdictCode::ReviewerRbacMissing
            | VerdictCode::KubeApiUnreachable
            | VerdictCode::KubeCaMismatch
            | VerdictCode::ClientJwtRejected
    );
    if restart_fits && has_deployments {
        out.push(restart);
    }
    // The operators' objects on the mount: next to the restart after an auth outage (of the
    // whole mount, or one they show), or when the mount works and some of them still say
    // they are not synced.
    let some_failing = syncs.iter().any(|s| s.ready == Some(false));
    let resync_fits = (restart_fits && !syncs.is_empty() && (code.is_mount_wide() || some_failing))
        || (code == VerdictCode::Healthy && some_failing);
    if resync_fits {
        out.push(RemediationKind::ResyncSecrets.remediation(
            "Re-sync secrets",
            "After the fix is verified, make External Secrets and VSO sync now instead of within their backoff (VaultDynamicSecrets are listed, not touched).",
        ));
        if syncs.iter().any(|s| s.kind == "VaultDynamicSecret") {
            out.push(RemediationKind::ResyncDynamicSecrets.remediation(
                "Re-sync incl. dynamic secrets",
                "The same re-sync, VaultDynamicSecrets included: each mints new credentials and VSO restarts its rolloutRestartTargets. Only when they must not wait for their requeue.",
            ));
        }
    }
    out
}

/// What matters in this incident beyond the fix.
pub fn reminders(
    code: VerdictCode,
    workloads: &[AffectedWorkload],
    syncs: &[SecretSyncState],
    signs: &Signs,
) -> Vec<String> {
    let auth_outage = matches!(
        code,
        VerdictCode::ReviewerJwtExpired
            | VerdictCode::ReviewerJwtRejected
            | VerdictCode::ReviewerRbacMissing
            | VerdictCode::KubeApiUnreachable
            | VerdictCode::KubeCaMismatch
            | VerdictCode::K8sAuthUnconfigured
            | VerdictCode::IssuerMismatch
    );
    let mut out = Vec::new();
    if signs.independent() > 0 {
        match code {
            VerdictCode::Healthy => {}
            VerdictCode::Inconclusive => out.push(format!(
                "The consumers confirm that logins through this mount fail ({}), but not why.",
                signs.describe()
            )),
            c if c.is_mount_wide() => out.push(format!(
                "Independent signs agree that logins through this mount fail: {}.",
                signs.describe()
            )),
            _ => out.push(format!(
                "Beyond this role, consumers fail to log in through the mount too ({}): look for a second cause.",
                signs.describe()
            )),
        }
    }
    if code == VerdictCode::Healthy && signs.stuck_pods > 0 {
        let n = signs.stuck_pods;
        out.push(format!("The canary logs in, yet {n} pod{} wait{} on the agent's init container. Right after a fix they start within one agent backoff step (at most 5 min); if they stay stuck, read their agent's log (`kubectl logs <pod> -c vault-agent-init`): their own role or policy, not the mount.", if n == 1 { "" } else { "s" }, if n == 1 { "s" } else { "" }));
    }
    if auth_outage {
        out.push("Tokens already issued keep renewing until their max TTL: failures spread as pods restart or tokens age out. Avoid restarting pods until the fix is verified.".into());
        out.push("No secret needs rotating: this is an authentication failure, not a leak.".into());
        if syncs.iter().any(|s| s.via == Via::Eso) {
            out.push("External Secrets recovers by itself within its backoff (at most 7 min) once logins work, and keeps the existing Secrets meanwhile.".into());
        }
        if syncs.iter().any(|s| s.via == Via::Vso) {
            out.push("Vault Secrets Operator secrets sync again by themselves within their requeue (5 to 60 s) once logins work; the destination Secrets are untouched meanwhile.".into());
        }
        if workloads.iter().any(|w| w.via == Via::Csi) {
            out.push("Pods waiting for a CSI secrets volume mount it by themselves within the kubelet's retry (at most about 2 min) once logins work.".into());
        }
        if workloads.iter().any(|w| w.via == Via::Injector) {
            out.push("What heals by itself once logins work: pods waiting in the injector's `vault-agent-init` finish within one agent backoff step (at most 5 min), and running `vault-agent` sidecars keep their rendered secrets. A restart only makes it faster.".into());
        }
    }
    if code == VerdictCode::Healthy && syncs.iter().any(|s| s.ready == Some(false)) {
        out.push("Some External Secrets or Vault Secrets Operator objects on this mount are not synced while the canary logs in. Right after a fix of the mount they recover by themselves (Vault Secrets Operator within 60 s, External Secrets within 7 min); if they stay failing, suspect their own role, policy or path (see their message), not the mount.".into());
    }
    match code {
        VerdictCode::ReviewerJwtExpired | VerdictCode::ReviewerJwtRejected => out.push(
            "Prevent a repeat: when Vault runs in the cluster, let it use its own auto-rotated pod token (no token_reviewer_jwt); otherwise rotate the reviewer token well before it expires.".into(),
        ),
        VerdictCode::PolicyDenied => out.push("Authentication is fine: do not touch the Kubernetes auth config.".into()),
        VerdictCode::Healthy
        | VerdictCode::VaultUnreachable
        | VerdictCode::VaultSealed
        | VerdictCode::K8sAuthMountMissing
        | VerdictCode::K8sAuthUnconfigured
        | VerdictCode::ReviewerRbacMissing
        | VerdictCode::KubeApiUnreachable
        | VerdictCode::KubeCaMismatch
        | VerdictCode::ClientJwtRejected
        | VerdictCode::RoleBindingMismatch
        | VerdictCode::AudienceMismatch
        | VerdictCode::IssuerMismatch
        | VerdictCode::RoleNotFound
        | VerdictCode::Inconclusive => {}
    }
    out
}

/// What could not be checked, from the probes that failed or were skipped.
pub fn unchecked(e: &Evidence) -> Vec<String> {
    fn why<T>(p: &Probe<T>) -> Option<String> {
        match p {
            Probe::Ok { .. } => None,
            Probe::Failed { error, .. } => Some(error.describe()),
            Probe::Skipped { reason } => Some(reason.clone()),
        }
    }
    let mut failed: Vec<(&str, String)> = [
        ("Vault health", why(&e.health)),
        ("auth mounts (sys/auth)", why(&e.auth_mount)),
        ("auth config", why(&e.auth_config)),
        ("canary token", why(&e.canary_token)),
        ("canary login", why(&e.login)),
    ]
    .into_iter()
    .filter_map(|(what, p)| p.map(|why| (what, why)))
    .collect();
    if let Probe::Failed { error, .. } = &e.vault_log {
        failed.push(("Vault debug log (sys/monitor)", error.describe()));
    }
    if let Probe::Skipped { reason } = &e.reviewer {
        failed.push(("reviewer token", reason.clone()));
    }
    if let Some(why) = why(&e.workloads) {
        failed.push(("workloads", why));
    }
    if let Probe::Failed { error, .. } = &e.pods {
        failed.push(("pods", error.describe()));
    }
    if let Probe::Failed { error, .. } = &e.secret_syncs {
        failed.push((
            "External Secrets and Vault Secrets Operator objects",
            error.describe(),
        ));
    }
    // One line per reason: a Vault that does not answer fails every Vault check the same way.
    let mut out: Vec<String> = Vec::new();
    let mut reasons: Vec<(Vec<&str>, String)> = Vec::new();
    for (what, why) in failed {
        match reasons.iter_mut().find(|(_, r)| *r == why) {
            Some((whats, _)) => whats.push(what),
            None => reasons.push((vec![what], why)),
        }
    }
    for (whats, why) in reasons {
        out.push(format!("{}: {why}", whats.join(", ")));
    }
    if let Some(lines) = e.vault_log.value().filter(|l| l.len() > 1) {
        out.push(format!(
            "{} `login unauthorized` lines arrived during the canary login; other clients may be failing too (first: {})",
            lines.len(),
            log_reason(&lines[0])
        ));
    }
    out
}
