//! ServiceAccount JWT claims, decoded without verifying (for display and expiry only).
//!
//! Bound tokens carry `exp`, `iat`, `aud` and a nested `kubernetes.io` object; legacy
//! Secret-based tokens carry none of the time claims and flat `kubernetes.io/serviceaccount/…`
//! keys (facts §5.4). Only claims leave this module, never the token.

use chrono::{DateTime, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The claims of a ServiceAccount token that matter in triage.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenClaims {
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub audiences: Vec<String>,
    pub issued_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub namespace: Option<String>,
    pub service_account: Option<String>,
    pub service_account_uid: Option<String>,
    /// Pod the token is bound to, if any.
    pub pod: Option<String>,
    /// A legacy Secret-based token (no expiry).
    pub legacy: bool,
    /// Signing algorithm from the header.
    pub algorithm: Option<String>,
}

/// Why a token could not be decoded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("not a decodable JWT: {0}")]
pub struct ClaimsError(String);

impl TokenClaims {
    /// Decodes the claims of `token` without checking its signature.
    pub fn decode(token: &str) -> Result<Self, ClaimsError> {
        let token = token.trim();
        let header = jsonwebtoken::decode_header(token).map_err(|e| ClaimsError(e.to_string()))?;
        let raw: Value = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|e| ClaimsError(e.to_string()))?;
        let mut claims = Self::from_value(&raw);
        claims.algorithm = Some(format!("{:?}", header.alg));
        Ok(claims)
    }

    fn from_value(raw: &Value) -> Self {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
        let time = |key: &str| {
            raw.get(key)
                .and_then(Value::as_i64)
                .and_then(|t| Utc.timestamp_opt(t, 0).single())
        };
        let audiences = match raw.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        let k8s = raw.get("kubernetes.io");
        let legacy_ns = s(raw.get("kubernetes.io/serviceaccount/namespace"));
        Self {
            subject: s(raw.get("sub")),
            issuer: s(raw.get("iss")),
            audiences,
            issued_at: time("iat"),
            expires_at: time("exp"),
            namespace: s(k8s.and_then(|k| k.get("namespace"))).or(legacy_ns.clone()),
            service_account: s(k8s.and_then(|k| k.pointer("/serviceaccount/name")))
                .or_else(|| s(raw.get("kubernetes.io/serviceaccount/service-account.name"))),
            service_account_uid: s(k8s.and_then(|k| k.pointer("/serviceaccount/uid")))
                .or_else(|| s(raw.get("kubernetes.io/serviceaccount/service-account.uid"))),
            pod: s(k8s.and_then(|k| k.pointer("/pod/name"))),
            legacy: k8s.is_none() && legacy_ns.is_some(),
            algorithm: None,
        }
    }

    /// True when `exp` is known and in the past at `now`.
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|exp| exp <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn jwt(claims: &Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.{}",
            b64.encode(br#"{"alg":"RS256","kid":"k"}"#),
            b64.encode(claims.to_string()),
            b64.encode(b"opaque-signature")
        )
    }

    #[test]
    fn bound_token_claims_are_decoded() {
        let t = jwt(&serde_json::json!({
            "aud": ["https://kubernetes.default.svc.cluster.local"], "exp": 1_700_003_600, "iat": 1_700_000_000,
            "iss": "https://kubernetes.default.svc.cluster.local", "sub": "system:serviceaccount:vault:vault-auth",
            "kubernetes.io": {"namespace": "vault", "serviceaccount": {"name": "vault-auth", "uid": "u-1"}}
        }));
        let c = TokenClaims::decode(&t).unwrap();
        assert_eq!(
            c.subject.as_deref(),
            Some("system:serviceaccount:vault:vault-auth")
        );
        assert_eq!(c.service_account.as_deref(), Some("vault-auth"));
        assert_eq!(c.expires_at.unwrap().timestamp(), 1_700_003_600);
        assert!(!c.legacy);
        assert!(c.is_expired_at(Utc::now()));
        assert_eq!(c.algorithm.as_deref(), Some("RS256"));
    }

    #[test]
    fn legacy_tokens_have_no_expiry() {
        let t = jwt(&serde_json::json!({
            "iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:vault:vault-auth",
            "kubernetes.io/serviceaccount/namespace": "vault",
            "kubernetes.io/serviceaccount/service-account.name": "vault-auth",
            "kubernetes.io/serviceaccount/service-account.uid": "u-2",
            "aud": "x"
        }));
        let c = TokenClaims::decode(&t).unwrap();
        assert!(c.legacy);
        assert_eq!(c.expires_at, None);
        assert!(!c.is_expired_at(Utc::now()));
        assert_eq!(c.audiences, vec!["x".to_string()]);
        assert_eq!(c.namespace.as_deref(), Some("vault"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for input in ["", "a.b", "a.b.c", "....", "eyJ.eyJ.eyJ", "\u{0}\u{1}"] {
            assert!(TokenClaims::decode(input).is_err(), "{input:?}");
        }
    }
}
