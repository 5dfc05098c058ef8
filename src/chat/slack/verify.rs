//! Slack's v0 request signatures: HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing
//! secret, sent as `X-Slack-Signature: v0=<hex>` with `X-Slack-Request-Timestamp`. Pure: the
//! clock is a parameter, so Slack's documented test vector can be checked.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying `v0=<hex hmac>`.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// Header carrying the request's Unix timestamp.
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Oldest (and newest) a signed request may be, in seconds from now: replays are refused.
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a request's signature was refused. Every case answers 401 and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the request timestamp is not a number")]
    BadTimestamp,
    #[error("the request timestamp is more than 5 minutes from now")]
    Stale,
    #[error("the signature is not of the form v0=<hex>")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> HmacSha256 {
    // An HMAC key may have any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// `v0=<hex>` for `body` sent at `timestamp`: what Slack puts in `X-Slack-Signature`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Checks a request signed at `timestamp` with `signature`, against the raw `body`, at Unix
/// time `now`. The hash is compared in constant time.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::MissingHeader("X-Slack-Request-Timestamp"))?;
    let signature = signature.ok_or(SignatureError::MissingHeader("X-Slack-Signature"))?;
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    // `abs_diff`: a timestamp near i64::MIN or MAX must be refused, not overflow.
    if at.abs_diff(now) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let hash = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(SignatureError::Malformed)?;
    mac(secret, timestamp.trim(), body)
        .verify_slice(&hash)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From Slack's "Verifying requests from Slack" documentation.
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const AT: i64 = 1_531_420_618;

    #[test]
    fn slacks_documented_test_vector_verifies() {
        assert_eq!(sign(SECRET, TS, BODY.as_bytes()), SIGNATURE);
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIGNATURE), BODY.as_bytes(), AT + 10),
            Ok(())
        );
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let tampered = BODY.replace("roadrunner", "wileecoyote");
        assert_eq!(
            verify(SECRET, Some(TS), Some(SIGNATURE), tampered.as_bytes(), AT),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn another_secret_is_refused() {
        assert_eq!(
            verify(
                b"not-the-secret",
                Some(TS),
                Some(SIGNATURE),
                BODY.as_bytes(),
                AT
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_stale_or_future_timestamp_is_refused_even_with_a_good_hash() {
        for now in [
            AT + MAX_SKEW_SECS + 1,
            AT - MAX_SKEW_SECS - 1,
            1_900_000_000,
        ] {
            assert_eq!(
                verify(SECRET, Some(TS), Some(SIGNATURE), BODY.as_bytes(), now),
                Err(SignatureError::Stale),
                "{now}"
            );
        }
        assert!(
            verify(
                SECRET,
                Some(TS),
                Some(SIGNATURE),
                BODY.as_bytes(),
                AT + MAX_SKEW_SECS
            )
            .is_ok()
        );
    }

    #[test]
    fn missing_headers_are_refused() {
        assert_eq!(
            verify(SECRET, None, Some(SIGNATURE), BODY.as_bytes(), AT),
            Err(SignatureError::MissingHeader("X-Slack-Request-Timestamp"))
        );
        assert_eq!(
            verify(SECRET, Some(TS), None, BODY.as_bytes(), AT),
            Err(SignatureError::MissingHeader("X-Slack-Signature"))
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(
            verify(
                SECRET,
                Some("yesterday"),
                Some(SIGNATURE),
                BODY.as_bytes(),
                AT
            ),
            Err(SignatureError::BadTimestamp)
        );
        for bad in ["", "v0=", "v0=zz", "v1=a2114d57", &SIGNATURE[3..]] {
            let r = verify(SECRET, Some(TS), Some(bad), BODY.as_bytes(), AT);
            assert!(
                matches!(r, Err(SignatureError::Malformed | SignatureError::Mismatch)),
                "{bad:?}: {r:?}"
            );
        }
        // A prefix of the right hash is not accepted.
        assert_eq!(
            verify(
                SECRET,
                Some(TS),
                Some(&SIGNATURE[..21]),
                BODY.as_bytes(),
                AT
            ),
            Err(SignatureError::Mismatch)
        );
    }
}
