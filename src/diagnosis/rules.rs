//! The decision: which verdict code the evidence supports, and how firmly.
//!
//! Checks run from the outside in (design §3 and facts §8): Vault availability, the mount,
//! its config, the role, then the canary login. A login refused with a descriptive message
//! names its cause; a bare `permission denied` means the TokenReview phase failed, and the
//! DEBUG line, the reviewer token tried as the caller, RBAC, reachability and the CA
//! comparison tell the look-alikes apart.

use chrono::{DateTime, Utc};

use super::chain::evidence_chain;
use super::consumers::Signs;
use super::text;
use super::verdict::*;
use crate::evidence::SecretRead;
use crate::evidence::{CallerCheck, Evidence, LoginOutcome, Probe, ProbeError, Reachability};

/// Turns evidence into a verdict. `now` is passed in so the function stays pure.
pub fn diagnose(e: &Evidence, now: DateTime<Utc>) -> Verdict {
    let (code, confidence) = decide(e, now);
    let signs = Signs::read(e);
    let confidence = corroborated(code, confidence, &signs);
    let (affected_roles, affected_workloads) = scope(e, code);
    let secret_syncs: Vec<SecretSyncState> = e
        .secret_syncs
        .value()
        .into_iter()
        .flatten()
        .map(|s| SecretSyncState {
            kind: s.kind.clone(),
            namespace: s.namespace.clone(),
            name: s.name.clone(),
            ready: s.ready,
            message: s.message.clone(),
            via: s.via,
        })
        .collect();
    let affected_deployments: Vec<AffectedDeployment> = affected_workloads
        .iter()
        // The Deployments that log in, as before (not those reading an operator's Secret).
        .filter(|w| w.kind == crate::evidence::WorkloadKind::Deployment && w.via.logs_in())
        .map(|w| AffectedDeployment {
            namespace: w.namespace.clone(),
            name: w.name.clone(),
            role: w.roles.first().cloned().unwrap_or_default(),
        })
        .collect();
    Verdict {
        code,
        layer: code.layer(),
        confidence,
        headline: text::headline(e, code, now),
        summary: text::summary(e, code, &affected_workloads),
        evidence: evidence_chain(e, now),
        remediations: text::remediations(e, code, &affected_workloads, &secret_syncs),
        reminders: text::reminders(code, &affected_workloads, &secret_syncs, &signs),
        unchecked: text::unchecked(e),
        affected_roles,
        affected_deployments,
        affected_workloads,
        secret_syncs,
    }
}

/// Signals read from the evidence, named after what they mean.
struct Signals<'a> {
    e: &'a Evidence,
    log: String,
}

impl<'a> Signals<'a> {
    fn new(e: &'a Evidence) -> Self {
        let log = e
            .vault_log
            .value()
            .map(|l| l.join("\n"))
            .unwrap_or_default();
        Self { e, log }
    }

    fn log_has(&self, needles: &[&str]) -> bool {
        needles.iter().any(|n| self.log.contains(n))
    }

    fn log_reviewer_401(&self) -> bool {
        self.log_has(&["service account unauthorized"])
    }

    fn log_reviewer_403(&self) -> bool {
        self.log.contains("tokenreviews") && self.log_has(&["is forbidden", "Forbidden"])
    }

    fn log_network(&self) -> bool {
        self.log_has(&[
            "dial tcp",
            "no such host",
            "i/o timeout",
            "connection refused",
            "context deadline exceeded",
            "network is unreachable",
        ])
    }

    fn log_tls(&self) -> bool {
        self.log_has(&["x509", "tls:", "certificate"])
    }

    fn log_client_token_invalid(&self) -> bool {
        self.log_has(&[
            "lookup failed: [",
            "service account jwt not valid",
            "JWT UIDs did not match",
            "JWT names did not match",
            "did not match",
        ])
    }

    fn reviewer(&self) -> Option<&crate::evidence::ReviewerEvidence> {
        self.e.reviewer.value()
    }

    fn reviewer_unauthorized(&self) -> bool {
        matches!(
            self.reviewer().and_then(|r| r.as_caller.as_ref()),
            Some(CallerCheck::Unauthorized)
        )
    }

    fn reviewer_authenticated(&self) -> bool {
        matches!(
            self.reviewer().and_then(|r| r.as_caller.as_ref()),
            Some(CallerCheck::Authenticated { .. })
        )
    }

    fn reviewer_expired(&self, now: DateTime<Utc>) -> bool {
        self.reviewer()
            .and_then(|r| r.claims.as_ref())
            .is_some_and(|c| c.is_expired_at(now))
    }

    fn reviewer_lacks_rbac(&self) -> bool {
        self.reviewer().and_then(|r| r.may_create_tokenreviews) == Some(false)
    }

    fn api_unreachable(&self) -> bool {
        matches!(
            self.e
                .kube_api
                .value()
                .and_then(|k| k.reachability.as_ref()),
            Some(Reachability::NoAnswer { .. })
        )
    }

