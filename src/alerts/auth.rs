//! Who may post alerts: bearer or basic credentials compared in constant time against a list
//! of accepted secrets (several, for rotation), and Grafana's HMAC signature where configured.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// Header Grafana signs with by default.
pub const GRAFANA_SIGNATURE_HEADER: &str = "x-grafana-alerting-signature";
/// How far a signed Grafana timestamp may be from now, either way, in seconds: a captured
/// request replays only this long.
pub const GRAFANA_MAX_SKEW: i64 = 300;

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
    #[error("the signed timestamp is missing or more than 5 minutes from now")]
    Stale,
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
    /// The credentials `[alerts]` accepts.
    pub fn from_config(settings: &crate::config::AlertsSection) -> Self {
        AlertAuth {
            tokens: settings.tokens.clone(),
            basic: settings.basic.clone(),
            grafana_hmac: settings.grafana_hmac_secret.clone(),
            grafana_timestamp_header: settings.grafana_timestamp_header.clone(),
        }
    }

    pub fn is_configured(&self) -> bool {
        !self.tokens.is_empty() || !self.basic.is_empty() || self.grafana_hmac.is_some()
    }

    /// Checks an `Authorization` header value (and, for Grafana, its signature header and,
    /// when the timestamp header is configured, that the signed timestamp is within
    /// [`GRAFANA_MAX_SKEW`] of `now`, unix seconds).
    pub fn check(
        &self,
        authorization: Option<&str>,
        grafana_signature: Option<&str>,
        grafana_timestamp: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), AuthError> {
        if !self.is_configured() {
            return Err(AuthError::NotConfigured);
        }
        if let (Some(secret), Some(sig)) = (&self.grafana_hmac, grafana_signature) {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
                .map_err(|_| AuthError::Wrong)?;
            let timestamp = match (&self.grafana_timestamp_header, grafana_timestamp) {
                (Some(_), Some(ts)) => Some(ts),
                (Some(_), None) => return Err(AuthError::Stale),
                (None, _) => None,
            };
            if let Some(ts) = timestamp {
                mac.update(ts.as_bytes());
                mac.update(b":");
            }
            mac.update(body);
            let expected = hex::encode(mac.finalize().into_bytes());
            if !constant_time_eq(
                expected.as_bytes(),
                sig.trim().to_ascii_lowercase().as_bytes(),
            ) {
                return Err(AuthError::Wrong);
            }
            // Only a signed timestamp is worth reading, and only once the signature holds.
            return match timestamp.map(|ts| ts.trim().parse::<i64>()) {
                None => Ok(()),
                Some(Ok(at))
                    if now
                        .checked_sub(at)
                        .is_some_and(|d| d.abs() <= GRAFANA_MAX_SKEW) =>
                {
                    Ok(())
                }
                Some(_) => Err(AuthError::Stale),
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

    const NOW: i64 = 1_800_000_000;

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
            a.check(Some("Bearer s3cr3t-triage-token"), None, None, b"", NOW),
            Ok(())
        );
        assert_eq!(
            a.check(Some("bearer old-token"), None, None, b"", NOW),
            Ok(())
        );
        assert_eq!(
            a.check(Some("Bearer nope"), None, None, b"", NOW),
            Err(AuthError::Wrong)
        );
        assert_eq!(a.check(None, None, None, b"", NOW), Err(AuthError::Missing));
    }

    #[test]
    fn basic_credentials_as_alertmanager_sends_them() {
        // headers.txt: `Authorization: Basic YW06cHc=` for am/pw.
        assert_eq!(
            auth().check(Some("Basic YW06cHc="), None, None, b"", NOW),
            Ok(())
        );
        assert_eq!(
            auth().check(Some("Basic YW06eHg="), None, None, b"", NOW),
            Err(AuthError::Wrong)
        );
        assert_eq!(
            auth().check(Some("Basic !!!"), None, None, b"", NOW),
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
        assert_eq!(a.check(None, Some(&sig), None, b"{}", NOW), Ok(()));
        assert_eq!(
            a.check(None, Some(&sig), None, b"{ }", NOW),
            Err(AuthError::Wrong)
        );
        assert_eq!(
            a.check(None, None, None, b"{}", NOW),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn a_grafana_timestamp_must_be_signed_and_fresh_when_configured() {
        let a = AlertAuth {
            grafana_hmac: Some(Secret::new("k")),
            grafana_timestamp_header: Some("x-grafana-alerting-signature-timestamp".into()),
            ..AlertAuth::default()
        };
        let sign = |ts: &str, body: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
            mac.update(ts.as_bytes());
            mac.update(b":");
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        };
        let fresh = NOW.to_string();
        assert_eq!(
            a.check(None, Some(&sign(&fresh, b"{}")), Some(&fresh), b"{}", NOW),
            Ok(())
        );
        let edge = (NOW - GRAFANA_MAX_SKEW).to_string();
        assert_eq!(
            a.check(None, Some(&sign(&edge, b"{}")), Some(&edge), b"{}", NOW),
            Ok(())
        );
        for stale in [
            NOW - GRAFANA_MAX_SKEW - 1,
            NOW + GRAFANA_MAX_SKEW + 1,
            0,
            i64::MIN,
        ] {
            let ts = stale.to_string();
            assert_eq!(
                a.check(None, Some(&sign(&ts, b"{}")), Some(&ts), b"{}", NOW),
                Err(AuthError::Stale),
                "{ts}"
            );
        }
        // No timestamp at all, or one that is not a number: refused too.
        assert_eq!(
            a.check(None, Some(&sign("", b"{}")), None, b"{}", NOW),
            Err(AuthError::Stale)
        );
        assert_eq!(
            a.check(None, Some(&sign("soon", b"{}")), Some("soon"), b"{}", NOW),
            Err(AuthError::Stale)
        );
        // A timestamp the signature does not cover is a wrong signature.
        let other = (NOW - 1).to_string();
        assert_eq!(
            a.check(None, Some(&sign(&fresh, b"{}")), Some(&other), b"{}", NOW),
            Err(AuthError::Wrong)
        );
    }

    #[test]
    fn nothing_configured_refuses_everyone() {
        assert_eq!(
            AlertAuth::default().check(Some("Bearer x"), None, None, b"", NOW),
            Err(AuthError::NotConfigured)
        );
    }
}
