//! The evidence chain: every check, in the order an engineer would make them, with the one
//! fact that matters. Tokens appear only as their claims.

use chrono::{DateTime, Utc};

use super::verdict::{ChainItem, CheckStatus};
use super::words::{ago, log_reason, utc};
use crate::evidence::SecretRead;
use crate::evidence::{
    CallerCheck, Evidence, LoginOutcome, MonitorNode, NodeFound, Probe, ProbeError, Reachability,
};

fn item(check: impl Into<String>, status: CheckStatus, detail: impl Into<String>) -> ChainItem {
    ChainItem {
        check: check.into(),
        status,
        detail: detail.into(),
    }
}

fn not_checked<T>(p: &Probe<T>) -> Option<(CheckStatus, String)> {
    match p {
        Probe::Ok { .. } => None,
        Probe::Failed { error, .. } => Some((
            CheckStatus::Unknown,
            format!("could not check: {}", error.describe()),
        )),
        Probe::Skipped { reason } => Some((CheckStatus::Unknown, format!("not checked: {reason}"))),
    }
}

/// Builds the chain from the evidence.
pub fn evidence_chain(e: &Evidence, now: DateTime<Utc>) -> Vec<ChainItem> {
    let mut out = Vec::new();
    let mount = &e.target.auth_mount;

    // Vault health.
    out.push(match &e.health {
        Probe::Ok { value: h, .. } if !h.initialized => {
            item("Vault health", CheckStatus::Fail, "not initialized")
        }
        Probe::Ok { value: h, .. } if h.sealed => item("Vault health", CheckStatus::Fail, "sealed"),
        Probe::Ok { value: h, .. } => item(
            "Vault health",
            CheckStatus::Pass,
            format!(
                "unsealed, {}{}",
                if h.standby { "standby" } else { "active" },
                if h.version.is_empty() {
                    String::new()
                } else {
                    format!(", version {}", h.version)
                }
            ),
        ),
        Probe::Failed { error, .. } => item(
            "Vault health",
            CheckStatus::Fail,
            format!("{} at {}", error.describe(), e.target.vault_addr),
        ),
        Probe::Skipped { reason } => item("Vault health", CheckStatus::Unknown, reason.clone()),
    });

    // Mount.
    let label = format!("Auth method auth/{mount}");
    out.push(match &e.auth_mount {
        Probe::Ok { value: m, .. } => match (&m.mount, &m.other_type) {
            (Some(found), _) => item(
                label,
                CheckStatus::Pass,
                format!(
                    "kubernetes, {}{}",
                    found.accessor,
                    found
                        .running_plugin_version
                        .as_deref()
                        .map(|v| format!(", plugin {v}"))
                        .unwrap_or_default()
                ),
            ),
            (None, Some(other)) => item(
                label,
                CheckStatus::Fail,
                format!("the path holds a `{other}` auth method, not kubernetes"),
            ),
            (None, None) if m.kubernetes_mounts.is_empty() => item(
                label,
                CheckStatus::Fail,
                "no kubernetes auth method is enabled",
            ),
            (None, None) => item(
                label,
                CheckStatus::Fail,
                format!(
                    "not mounted; kubernetes auth is at {}",
                    m.kubernetes_mounts.join(", ")
                ),
            ),
        },
        p => {
            let (s, d) = not_checked(p).unwrap_or((CheckStatus::Unknown, String::new()));
            item(label, s, d)
        }
    });

    // Config.
    let label = format!("Auth config auth/{mount}/config");
    out.push(match &e.auth_config {
        Probe::Ok { value: None, .. } => {
            item(label, CheckStatus::Fail, "no config was ever written")
        }
        Probe::Ok { value: Some(c), .. } => {
            let reviewer = match c.token_reviewer_jwt_set {
                Some(true) => "token_reviewer_jwt set",
                Some(false) => {
                    "no token_reviewer_jwt (Vault uses its own pod token or the client's)"
                }
                None => "token_reviewer_jwt state not reported (plugin older than v0.18)",
            };
            let mut detail = format!("kubernetes_host {}, {reviewer}", c.kubernetes_host);
            if !c.disable_iss_validation && !c.issuer.is_empty() {
                detail.push_str(&format!(", issuer validated against {}", c.issuer));
            }
            item(label, CheckStatus::Pass, detail)
        }
        p => {
            let (s, d) = not_checked(p).unwrap_or((CheckStatus::Unknown, String::new()));
            item(label, s, d)
        }
    });

    // Roles.
    let mut roles = vec![(e.target.canary_role.clone(), &e.canary_role)];
    if let Some(t) = &e.target_role {
        roles.push((e.target.role.clone(), t));
    }
    for (name, probe) in roles {
        let label = format!("Role {name}");
        out.push(match probe {
            Probe::Ok { value: None, .. } => item(label, CheckStatus::Fail, "does not exist"),
            Probe::Ok { value: Some(r), .. } => item(
                label,
                CheckStatus::Pass,
                format!(
                    "binds {} in {}{}; policies {}",
                    r.bound_service_account_names.join(","),
                    if r.bound_service_account_namespaces.is_empty() {
                        "(selector)".to_string()
                    } else {
                        r.bound_service_account_namespaces.join(",")
                    },
                    r.audience
                        .as_deref()
                        .map(|a| format!(", audience {a}"))
                        .unwrap_or_default(),
                    if r.token_policies.is_empty() {
                        "none".into()
                    } else {
                        r.token_policies.join(",")
                    }
                ),
            ),
            p => {
                let (s, d) = not_checked(p).unwrap_or((CheckStatus::Unknown, String::new()));
                item(label, s, d)
            }
        });
    }

    // Canary token and its review.
    let canary = format!(
        "{}/{}",
        e.target.canary_namespace, e.target.canary_service_account
    );
    out.push(match &e.canary_token {
        Probe::Ok { value: c, .. } => item(
            "Canary token",
            CheckStatus::Pass,
            format!(
                "minted for {canary}{}",
                c.expires_at
                    .map(|x| format!(", expires {}", utc(x)))
                    .unwrap_or_default()
            ),
        ),
        Probe::Failed { error, .. } => item(
            "Canary token",
            CheckStatus::Fail,
            format!("TokenRequest for {canary} failed: {}", error.describe()),
        ),
        Probe::Skipped { reason } => item("Canary token", CheckStatus::Unknown, reason.clone()),
    });
    if let Some(x) = match &e.canary_review {
        Probe::Ok { value: r, .. } if r.authenticated => Some(item(
            "Canary token in Kubernetes",
            CheckStatus::Pass,
            format!(
                "TokenReview authenticated {}",
                r.username.as_deref().unwrap_or(&canary)
            ),
        )),
        Probe::Ok { value: r, .. } => Some(item(
            "Canary token in Kubernetes",
            CheckStatus::Fail,
            format!(
                "TokenReview rejected it: {}",
                r.error.as_deref().unwrap_or("not authenticated")
            ),
        )),
        Probe::Failed { error, .. } => Some(item(
            "Canary token in Kubernetes",
            CheckStatus::Unknown,
            format!("TokenReview failed: {}", error.describe()),
        )),
        Probe::Skipped { .. } => None,
    } {
        out.push(x);
    }

    // Login.
    out.push(match &e.login {
        Probe::Ok {
            value: LoginOutcome::Success { policies, .. },
            ..
        } => item(
            "Canary login",
            CheckStatus::Pass,
            format!("200, policies {}", policies.join(",")),
        ),
        Probe::Ok {
            value: LoginOutcome::Refused { status, message },
            ..
        } => item(
            "Canary login",
            CheckStatus::Fail,
            format!("{status} {message}"),
        ),
        Probe::Failed { error, .. } => item("Canary login", CheckStatus::Fail, error.describe()),
        Probe::Skipped { reason } => item("Canary login", CheckStatus::Unknown, reason.clone()),
    });

    // Vault debug log, and which node it came from when that is not VAULT_ADDR.
    let node = match &e.vault_log_node {
        Some(MonitorNode {
            addr,
            found: NodeFound::SysLeader,
        }) => format!(
            " (from the active node {addr}, found through sys/leader: VAULT_ADDR is a standby)"
        ),
        Some(MonitorNode {
            addr,
            found: NodeFound::Configured,
        }) => format!(" (from the active node {addr}, vault.active_addr)"),
        _ => String::new(),
    };
    match &e.vault_log {
        Probe::Ok { value, .. } if !value.is_empty() => {
            out.push(item(
                "Vault debug log",
                CheckStatus::Info,
                format!("\"{}\"{node}", log_reason(&value[0])),
            ));
        }
        Probe::Ok { .. } => {
            if matches!(e.login.value(), Some(LoginOutcome::Refused { .. })) {
                out.push(item(
                    "Vault debug log",
                    CheckStatus::Info,
                    format!("no `login unauthorized` line during the canary login{node}"),
                ));
            }
        }
        Probe::Failed { error, .. } => out.push(item(
            "Vault debug log",
            CheckStatus::Unknown,
            match error {
                ProbeError::Status { code: 403, .. } => {
                    "sys/monitor refused: the bot's Vault token may not read sys/monitor"
                        .to_string()
                }
                other => format!("sys/monitor unavailable: {}", other.describe()),
            },
        )),
        Probe::Skipped { .. } => {}
    }

    // Reviewer.
    match &e.reviewer {
        Probe::Ok { value: r, .. } => {
            let label = format!("Reviewer {}", r.service_account);
            if r.service_account_exists == Some(false) {
                out.push(item(
                    label.clone(),
                    CheckStatus::Fail,
                    "ServiceAccount does not exist",
                ));
            }
            if r.secret_found == Some(false) {
                out.push(item(
                    label.clone(),
                    CheckStatus::Fail,
                    format!(
                        "{} not found",
                        r.token_source.as_deref().unwrap_or("token Secret")
                    ),
                ));
            }
            let claims = r.claims.as_ref();
            let exp = claims.and_then(|c| c.expires_at);
            let when = match exp {
                Some(x) if x <= now => format!("expired {} ({})", utc(x), ago(now, x)),
                Some(x) => format!("expires {}", utc(x)),
                None if claims.is_some_and(|c| c.legacy) => "legacy token without expiry".into(),
                None => "expiry unknown".into(),
            };
            let invalid = r
                .legacy_invalid_since
                .as_deref()
                .map(|d| format!("; Secret labelled legacy-token-invalid-since {d}"))
                .unwrap_or_default();
            match &r.as_caller {
                Some(CallerCheck::Unauthorized) => out.push(item(
                    label.clone(),
                    CheckStatus::Fail,
                    format!("{when}; Kubernetes answers 401{invalid}"),
                )),
                Some(CallerCheck::Authenticated { username }) => out.push(item(
                    label.clone(),
                    if exp.is_some_and(|x| x <= now) {
                        CheckStatus::Warn
                    } else {
                        CheckStatus::Pass
                    },
                    format!("{when}; Kubernetes accepts it as {username}{invalid}"),
                )),
                Some(CallerCheck::Failed { detail }) => out.push(item(
                    label.clone(),
                    CheckStatus::Unknown,
                    format!("{when}; trying it failed: {detail}"),
                )),
                None => {
                    if claims.is_some() {
                        out.push(item(label.clone(), CheckStatus::Info, when));
                    }
                }
            }
            match r.may_create_tokenreviews {
                Some(false) => out.push(item(
                    format!("{label} RBAC"),
                    CheckStatus::Fail,
                    "may not create tokenreviews (system:auth-delegator missing)",
                )),
                Some(true) => out.push(item(
                    format!("{label} RBAC"),
                    CheckStatus::Pass,
                    "may create tokenreviews",
                )),
                None => {}
            }
            for n in &r.notes {
                out.push(item(label.clone(), CheckStatus::Unknown, n.clone()));
            }
        }
        Probe::Skipped { reason } => out.push(item(
            "Reviewer token",
            CheckStatus::Unknown,
            format!("not checked: {reason}"),
        )),
        Probe::Failed { error, .. } => out.push(item(
            "Reviewer token",
            CheckStatus::Unknown,
            error.describe(),
        )),
    }

    // Kubernetes API as configured in Vault.
    if let Probe::Ok { value: k, .. } = &e.kube_api {
        let label = "Kubernetes API (kubernetes_host)";
        match &k.reachability {
            Some(Reachability::Answered { status }) => out.push(item(
                label,
                CheckStatus::Pass,
                format!("{} answers (HTTP {status}) from the bot", k.host),
            )),
            Some(Reachability::TlsFailed { detail }) => out.push(item(
                label,
                CheckStatus::Fail,
                format!("TLS to {} fails with the configured CA: {detail}", k.host),
            )),
            Some(Reachability::NoAnswer { detail }) => out.push(item(
                label,
                CheckStatus::Fail,
                format!("{} unreachable from the bot: {detail}", k.host),
            )),
            None => {}
        }
        match k.ca_matches_cluster {
            Some(true) => out.push(item(
                "Cluster CA",
                CheckStatus::Pass,
                "kubernetes_ca_cert matches kube-root-ca.crt",
            )),
            Some(false) => out.push(item(
                "Cluster CA",
                CheckStatus::Fail,
                "kubernetes_ca_cert does not match the cluster CA (kube-root-ca.crt)",
            )),
            None => {
                for n in &k.notes {
                    out.push(item("Cluster CA", CheckStatus::Info, n.clone()));
                }
            }
        }
    }

    // Secret read.
    match &e.secret_read {
        Probe::Ok {
            value: SecretRead::Readable,
            ..
        } => out.push(item(
            "Canary secret read",
            CheckStatus::Pass,
            e.target.secret_path.clone().unwrap_or_default(),
        )),
        Probe::Ok {
            value: SecretRead::NotFound,
            ..
        } => out.push(item(
            "Canary secret read",
            CheckStatus::Warn,
            format!(
                "allowed, but nothing stored at {}",
                e.target.secret_path.clone().unwrap_or_default()
            ),
        )),
        Probe::Ok {
            value: SecretRead::Denied { .. },
            ..
        } => out.push(item(
            "Canary secret read",
            CheckStatus::Fail,
            format!(
                "403 permission denied on {} (policy)",
                e.target.secret_path.clone().unwrap_or_default()
            ),
        )),
        Probe::Failed { error, .. } => out.push(item(
            "Canary secret read",
            CheckStatus::Unknown,
            error.describe(),
        )),
        Probe::Skipped { .. } => {}
    }

    // Workloads.
    match &e.workloads {
        Probe::Ok { value, .. } => out.push(item(
            "Vault workloads",
            CheckStatus::Info,
            if value.is_empty() {
                "no workload names a Vault role".to_string()
            } else if value
                .iter()
                .all(|w| w.kind == crate::evidence::WorkloadKind::Deployment)
            {
                format!("{} deployments name a Vault role", value.len())
            } else {
                format!("{} workloads name a Vault role", value.len())
            },
        )),
        p => {
            if let Some((s, d)) = not_checked(p) {
                out.push(item("Vault workloads", s, d));
            }
        }
    }

    // The operators' objects on the mount: independent signs of the same failure.
    match &e.secret_syncs {
        Probe::Ok { value, .. } if !value.is_empty() => {
            let failing: Vec<&crate::evidence::SecretSync> =
                value.iter().filter(|s| s.ready == Some(false)).collect();
            let (status, detail) = match failing.first() {
                None => (
                    CheckStatus::Pass,
                    format!("{} synced through this mount", value.len()),
                ),
                Some(first) => (
                    CheckStatus::Fail,
                    format!(
                        "{} of {} not synced, e.g. {} {}{}: {}",
                        failing.len(),
                        value.len(),
                        first.kind,
                        if first.namespace.is_empty() {
                            String::new()
                        } else {
                            format!("{}/", first.namespace)
                        },
                        first.name,
                        first.message
                    ),
                ),
            };
            out.push(item("Secret syncs (ESO, VSO)", status, detail));
        }
        Probe::Ok { .. } => {}
        p => {
            if let Some((s, d)) = not_checked(p) {
                out.push(item("Secret syncs (ESO, VSO)", s, d));
            }
        }
    }

    // The injector's pods: those waiting on the agent's init container.
    match &e.pods {
        Probe::Ok { value, .. } if value.injected > 0 || !value.stuck.is_empty() => {
            out.push(match value.stuck.first() {
                None => item(
                    "Injected pods",
                    CheckStatus::Pass,
                    format!(
                        "{} injected through this mount, none waiting on the agent's init container",
                        value.injected
                    ),
                ),
                Some(first) => item(
                    "Injected pods",
                    CheckStatus::Fail,
                    format!(
                        "{} of {} waiting on {} ({}), e.g. {}/{} of {} {}{}",
                        value.stuck.len(),
                        value.injected.max(value.stuck.len()),
                        first.container,
                        first.status,
                        first.namespace,
                        first.name,
                        first.owner_kind,
                        first.owner,
                        first
                            .since
                            .map(|t| format!(", started {}", ago(now, t)))
                            .unwrap_or_default()
                    ),
                ),
            });
        }
        Probe::Ok { .. } => {}
        p => {
            if let Some((s, d)) = not_checked(p) {
                out.push(item("Injected pods", s, d));
            }
        }
    }
    out
}