    fn api_tls_failed(&self) -> bool {
        matches!(
            self.e
                .kube_api
                .value()
                .and_then(|k| k.reachability.as_ref()),
            Some(Reachability::TlsFailed { .. })
        )
    }

    fn ca_mismatch(&self) -> bool {
        self.e.kube_api.value().and_then(|k| k.ca_matches_cluster) == Some(false)
    }

    fn canary_rejected_by_kubernetes(&self) -> bool {
        self.e
            .canary_review
            .value()
            .is_some_and(|r| !r.authenticated)
    }
}

fn decide(e: &Evidence, now: DateTime<Utc>) -> (VerdictCode, Confidence) {
    use Confidence::*;
    use VerdictCode::*;
    let s = Signals::new(e);

    // 1. Vault itself.
    match &e.health {
        Probe::Failed {
            error: ProbeError::NoAnswer { .. } | ProbeError::Timeout { .. },
            ..
        } => {
            let login_no_answer = matches!(
                e.login.error(),
                Some(ProbeError::NoAnswer { .. } | ProbeError::Timeout { .. })
            );
            return (
                VaultUnreachable,
                if login_no_answer || e.login.value().is_none() {
                    High
                } else {
                    Medium
                },
            );
        }
        Probe::Ok { value: h, .. } if h.sealed || !h.initialized => return (VaultSealed, High),
        Probe::Failed {
            error: ProbeError::Status { code: 503, message },
            ..
        } if message.contains("sealed") => {
            return (VaultSealed, High);
        }
        _ => {}
    }
    let login = e.login.value();
    let refused = |status: u16, needle: &str| matches!(login, Some(LoginOutcome::Refused { status: s, message }) if *s == status && message.contains(needle));
    if refused(503, "sealed") {
        return (VaultSealed, High);
    }

    // 2. The mount.
    if let Some(m) = e.auth_mount.value() {
        if m.mount.is_none() {
            return (K8sAuthMountMissing, High);
        }
    } else if refused(400, "missing client token")
        || refused(405, "unsupported")
        || refused(404, "")
    {
        return (K8sAuthMountMissing, Medium);
    }

    // 3. Its config.
    let unconfigured_login = refused(500, "could not load backend configuration");
    if matches!(e.auth_config.value(), Some(None)) {
        return (K8sAuthUnconfigured, High);
    }
    if unconfigured_login {
        return (K8sAuthUnconfigured, Medium);
    }

    // 4. The role under triage.
    if let Some(Probe::Ok { value: None, .. }) = &e.target_role {
        return (RoleNotFound, High);
    }
    let canary_role_missing = matches!(e.canary_role.value(), Some(None));
    if refused(400, "invalid role name") {
        return (RoleNotFound, High);
    }
    if canary_role_missing && login.is_none() {
        return (RoleNotFound, Medium);
    }

    // 5. The canary login.
    match login {
        Some(LoginOutcome::Success { .. }) => {
            if static_binding_mismatch(e) {
                return (RoleBindingMismatch, Medium);
            }
            match e.secret_read.value() {
                Some(SecretRead::Denied { .. }) => (PolicyDenied, High),
                _ => (Healthy, High),
            }
        }
        Some(LoginOutcome::Refused { status, message }) => {
            let m = message.as_str();
            if m.contains("service account name not authorized")
                || m.contains("namespace not authorized")
            {
                (RoleBindingMismatch, High)
            } else if m.contains("invalid audience") {
                (AudienceMismatch, High)
            } else if m.contains("invalid issuer") || m.contains("claim \"iss\" is invalid") {
                (IssuerMismatch, High)
            } else if m.contains("token is expired")
                || m.contains("not yet valid")
                || m.contains("issued in the future")
            {
                (ClientJwtRejected, Medium)
            } else if *status == 403 && m == "permission denied" {
                token_review_phase(&s, now)
            } else {
                (Inconclusive, Low)
            }
        }
        None => without_login(&s, now),
    }
}

/// Consumers failing on their own (design §11.3) firm up a verdict that every login through
/// the mount fails by one step. An inconclusive verdict stays as it is: they show that logins
/// fail, not why.
fn corroborated(code: VerdictCode, confidence: Confidence, signs: &Signs) -> Confidence {
    if !code.is_mount_wide() || code == VerdictCode::Inconclusive || signs.independent() == 0 {
        return confidence;
    }
    match confidence {
        Confidence::Low => Confidence::Medium,
        Confidence::Medium | Confidence::High => Confidence::High,
    }
}

