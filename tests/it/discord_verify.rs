//! Ed25519 request verification with a test key pair, as Discord signs: valid, tampered,
//! stale and missing-header requests; and the PING answer.

use crate::support::discord as discord_support;

use serde_json::json;
use serenity::model::application::Interaction;
use vault_triage::chat::discord::Ack;
use vault_triage::chat::discord::verify::{MAX_AGE, Rejection, RequestVerifier};

use discord_support::{public_key_hex, sign};

const NOW: i64 = 1_800_000_000;

fn verifier() -> RequestVerifier {
    RequestVerifier::from_hex(&public_key_hex()).unwrap()
}

#[test]
fn a_request_signed_with_the_application_key_passes() {
    let body = br#"{"type":1}"#;
    let ts = NOW.to_string();
    assert_eq!(
        verifier().verify(Some(&sign(&ts, body)), Some(&ts), body, NOW),
        Ok(())
    );
}

#[test]
fn a_tampered_body_or_timestamp_fails() {
    let body = br#"{"type":2,"data":{"name":"vault-triage"}}"#;
    let ts = NOW.to_string();
    let sig = sign(&ts, body);
    let tampered = br#"{"type":2,"data":{"name":"vault-triage!"}}"#;
    assert_eq!(
        verifier().verify(Some(&sig), Some(&ts), tampered, NOW),
        Err(Rejection::BadSignature)
    );
    let other_ts = (NOW - 1).to_string();
    assert_eq!(
        verifier().verify(Some(&sig), Some(&other_ts), body, NOW),
        Err(Rejection::BadSignature)
    );
    let other_key = ed25519_dalek::SigningKey::from_bytes(&[8; 32]);
    let mut msg = ts.as_bytes().to_vec();
    msg.extend_from_slice(body);
    use ed25519_dalek::Signer as _;
    let forged = hex::encode(other_key.sign(&msg).to_bytes());
    assert_eq!(
        verifier().verify(Some(&forged), Some(&ts), body, NOW),
        Err(Rejection::BadSignature)
    );
}

#[test]
fn a_stale_or_future_request_fails_even_when_well_signed() {
    let body = b"{}";
    let age = MAX_AGE.as_secs() as i64;
    for ts in [NOW - age - 1, NOW + age + 1, 0] {
        let ts = ts.to_string();
        assert_eq!(
            verifier().verify(Some(&sign(&ts, body)), Some(&ts), body, NOW),
            Err(Rejection::Stale),
            "{ts}"
        );
    }
}

#[test]
fn missing_headers_fail() {
    let ts = NOW.to_string();
    let sig = sign(&ts, b"{}");
    assert_eq!(
        verifier().verify(None, Some(&ts), b"{}", NOW),
        Err(Rejection::MissingHeaders)
    );
    assert_eq!(
        verifier().verify(Some(&sig), None, b"{}", NOW),
        Err(Rejection::MissingHeaders)
    );
    assert_eq!(
        verifier().verify(None, None, b"{}", NOW),
        Err(Rejection::MissingHeaders)
    );
}

#[test]
fn ping_is_answered_with_a_bare_pong() {
    let ping: Interaction = serde_json::from_value(json!({
        "id": "1", "application_id": "2", "type": 1, "token": "t", "version": 1
    }))
    .unwrap();
    assert!(matches!(ping, Interaction::Ping(_)));
    assert_eq!(Ack::Pong.json(), Some(json!({"type": 1})));
}
