# Vault policy of the vault-triage bot:  vault policy write vault-triage deploy/vault/policy.hcl
#
# Written for the auth mount "kubernetes" (vault.auth_mount in the config); change the
# auth/kubernetes/ paths if yours differs. sys/health needs no token.
#
# Not listed, because Vault's `default` policy already grants them to every token (keep
# `default` attached): auth/token/lookup-self (the bot checks its own token) and
# auth/token/revoke-self (the canary's Vault token is revoked right after each login).
# The canary login itself (auth/kubernetes/login) is unauthenticated and needs no policy.

# Auth methods: does the kubernetes method exist at the configured mount?
path "sys/auth" {
  capabilities = ["read"]
}

# The method's config: host, CA, token_reviewer_jwt_set, issuer settings.
# `update` is the reconfigure-auth fix (rotate-reviewer / use-local-token): the write is a full
# replacement of this config, approved in chat. If the bot must never rewrite it, drop
# "update" here (and the [[approvals]] rule for reconfigure-auth): diagnosis keeps working.
path "auth/kubernetes/config" {
  capabilities = ["read", "update"]
}

# Roles: bound ServiceAccount names and namespaces, audience, policies.
path "auth/kubernetes/role/*" {
  capabilities = ["read"]
}

# Vault's DEBUG log, held open during the canary login: the plugin's real reason for a bare
# 403. Optional, but without it more triages end `inconclusive`.
path "sys/monitor" {
  capabilities = ["read"]
}
