#!/bin/sh
# The canary's side of Vault: a policy that reads one secret and a role that binds only the
# canary ServiceAccount. Run once, with a token allowed to write policies and roles:
#
#   VAULT_ADDR=... VAULT_TOKEN=... sh deploy/vault/canary-role.sh
#
# Names match deploy/config.example.toml ([canary]) and deploy/serviceaccounts.yaml.
set -eu

MOUNT="${MOUNT:-kubernetes}"

# The only thing a canary token may do beyond the default policy: read the canary secret,
# which tells a policy denial (policy_denied) apart from an authentication failure.
vault policy write vault-triage-canary - <<'POLICY'
path "secret/data/vault-triage/canary" {
  capabilities = ["read"]
}
POLICY

# Something to read (KV v2 at secret/). The value is not a secret.
vault kv put -mount=secret vault-triage/canary purpose="vault-triage canary read"

# The role: only vault-triage/vault-triage-canary, short-lived tokens that are revoked right
# after each check anyway, no renewal beyond a few minutes.
# Add `audience=...` when your pods' tokens carry a specific audience, and set the same value
# as canary.audience in the bot's config. The default policy stays attached and the token
# type stays `service`: the bot revokes each canary token with auth/token/revoke-self.
vault write "auth/${MOUNT}/role/vault-triage-canary" \
  bound_service_account_names=vault-triage-canary \
  bound_service_account_namespaces=vault-triage \
  token_policies=vault-triage-canary \
  token_ttl=60s \
  token_max_ttl=120s \
  token_no_default_policy=false \
  token_type=service