/// A bare 403 `permission denied`: the TokenReview call failed. Which look-alike is it?
fn token_review_phase(s: &Signals<'_>, now: DateTime<Utc>) -> (VerdictCode, Confidence) {
    use Confidence::*;
    use VerdictCode::*;
    if s.canary_rejected_by_kubernetes() {
        return (ClientJwtRejected, High);
    }
    if s.log_tls() {
        return (
            KubeCaMismatch,
            if s.ca_mismatch() || s.api_tls_failed() {
                High
            } else {
                Medium
            },
        );
    }
    if s.log_network() {
        return (
            KubeApiUnreachable,
            if s.api_unreachable() { High } else { Medium },
        );
    }
    if s.log_reviewer_403() {
        return (ReviewerRbacMissing, High);
    }
    if s.log_reviewer_401() || s.reviewer_unauthorized() {
        let both =
            s.log_reviewer_401() && (s.reviewer_unauthorized() || s.reviewer_authenticated());
        if s.reviewer_unauthorized() && s.reviewer_expired(now) {
            return (
                ReviewerJwtExpired,
                if s.log_reviewer_401() { High } else { Medium },
            );
        }
        return (ReviewerJwtRejected, if both { High } else { Medium });
    }
    if s.log_client_token_invalid() {
        return (ClientJwtRejected, Medium);
    }
    // No DEBUG line: fall back on what the bot could check itself.
    if s.log.is_empty() {
        if s.ca_mismatch() || s.api_tls_failed() {
            return (KubeCaMismatch, Medium);
        }
        if s.api_unreachable() {
            return (KubeApiUnreachable, Medium);
        }
        if s.reviewer_lacks_rbac() {
            return (ReviewerRbacMissing, Medium);
        }
    }
    (Inconclusive, Low)
}

/// No canary login could be made (no Kubernetes access, or Vault did not answer it).
fn without_login(s: &Signals<'_>, now: DateTime<Utc>) -> (VerdictCode, Confidence) {
    use Confidence::*;
    use VerdictCode::*;
    if s.reviewer_unauthorized() {
        return if s.reviewer_expired(now) {
            (ReviewerJwtExpired, Medium)
        } else {
            (ReviewerJwtRejected, Low)
        };
    }
    if s.reviewer_lacks_rbac() {
        return (ReviewerRbacMissing, Low);
    }
    if s.ca_mismatch() {
        return (KubeCaMismatch, Low);
    }
    (Inconclusive, Low)
}

/// The role under triage (when not the canary's) does not bind a workload that uses it.
fn static_binding_mismatch(e: &Evidence) -> bool {
    let Some(Probe::Ok {
        value: Some(role), ..
    }) = &e.target_role
    else {
        return false;
    };
    let Some(workloads) = e.workloads.value() else {
        return false;
    };
    workloads
        .iter()
        // Owners found only through their pods have no ServiceAccount on record.
        .filter(|w| w.role.eq_ignore_ascii_case(&e.target.role) && !w.service_account.is_empty())
        .any(|w| {
            !glob_list_matches(&role.bound_service_account_names, &w.service_account)
                || !glob_list_matches(&role.bound_service_account_namespaces, &w.namespace)
        })
}

/// Vault's `StrListContainsGlob`: `*` matches any run of characters.
pub(crate) fn glob_list_matches(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| glob_matches(p, value))
}

fn glob_matches(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((prefix, rest)) => {
            let Some(tail) = value.strip_prefix(prefix) else {
                return false;
            };
            if rest.is_empty() {
                return true;
            }
            (0..=tail.len())
                .filter(|i| tail.is_char_boundary(*i))
                .any(|i| glob_matches(rest, &tail[i..]))
        }
    }
}

/// Who is affected: every Vault workload for a mount-wide fault, else those of the role.
/// The roles and the workloads in the blast radius: every consumer of the mount when the
/// fault is mount-wide, else those of the role under triage.
fn scope(e: &Evidence, code: VerdictCode) -> (Vec<String>, Vec<AffectedWorkload>) {
    if code == VerdictCode::Healthy {
        return (Vec::new(), Vec::new());
    }
    let workloads = e.workloads.value().cloned().unwrap_or_default();
    let affected: Vec<AffectedWorkload> = workloads
        .into_iter()
        .filter(|w| code.is_mount_wide() || w.role.eq_ignore_ascii_case(&e.target.role))
        .map(|w| AffectedWorkload {
            kind: w.kind,
            namespace: w.namespace,
            name: w.name,
            roles: vec![w.role],
            via: w.via,
        })
        .collect();
    let mut roles: Vec<String> = affected.iter().flat_map(|d| d.roles.clone()).collect();
    if !code.is_mount_wide() && !roles.contains(&e.target.role) {
        roles.push(e.target.role.clone());
    }
    roles.sort();
    roles.dedup();
    (roles, affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_vault() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(glob_list_matches(&p(&["*"]), "anything"));
        assert!(glob_list_matches(&p(&["app-*"]), "app-1"));
        assert!(!glob_list_matches(&p(&["app-*"]), "web-1"));
        assert!(glob_list_matches(&p(&["a*c"]), "abbbc"));
        assert!(!glob_list_matches(&p(&["exact"]), "exactly"));
        assert!(!glob_list_matches(&[], "x"));
    }
}
