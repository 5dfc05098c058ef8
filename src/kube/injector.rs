//! The agent injector's annotations on a pod template (facts/vault-consumers.md §1): which
//! role it logs in with and through which mount. Pure.
//!
//! The role is `vault.hashicorp.com/role` (or the configured annotation), else
//! `auth-config-role` (every `auth-config-<param>` annotation is an auth parameter); OpenBao's
//! injector spells the same annotations with `openbao.org/`. `auth-path` (default
//! `auth/kubernetes`, overridable cluster-wide in the injector, so a template without it is
//! taken to use the triaged mount) names the mount.

use std::collections::BTreeMap;

/// The injector's annotation prefixes: HashiCorp's and OpenBao's.
pub const PREFIXES: [&str; 2] = ["vault.hashicorp.com/", "openbao.org/"];

/// The role a pod template's annotations log in with through `mount`, if they name one and
/// do not name another mount.
pub fn role_for_mount(
    annotations: &BTreeMap<String, String>,
    role_annotation: &str,
    mount: &str,
) -> Option<String> {
    let get = |suffix: &str| {
        PREFIXES
            .iter()
            .find_map(|p| annotations.get(&format!("{p}{suffix}")))
            .filter(|v| !v.trim().is_empty())
    };
    let role = annotations
        .get(role_annotation)
        .filter(|v| !v.trim().is_empty())
        .or_else(|| get("role"))
        .or_else(|| get("auth-config-role"))?;
    if let Some(path) = get("auth-path") {
        let path = path.trim().trim_matches('/');
        let path = path.strip_prefix("auth/").unwrap_or(path);
        if path != mount.trim_matches('/') {
            return None;
        }
    }
    Some(role.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const ROLE: &str = "vault.hashicorp.com/role";

    #[test]
    fn the_role_comes_from_role_or_auth_config_role_with_either_prefix() {
        let m = "kubernetes";
        assert_eq!(
            role_for_mount(&a(&[(ROLE, "payments")]), ROLE, m).as_deref(),
            Some("payments")
        );
        assert_eq!(
            role_for_mount(
                &a(&[("vault.hashicorp.com/auth-config-role", "ledger")]),
                ROLE,
                m
            )
            .as_deref(),
            Some("ledger")
        );
        assert_eq!(
            role_for_mount(&a(&[("openbao.org/role", "bao-app")]), ROLE, m).as_deref(),
            Some("bao-app")
        );
        assert_eq!(
            role_for_mount(
                &a(&[("example.com/vault-role", "x")]),
                "example.com/vault-role",
                m
            )
            .as_deref(),
            Some("x"),
            "the configured annotation counts too"
        );
        assert_eq!(role_for_mount(&a(&[("app", "x")]), ROLE, m), None);
        assert_eq!(role_for_mount(&a(&[(ROLE, " ")]), ROLE, m), None);
    }

    #[test]
    fn an_auth_path_naming_another_mount_is_not_this_mounts_consumer() {
        let with_path = |p: &str| a(&[(ROLE, "r"), ("vault.hashicorp.com/auth-path", p)]);
        for same in [
            "auth/kubernetes-prod",
            "/auth/kubernetes-prod/",
            "kubernetes-prod",
        ] {
            assert_eq!(
                role_for_mount(&with_path(same), ROLE, "kubernetes-prod").as_deref(),
                Some("r"),
                "{same}"
            );
        }
        assert_eq!(
            role_for_mount(&with_path("auth/kubernetes"), ROLE, "kubernetes-prod"),
            None
        );
        assert_eq!(
            role_for_mount(
                &a(&[(ROLE, "r"), ("openbao.org/auth-path", "auth/other")]),
                ROLE,
                "kubernetes"
            ),
            None
        );
    }
}
