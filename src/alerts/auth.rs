//! Who may post alerts: bearer or basic credentials compared in constant time against a list
//! of accepted secrets (several, for rotation), and Grafana's HMAC signature where configured.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// Header Grafana signs with by default.
pub const GRAFANA_SIGNATURE_HEADER: &str = "x-grafana-alerting-signature";

/// The accepted credentials.
#[derive(Debug, Clone, Default)]
pub struct AlertAuth {
    /// Bearer tokens (`Authorization: Bearer …`).
    pub tokens: Vec<Secret>,
    /// Basic credentials as `user:password`.
    pub basic: Vec<Secret>,
    /// Grafana's HMAC secret, when signatures are used.
    pub grafana_hmac: Option<Secret>,
    /// Grafana's timestamp header, when its signature covers `timestamp:body`.
    pub grafana_timestamp_header: Option<String>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials: send `Authorization: Bearer <token>` (or basic credentials)")]
    Missing,
    #[error("the credentials are not accepted")]
    Wrong,
    #[error(
        "no credentials are configured for alert intake ([alerts] tokens, basic or grafana_hmac_secret)"
    )]
    NotConfigured,
}

/// Constant-time equality of two byte strings (length leaks, content does not).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn any_matches(candidates: &[Secret], given: &[u8]) -> bool {
    // Compare with every candidate so timing does not tell which one matched.
    candidates.iter().fold(false, |found, c| {
        constant_time_eq(c.expose().as_bytes(), given) | found
    })
}

impl AlertAuth {
    pub fn is_configured(&self) -> bool {
        !self.tokens.is_empty() || !self.basic.is_empty() || self.grafana_hmac.is_some()
    }

    /// Checks an `Authorization` header value (and, for Grafana, its signature header).
    pub fn check(
        &self,
        authorization: Option<&str>,
        grafana_signature: Option<&str>,
        grafana_timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<(), AuthError> {
        if !self.is_configured() {
            return Err(AuthError::NotConfigured);
        }
        if let (Some(secret), Some(sig)) = (&self.grafana_hmac, grafana_signature) {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
                .map_err(|_| AuthError::Wrong)?;
            if let (Some(_), Some(ts)) = (&self.grafana_timestamp_header, grafana_timestamp) {
                mac.update(ts.as_bytes());
                mac.update(b":");
            }
            mac.update(body);
            let expected = hex::encode(mac.finalize().into_bytes());
            return if constant_time_eq(
                expected.as_bytes(),
                sig.trim().to_ascii_lowercase().as_bytes(),
            ) {
                Ok(())
            } else {
                Err(AuthError::Wrong)
            };
        }
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return Err(AuthError::Missing);
        };
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && any_matches(&self.tokens, rest.as_bytes()) {
            return Ok(());
        }
        if scheme.eq_ignore_ascii_case("basic")
            && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest)
            && any_matches(&self.basic, &decoded)
        {
            return Ok(());
        }
        Err(AuthError::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> AlertAuth {
        AlertAuth {
            tokens: vec![Secret::new("old-token"), Secret::new("s3cr3t-triage-token")],
            basic: vec![Secret::new("am:pw")],
            ..AlertAuth::default()
        }
    }

    #[test]
    fn bearer_tokens_rotate() {
        let a = auth();
        assert_eq!(
            a.check(Some("Bearer s3cr3t-triage-token"), None, None, b""),
            Ok(())
        );
        assert_eq!(a.check(Some("bearer old-token"), None, None, b""), Ok(()));
        assert_eq!(
            a.check(Some("Bearer nope"), None, None, b""),
            Err(AuthError::Wrong)
        );
        assert_eq!(a.check(None, None, None, b""), Err(AuthError::Missing));
    }

    #[test]
    fn basic_credentials_as_alertmanager_sends_them() {
        // headers.txt: `Authorization: Basic YW06cHc=` for am/pw.
        assert_eq!(
            auth().check(Some("Basic YW06cHc="), None, None, b""),
            Ok(())
        );
        assert_eq!(
            auth().check(Some("Basic YW06eHg="), None, None, b""),
            Err(AuthError::Wrong)
        );
        assert_eq!(
            auth().check(Some("Basic !!!"), None, None, b""),
            Err(AuthError::Wrong)
        );
    }

    #[test]
    fn grafana_hmac_signatures() {
        let a = AlertAuth {
            grafana_hmac: Some(Secret::new("k")),
            ..AlertAuth::default()
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"{}");
        let sig = hex::encode(mac.finalize().into_bytes());
        assert_eq!(a.check(None, Some(&sig), None, b"{}"), Ok(()));
        assert_eq!(
            a.check(None, Some(&sig), None, b"{ }"),
            Err(AuthError::Wrong)
        );
        assert_eq!(a.check(None, None, None, b"{}"), Err(AuthError::Missing));
    }

    #[test]
    fn nothing_configured_refuses_everyone() {
        assert_eq!(
            AlertAuth::default().check(Some("Bearer x"), None, None, b""),
            Err(AuthError::NotConfigured)
        );
    }
}
