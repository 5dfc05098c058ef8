//! Ed25519 verification of Discord's interaction requests, plus the replay window that
//! serenity's verifier leaves to its caller. Pure: the clock is a parameter.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serenity::interactions_endpoint::Verifier;

/// Header carrying the hex Ed25519 signature of `timestamp ‖ body`.
pub const SIGNATURE_HEADER: &str = "x-signature-ed25519";
/// Header carrying the signed Unix timestamp (seconds).
pub const TIMESTAMP_HEADER: &str = "x-signature-timestamp";
/// Oldest signed timestamp accepted, and how far in the future one may be (clock skew).
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// Why a request was refused. Every case is a 401: the caller learns nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the signature or timestamp header is missing")]
    MissingHeaders,
    #[error("the signature timestamp is not a Unix time")]
    BadTimestamp,
    #[error("the signature timestamp is outside the accepted window")]
    Stale,
    #[error("the signature does not match the body")]
    BadSignature,
}

/// Verifies requests with the application's public key.
#[derive(Clone)]
pub struct RequestVerifier {
    inner: Verifier,
}

impl RequestVerifier {
    /// From the application's public key as Discord shows it (64 hex digits).
    pub fn from_hex(public_key: &str) -> anyhow::Result<Self> {
        let bytes = hex::decode(public_key.trim())
            .map_err(|_| anyhow::anyhow!("DISCORD_PUBLIC_KEY is not hex"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("DISCORD_PUBLIC_KEY must be 32 bytes (64 hex digits)"))?;
        let inner = Verifier::try_new(key)
            .map_err(|_| anyhow::anyhow!("DISCORD_PUBLIC_KEY is not a valid Ed25519 key"))?;
        Ok(Self { inner })
    }

    /// Checks one request as of `now` (Unix seconds): both headers present, the timestamp
    /// within [`MAX_AGE`] of `now` either way, and the signature over `timestamp ‖ body`.
    pub fn verify(
        &self,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<(), Rejection> {
        let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
            return Err(Rejection::MissingHeaders);
        };
        let signed_at: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| Rejection::BadTimestamp)?;
        if signed_at.abs_diff(now) > MAX_AGE.as_secs() {
            return Err(Rejection::Stale);
        }
        self.inner
            .verify(signature, timestamp, body)
            .map_err(|()| Rejection::BadSignature)
    }
}

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer as _, SigningKey};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn verifier() -> RequestVerifier {
        RequestVerifier::from_hex(&hex::encode(key().verifying_key().to_bytes())).unwrap()
    }

    fn sign(ts: &str, body: &[u8]) -> String {
        let mut msg = ts.as_bytes().to_vec();
        msg.extend_from_slice(body);
        hex::encode(key().sign(&msg).to_bytes())
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_fresh_signed_request_passes() {
        let body = br#"{"type":1}"#;
        let ts = NOW.to_string();
        assert_eq!(
            verifier().verify(Some(&sign(&ts, body)), Some(&ts), body, NOW),
            Ok(())
        );
    }

    #[test]
    fn the_window_is_five_minutes_either_way() {
        let body = b"{}";
        for (offset, ok) in [(-300, true), (300, true), (-301, false), (301, false)] {
            let ts = (NOW + offset).to_string();
            let got = verifier().verify(Some(&sign(&ts, body)), Some(&ts), body, NOW);
            assert_eq!(got.is_ok(), ok, "offset {offset}: {got:?}");
        }
    }

    #[test]
    fn bad_keys_are_configuration_errors() {
        for k in ["", "zz", &"ab".repeat(31), &"ab".repeat(33)] {
            assert!(RequestVerifier::from_hex(k).is_err(), "{k}");
        }
    }

    #[test]
    fn odd_headers_are_refused_not_panicked_on() {
        let v = verifier();
        assert_eq!(
            v.verify(Some("xyz"), Some(&NOW.to_string()), b"{}", NOW),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            v.verify(Some("00"), Some("soon"), b"{}", NOW),
            Err(Rejection::BadTimestamp)
        );
        assert_eq!(
            v.verify(None, Some("1"), b"{}", NOW),
            Err(Rejection::MissingHeaders)
        );
    }
}
