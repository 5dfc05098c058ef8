//! The consumers' own signs of a failed login (design §11.3, facts/vault-consumers.md): pods
//! waiting on the agent's init container, External Secrets stores that cannot build their
//! Vault client, Vault Secrets Operator secrets whose login fails. The kubelet and the
//! operators report these, not the bot's canary, so they are independent evidence: they firm
//! up a verdict that every login through the mount fails, and when they contradict the
//! canary they are reported as what they are. Pure.

use crate::evidence::{Evidence, SecretSync, Via};

/// How many consumers of each kind show that their login through the mount fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signs {
    /// Pods stuck on `vault-agent-init` (or OpenBao's).
    pub stuck_pods: usize,
    /// ESO `SecretStore`/`ClusterSecretStore` not Ready because their client cannot log in.
    pub eso_stores: usize,
    /// VSO secret resources not synced with a login error.
    pub vso_secrets: usize,
}

impl Signs {
    pub fn read(e: &Evidence) -> Signs {
        let syncs = e.secret_syncs.value().map(Vec::as_slice).unwrap_or(&[]);
        let failing = |via: Via| {
            syncs
                .iter()
                .filter(|s| s.via == via && login_fails(s))
                .count()
        };
        Signs {
            stuck_pods: e.pods.value().map_or(0, |p| p.stuck.len()),
            eso_stores: failing(Via::Eso),
            vso_secrets: failing(Via::Vso),
        }
    }

    /// How many independent mechanisms (injector, External Secrets, VSO) show the failure.
    pub fn independent(&self) -> usize {
        [self.stuck_pods, self.eso_stores, self.vso_secrets]
            .iter()
            .filter(|n| **n > 0)
            .count()
    }

    /// "2 pods stuck on vault-agent-init, 1 External Secrets store not Ready".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        if self.stuck_pods > 0 {
            parts.push(plural(
                self.stuck_pods,
                "pod stuck on the agent's init container",
                "pods stuck on the agent's init container",
            ));
        }
        if self.eso_stores > 0 {
            parts.push(plural(
                self.eso_stores,
                "External Secrets store that cannot log in",
                "External Secrets stores that cannot log in",
            ));
        }
        if self.vso_secrets > 0 {
            parts.push(plural(
                self.vso_secrets,
                "Vault Secrets Operator secret whose login fails",
                "Vault Secrets Operator secrets whose login fails",
            ));
        }
        parts.join(", ")
    }
}

/// An operator's object that is not synced because its login fails: an ESO store whose
/// client cannot be built (`InvalidProviderConfig: unable to create client`, or the login
/// error itself), a VSO secret whose error is the login's. An ExternalSecret only repeats its
/// store's state (`SecretStore "x" is not ready`), so it is not a sign of its own.
pub fn login_fails(s: &SecretSync) -> bool {
    if s.ready != Some(false) {
        return false;
    }
    let m = s.message.as_str();
    match s.via {
        Via::Eso => {
            s.kind.ends_with("SecretStore")
                && (m.contains("unable to create client")
                    || m.contains("unable to log in")
                    || m.contains("permission denied"))
        }
        Via::Vso => {
            m.contains("auth login")
                || m.contains("Vault client")
                || m.contains("Code: 403")
                || m.contains("permission denied")
        }
        Via::Injector | Via::Csi => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(kind: &str, via: Via, ready: Option<bool>, message: &str) -> SecretSync {
        SecretSync {
            kind: kind.into(),
            namespace: "production".into(),
            name: "x".into(),
            ready,
            message: message.into(),
            via,
            created_once: false,
            ..SecretSync::default()
        }
    }

    #[test]
    fn stores_and_vso_secrets_that_cannot_log_in_are_signs_external_secrets_are_not() {
        let store = sync(
            "ClusterSecretStore",
            Via::Eso,
            Some(false),
            "InvalidProviderConfig: unable to create client",
        );
        assert!(login_fails(&store));
        let external = sync(
            "ExternalSecret",
            Via::Eso,
            Some(false),
            "SecretSyncedError: could not get secret data from provider",
        );
        assert!(!login_fails(&external));
        let vss = sync(
            "VaultStaticSecret",
            Via::Vso,
            Some(false),
            "Failed to sync the secret, horizon=5s, err=Failed to get Vault auth login: Error making API request. Code: 403. Errors: * permission denied",
        );
        assert!(login_fails(&vss));
        // A VSO secret failing on its path, not its login, is not a sign.
        let path = sync(
            "VaultStaticSecret",
            Via::Vso,
            Some(false),
            "Failed to sync the secret, horizon=5s, err=no secret found at kv/data/missing",
        );
        assert!(!login_fails(&path));
        let synced = sync(
            "ClusterSecretStore",
            Via::Eso,
            Some(true),
            "Valid: store validated",
        );
        assert!(!login_fails(&synced));
    }

    #[test]
    fn independent_counts_mechanisms_not_objects() {
        let s = Signs {
            stuck_pods: 12,
            eso_stores: 0,
            vso_secrets: 3,
        };
        assert_eq!(s.independent(), 2);
        assert_eq!(
            s.describe(),
            "12 pods stuck on the agent's init container, 3 Vault Secrets Operator secrets whose login fails"
        );
        assert_eq!(Signs::default().independent(), 0);
    }
}
