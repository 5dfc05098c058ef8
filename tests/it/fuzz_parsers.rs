//! Property-based fuzzing of every parser that reads untrusted input: Slack form bodies,
//! interaction payloads and events, Discord interaction JSON, Alertmanager and Grafana
//! webhook bodies, the chat command language, button values, ServiceAccount JWT claims, the
//! Slack and Discord request signatures, and alert credentials.
//!
//! Each target feeds its parser arbitrary bytes (at most [`MAX_INPUT`]) and mutations of
//! valid inputs (byte-level and, for JSON, structural), and checks two things: the parser
//! never panics, and input that is not what it expects is an error (a forged signature never
//! verifies, garbage never becomes a command or a click). One HTTP test sends a body of
//! several megabytes to each edge and expects 413.
//!
//! cargo-fuzz needs a nightly toolchain; these run on stable, in `cargo test`. The number of
//! cases per target is [`DEFAULT_CASES`], or `VAULT_TRIAGE_FUZZ_CASES` for a long run:
//!
//! ```text
//! VAULT_TRIAGE_FUZZ_CASES=20000 cargo test --release --test fuzz_parsers -- --nocapture
//! ```
//!
//! Each target prints how many cases it executed and how long it took.

use crate::support::discord as discord_support;
use crate::support::slack as slack_fake;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Value, json};
use serenity::model::application::Interaction;
use sha2::Sha256;

use vault_triage::alerts::auth::{AlertAuth, AuthError, GRAFANA_MAX_SKEW};
use vault_triage::alerts::incident::Incident;
use vault_triage::alerts::payload::{self as alert_payload, MAX_ALERTS, Source};
use vault_triage::alerts::render as alert_render;
use vault_triage::approval::RequestId;
use vault_triage::chat::command::{self, ChatCommand, MAX_COMMAND_LEN};
use vault_triage::chat::discord::interaction;
use vault_triage::chat::discord::verify::{Rejection, RequestVerifier};
use vault_triage::chat::message::{ButtonAction, MAX_ACTION_LEN};
use vault_triage::chat::slack::payload::{self as slack_payload, Event, InteractionKind};
use vault_triage::chat::slack::verify::{self as slack_verify, SignatureError};
use vault_triage::config::Secret;
use vault_triage::evidence::TokenClaims;

/// Cases per target when `VAULT_TRIAGE_FUZZ_CASES` is not set: the whole file stays within a
/// minute in a debug build on two cores.
const DEFAULT_CASES: u32 = 512;
/// Largest generated input.
const MAX_INPUT: usize = 64 * 1024;
/// A fixed "now" for the signature targets (2027-01-15).
const NOW: i64 = 1_800_000_000;

fn cases() -> u32 {
    std::env::var("VAULT_TRIAGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // Regressions are turned into named tests here instead of files beside the tests.
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..ProptestConfig::default()
    }
}

/// Counts the cases a target executed and prints them with the time taken.
struct Tally {
    name: &'static str,
    started: Instant,
    count: AtomicU64,
}

impl Tally {
    fn new(name: &'static str) -> Tally {
        Tally {
            name,
            started: Instant::now(),
            count: AtomicU64::new(0),
        }
    }

    fn hit(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn report(&self) {
        let n = self.count.load(Ordering::Relaxed);
        let took = self.started.elapsed();
        eprintln!(
            "fuzz {:<28} {:>7} cases in {:>8.2?} ({:.0} cases/s)",
            self.name,
            n,
            took,
            n as f64 / took.as_secs_f64().max(1e-9)
        );
        assert!(n >= u64::from(cases()), "{}: only {n} cases ran", self.name);
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Arbitrary bytes, mostly short, sometimes up to [`MAX_INPUT`].
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..512),
        1 => prop::collection::vec(any::<u8>(), 0..=MAX_INPUT),
    ]
}

/// Fragments that parsers treat specially.
const SPICE: &[&str] = &[
    "%",
    "%ZZ",
    "%00",
    "%FF%FE",
    "&",
    "=",
    "+",
    "&&",
    "==",
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "-0",
    "1e999",
    "9223372036854775808",
    "-9223372036854775809",
    "\\u0000",
    "\\ud800",
    "\u{0}",
    "\u{202e}",
    "\u{feff}",
    "💥",
    "payload=",
    "vt:",
    "vt:approve:",
    "req_0123456789abcdef",
    "tri_0123456789abcdef",
    "block_actions",
    "eyJ",
    ".",
    "..",
];

#[derive(Debug, Clone)]
enum ByteMutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Spice(Index, usize),
    Delete(Index, usize),
    Truncate(Index),
    Duplicate(Index, usize),
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteMutation::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteMutation::Set(i, b)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| ByteMutation::Insert(i, b)),
        (any::<Index>(), 0..SPICE.len()).prop_map(|(i, s)| ByteMutation::Spice(i, s)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| ByteMutation::Delete(i, n)),
        any::<Index>().prop_map(ByteMutation::Truncate),
        (any::<Index>(), 1usize..256).prop_map(|(i, n)| ByteMutation::Duplicate(i, n)),
    ]
}

fn apply_bytes(mut data: Vec<u8>, mutations: &[ByteMutation]) -> Vec<u8> {
    for m in mutations {
        let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
        match m {
            ByteMutation::Flip(i, bit) if !data.is_empty() => {
                let k = i.index(data.len());
                data[k] ^= 1 << bit;
            }
            ByteMutation::Set(i, b) if !data.is_empty() => {
                let k = i.index(data.len());
                data[k] = *b;
            }
            ByteMutation::Flip(..) | ByteMutation::Set(..) => {}
            ByteMutation::Insert(i, bytes) => {
                let k = at(i, data.len());
                data.splice(k..k, bytes.iter().copied());
            }
            ByteMutation::Spice(i, s) => {
                let k = at(i, data.len());
                data.splice(k..k, SPICE[*s].bytes());
            }
            ByteMutation::Delete(i, n) => {
                let k = at(i, data.len());
                let end = (k + n).min(data.len());
                data.drain(k..end);
            }
            ByteMutation::Truncate(i) => {
                let k = at(i, data.len());
                data.truncate(k);
            }
            ByteMutation::Duplicate(i, n) => {
                let k = at(i, data.len());
                let end = (k + n).min(data.len());
                let copy = data[k..end].to_vec();
                data.splice(end..end, copy);
            }
        }
    }
    data.truncate(MAX_INPUT);
    data
}

/// `seed` with 1–8 byte mutations.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(byte_mutation(), 1..8).prop_map(move |m| apply_bytes(seed.clone(), &m))
}

/// One of `seeds`, with 1–8 byte mutations.
fn mutated_any(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (any::<Index>(), prop::collection::vec(byte_mutation(), 1..8))
        .prop_map(move |(i, m)| apply_bytes(seeds[i.index(seeds.len())].clone(), &m))
}

/// Strings a parser could meet in a JSON value.
fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z_:./-]{0,24}",
        (0..SPICE.len()).prop_map(|i| SPICE[i].to_string()),
        Just("vt:approve:req_0123456789abcdef".to_string()),
        Just("vt:propose:rotate-reviewer:tri_1".to_string()),
        Just("block_actions".to_string()),
        Just("firing".to_string()),
        Just("resolved".to_string()),
        Just("0001-01-01T00:00:00Z".to_string()),
        Just("2026-11-28T09:00:00.000+00:00".to_string()),
        Just("4".to_string()),
    ]
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        json_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(json_string(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum JsonMutation {
    Replace(Index, Value),
    Remove(Index),
    Add(Index, String, Value),
}

fn json_mutation() -> impl Strategy<Value = JsonMutation> {
    prop_oneof![
        3 => (any::<Index>(), json_value()).prop_map(|(i, v)| JsonMutation::Replace(i, v)),
        2 => any::<Index>().prop_map(JsonMutation::Remove),
        1 => (any::<Index>(), json_string(), json_value())
            .prop_map(|(i, k, v)| JsonMutation::Add(i, k, v)),
    ]
}

/// JSON pointers of every value in `v` (the root included).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let key = k.replace('~', "~0").replace('/', "~1");
                pointers(child, format!("{at}/{key}"), out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn apply_json(mut v: Value, mutations: &[JsonMutation]) -> Value {
    for m in mutations {
        let mut all = Vec::new();
        pointers(&v, String::new(), &mut all);
        match m {
            JsonMutation::Replace(i, new) => {
                let p = &all[i.index(all.len())];
                if let Some(slot) = v.pointer_mut(p) {
                    *slot = new.clone();
                }
            }
            JsonMutation::Remove(i) => {
                let p = all[i.index(all.len())].clone();
                let Some((parent, key)) = p.rsplit_once('/') else {
                    continue;
                };
                let key = key.replace("~1", "/").replace("~0", "~");
                match v.pointer_mut(parent) {
                    Some(Value::Object(m)) => {
                        m.remove(&key);
                    }
                    Some(Value::Array(a)) => {
                        if let Ok(k) = key.parse::<usize>()
                            && k < a.len()
                        {
                            a.remove(k);
                        }
                    }
                    _ => {}
                }
            }
            JsonMutation::Add(i, key, new) => {
                let p = &all[i.index(all.len())];
                match v.pointer_mut(p) {
                    Some(Value::Object(m)) => {
                        m.insert(key.clone(), new.clone());
                    }
                    Some(Value::Array(a)) => a.push(new.clone()),
                    _ => {}
                }
            }
        }
    }
    v
}

/// One of `seeds` with 1–6 structural mutations, serialised.
fn json_mutated(seeds: Vec<Value>) -> impl Strategy<Value = Vec<u8>> {
    (any::<Index>(), prop::collection::vec(json_mutation(), 1..6)).prop_map(move |(i, m)| {
        let mut out = serde_json::to_vec(&apply_json(seeds[i.index(seeds.len())].clone(), &m))
            .expect("JSON serialises");
        out.truncate(MAX_INPUT);
        out
    })
}

/// Bytes a parser of `seeds` meets: garbage, byte mutations and structural mutations.
fn json_inputs(seeds: Vec<Value>) -> impl Strategy<Value = Vec<u8>> {
    let raw: Vec<Vec<u8>> = seeds
        .iter()
        .map(|s| serde_json::to_vec(s).unwrap())
        .collect();
    prop_oneof![
        1 => bytes(),
        2 => mutated_any(raw),
        3 => json_mutated(seeds),
    ]
}

/// Unix timestamps as a header would carry them, edge values included.
/// A timestamp header within the freshness window of [`NOW`], as Grafana may format it.
fn fresh_timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        (NOW - GRAFANA_MAX_SKEW..=NOW + GRAFANA_MAX_SKEW).prop_map(|t| t.to_string()),
        (NOW - GRAFANA_MAX_SKEW..=NOW + GRAFANA_MAX_SKEW).prop_map(|t| format!(" {t} ")),
    ]
}

fn timestamp_header() -> impl Strategy<Value = String> {
    prop_oneof![
        (NOW - 400..NOW + 400).prop_map(|t| t.to_string()),
        any::<i64>().prop_map(|t| t.to_string()),
        prop::sample::select(vec![i64::MIN, i64::MIN + 1, -1, 0, i64::MAX, i64::MAX - 1])
            .prop_map(|t| t.to_string()),
        (NOW - 400..NOW + 400).prop_map(|t| format!(" {t} ")),
        "[0-9+ -]{0,24}",
        any::<String>(),
    ]
}

// ---------------------------------------------------------------------------------------------
// Seeds
// ---------------------------------------------------------------------------------------------

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every alert fixture that fits in [`MAX_INPUT`].
fn alert_fixtures() -> Vec<Value> {
    [
        "alertmanager/firing.raw.json",
        "alertmanager/resolved.raw.json",
        "alertmanager/partial-resolve.json",
        "alertmanager/capped-max_alerts5-burst-group.json",
        "alertmanager/old-alert-single.json",
        "other-sources/grafana-webhook-example.json",
        "other-sources/pagerduty-v3-incident-triggered-example.json",
    ]
    .iter()
    .map(|f| {
        let raw = fixture(f);
        assert!(raw.len() <= MAX_INPUT, "{f} is larger than the fuzz bound");
        serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("{f}: {e}"))
    })
    .collect()
}

fn slack_click_seeds() -> Vec<Value> {
    let request = RequestId::generate();
    [
        format!("vt:approve:{request}"),
        format!("vt:deny:{request}"),
        "vt:propose:rotate-reviewer:tri_0123456789abcdef".to_string(),
        "vt:preview:tri_0123456789abcdef".to_string(),
        "vt:rerun:tri_0123456789abcdef".to_string(),
        "someone_elses_button".to_string(),
    ]
    .iter()
    .enumerate()
    .map(|(i, action)| {
        slack_fake::click_payload(
            "U0BOB",
            action,
            "1700000000.000200",
            (i % 2 == 0).then_some("1700000000.000100"),
            "https://hooks.slack.com/actions/1",
        )
    })
    .collect()
}

fn discord_seeds() -> Vec<Value> {
    use discord_support as d;
    let summary = d::message(
        "1400000000000000009",
        d::CHANNEL,
        &json!({"embeds": [{"title": "reviewer token expired"}],
                "components": [{"type": 1, "components": [
                    {"type": 2, "style": 4, "label": "Approve", "custom_id": "vt:rerun:tri_1"}]}]}),
    );
    let request = RequestId::generate();
    let mut ping = json!({"id": d::snowflake(), "application_id": d::APP, "type": 1,
        "token": "tok-ping", "version": 1});
    ping["entitlements"] = json!([]);
    vec![
        ping,
        d::command("tok-1", d::ALICE, "triage", &[]),
        d::command("tok-2", d::BOB, "role", &[("name", "payments-api")]),
        d::command("tok-3", d::CAROL, "status", &[]),
        d::click(
            "tok-4",
            d::BOB,
            &format!("vt:approve:{request}"),
            summary.clone(),
            11,
        ),
        d::click(
            "tok-5",
            d::ALICE,
            "vt:propose:rotate-reviewer:tri_0123456789abcdef",
            summary,
            0,
        ),
    ]
}

fn jwt(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string()),
        b64.encode(signature)
    )
}

fn bound_claims() -> Value {
    json!({
        "aud": ["https://kubernetes.default.svc.cluster.local"], "exp": 1_700_003_600, "iat": 1_700_000_000,
        "iss": "https://kubernetes.default.svc.cluster.local", "sub": "system:serviceaccount:vault:vault-auth",
        "kubernetes.io": {"namespace": "vault", "serviceaccount": {"name": "vault-auth", "uid": "u-1"},
                          "pod": {"name": "p", "uid": "u-2"}}
    })
}

// ---------------------------------------------------------------------------------------------
// Slack
// ---------------------------------------------------------------------------------------------

/// What a parsed slash command must look like: the required fields came from the body.
fn check_command(body: &[u8], cmd: &slack_payload::SlashCommand) {
    for key in ["command", "channel_id", "user_id", "response_url"] {
        assert!(
            body.windows(key.len()).any(|w| w == key.as_bytes()),
            "{key} parsed out of a body without it"
        );
    }
    let _ = cmd.origin();
    let parsed = command::parse(&cmd.text);
    let _ = vault_triage::chat::slack::command_ack(&parsed);
}

#[test]
fn slack_command_forms_never_panic_and_garbage_is_refused() {
    let seed = slack_fake::command_form(
        "C0INCIDENTS",
        "U0ALICE",
        "role payments-api",
        "https://hooks.slack.com/commands/1",
    )
    .into_bytes();
    let tally = Tally::new("slack command form");
    proptest!(config(), |(body in prop_oneof![bytes(), mutated(seed.clone())])| {
        tally.hit();
        if let Ok(cmd) = slack_payload::command_form(&body) {
            check_command(&body, &cmd);
        }
    });
    tally.report();
}

#[test]
fn random_bytes_are_never_a_slack_command() {
    let tally = Tally::new("slack command garbage");
    proptest!(config(), |(body in bytes())| {
        tally.hit();
        // Random bytes cannot name all four required fields.
        let r = slack_payload::command_form(&body);
        prop_assert!(r.is_err(), "{:?} parsed as {:?}", String::from_utf8_lossy(&body), r);
    });
    tally.report();
}

fn check_interaction(r: Result<InteractionKind, slack_payload::PayloadError>) {
    match r {
        Ok(InteractionKind::Click(click)) => {
            // A click only ever carries an action that encodes back to a valid button value.
            let encoded = click.action.encode();
            assert!(encoded.len() <= MAX_ACTION_LEN, "{encoded}");
            assert_eq!(ButtonAction::decode(&encoded), Some(click.action.clone()));
            assert_eq!(click.clicked.channel, click.origin.channel);
        }
        Ok(InteractionKind::Ignored(_)) | Err(_) => {}
    }
}

#[test]
fn slack_interaction_bodies_never_panic_and_clicks_carry_valid_actions() {
    let seeds = slack_click_seeds();
    let forms: Vec<Vec<u8>> = seeds
        .iter()
        .map(|p| {
            serde_urlencoded::to_string([("payload", p.to_string())])
                .unwrap()
                .into_bytes()
        })
        .collect();
    let wrapped = json_mutated(seeds.clone()).prop_map(|json| {
        serde_urlencoded::to_string([("payload", String::from_utf8_lossy(&json).into_owned())])
            .unwrap()
            .into_bytes()
    });
    let tally = Tally::new("slack interaction form");
    proptest!(config(), |(body in prop_oneof![bytes(), mutated_any(forms.clone()), wrapped])| {
        tally.hit();
        check_interaction(slack_payload::interaction_form(&body));
    });
    tally.report();
}

#[test]
fn slack_interaction_json_never_panics() {
    let tally = Tally::new("slack interaction json");
    proptest!(config(), |(body in json_inputs(slack_click_seeds()))| {
        tally.hit();
        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
            check_interaction(slack_payload::interaction_json(&v));
            // Socket Mode carries slash commands as JSON too.
            let _ = slack_payload::command_json(&v);
        }
    });
    tally.report();
}

#[test]
fn slack_event_bodies_never_panic() {
    let seeds = vec![
        json!({"type": "url_verification", "token": "t", "challenge": "abc"}),
        json!({"type": "event_callback", "event": {"type": "app_mention"}}),
    ];
    let tally = Tally::new("slack events");
    proptest!(config(), |(body in json_inputs(seeds.clone()))| {
        tally.hit();
        match slack_payload::event_json(&body) {
            Ok(Event::UrlVerification { challenge }) => {
                // The echoed challenge is the body's. (serde skips ignored fields without
                // checking their UTF-8, so the whole body need not be valid JSON text.)
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    prop_assert_eq!(v["type"].as_str(), Some("url_verification"));
                    prop_assert_eq!(v["challenge"].as_str(), Some(challenge.as_str()));
                }
            }
            Ok(Event::Other(_)) | Err(_) => {}
        }
    });
    tally.report();
}

const SLACK_SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";

#[test]
fn slack_signatures_never_panic_and_only_the_real_signature_verifies() {
    let signature = prop_oneof![
        any::<String>(),
        "v0=[0-9a-f]{0,70}",
        "v[0-9]=[0-9a-fA-F]{64}",
        Just(String::new()),
    ];
    let tally = Tally::new("slack signature (garbage)");
    proptest!(config(), |(
        ts in prop::option::of(timestamp_header()),
        sig in prop::option::of(signature),
        body in bytes(),
        now in prop_oneof![Just(NOW), any::<i64>()],
    )| {
        tally.hit();
        let r = slack_verify::verify(SLACK_SECRET, ts.as_deref(), sig.as_deref(), &body, now);
        // Without the secret, nothing verifies.
        prop_assert!(r.is_err(), "{:?} {:?} verified", ts, sig);
    });
    tally.report();
}

#[test]
fn a_slack_signature_verifies_only_for_its_own_body_and_time() {
    let tally = Tally::new("slack signature (signed)");
    proptest!(config(), |(
        secret in prop::collection::vec(any::<u8>(), 0..80),
        offset in -600i64..600,
        body in bytes(),
        flip in any::<Index>(),
        bit in 0u8..8,
    )| {
        tally.hit();
        let ts = (NOW + offset).to_string();
        let sig = slack_verify::sign(&secret, &ts, &body);
        let r = slack_verify::verify(&secret, Some(&ts), Some(&sig), &body, NOW);
        if offset.abs() <= slack_verify::MAX_SKEW_SECS {
            prop_assert_eq!(r, Ok(()));
        } else {
            prop_assert_eq!(r, Err(SignatureError::Stale));
        }
        if !body.is_empty() && offset.abs() <= slack_verify::MAX_SKEW_SECS {
            let mut tampered = body.clone();
            tampered[flip.index(body.len())] ^= 1 << bit;
            prop_assert_eq!(
                slack_verify::verify(&secret, Some(&ts), Some(&sig), &tampered, NOW),
                Err(SignatureError::Mismatch)
            );
        }
    });
    tally.report();
}

// ---------------------------------------------------------------------------------------------
// Discord
// ---------------------------------------------------------------------------------------------

fn check_discord(body: &[u8]) {
    let Ok(i) = serde_json::from_slice::<Interaction>(body) else {
        return;
    };
    match i {
        Interaction::Command(cmd) => {
            let text = interaction::command_text(&cmd.data);
            let parsed = interaction::chat_command(&cmd.data);
            assert_eq!(parsed, command::parse(&text));
            let _ = interaction::command_origin(&cmd);
        }
        Interaction::Component(click) => {
            if let Some(action) = ButtonAction::decode(&click.data.custom_id) {
                assert_eq!(action.encode(), click.data.custom_id);
            }
            let (origin, clicked) = interaction::click_origin(&click);
            assert_eq!(clicked.id, click.message.id.to_string());
            assert_eq!(origin.actor.user_id, click.user.id.to_string());
        }
        _ => {}
    }
}

#[test]
fn discord_interaction_json_never_panics() {
    let tally = Tally::new("discord interaction json");
    proptest!(config(), |(body in json_inputs(discord_seeds()))| {
        tally.hit();
        check_discord(&body);
    });
    tally.report();
}

#[test]
fn discord_signatures_never_panic_and_only_the_real_signature_verifies() {
    let verifier = RequestVerifier::from_hex(&discord_support::public_key_hex()).unwrap();
    let signature = prop_oneof![
        any::<String>(),
        "[0-9a-f]{0,140}",
        "[0-9a-f]{128}",
        Just(String::new()),
    ];
    let tally = Tally::new("discord signature (garbage)");
    proptest!(config(), |(
        sig in prop::option::of(signature),
        ts in prop::option::of(timestamp_header()),
        body in bytes(),
        now in prop_oneof![Just(NOW), any::<i64>()],
    )| {
        tally.hit();
        let r = verifier.verify(sig.as_deref(), ts.as_deref(), &body, now);
        prop_assert!(r.is_err(), "{:?} {:?} verified", sig, ts);
    });
    tally.report();
}

#[test]
fn a_discord_signature_verifies_only_for_its_own_body_and_time() {
    let verifier = RequestVerifier::from_hex(&discord_support::public_key_hex()).unwrap();
    let tally = Tally::new("discord signature (signed)");
    proptest!(config(), |(
        offset in -600i64..600,
        body in prop_oneof![bytes(), json_inputs(discord_seeds())],
        flip in any::<Index>(),
        bit in 0u8..8,
    )| {
        tally.hit();
        let ts = (NOW + offset).to_string();
        let sig = discord_support::sign(&ts, &body);
        let r = verifier.verify(Some(&sig), Some(&ts), &body, NOW);
        if offset.unsigned_abs() <= 300 {
            prop_assert_eq!(r, Ok(()));
            let mut tampered = body.clone();
            if tampered.is_empty() {
                tampered.push(bit);
            } else {
                tampered[flip.index(body.len())] ^= 1 << bit;
            }
            prop_assert_eq!(
                verifier.verify(Some(&sig), Some(&ts), &tampered, NOW),
                Err(Rejection::BadSignature)
            );
        } else {
            prop_assert_eq!(r, Err(Rejection::Stale));
        }
    });
    tally.report();
}

// ---------------------------------------------------------------------------------------------
// Alerts
// ---------------------------------------------------------------------------------------------

fn check_alerts(source: Source, body: &[u8]) {
    let Ok(group) = alert_payload::parse(source, body) else {
        return;
    };
    assert!(group.alerts.len() <= MAX_ALERTS);
    assert!(!group.receiver.is_empty());
    assert!(!group.group_key.is_empty());
    for a in &group.alerts {
        assert!(a.fingerprint.chars().count() <= 64, "{}", a.fingerprint);
        let _ = (a.name(), a.subject());
    }
    // What the intake does next is pure too: open the incident, apply the snapshot, render.
    let now = chrono::Utc::now();
    let mut incident = Incident::open(&group, now);
    let delta = incident.apply(&group, now);
    let _ = alert_render::root(&incident);
    let _ = alert_render::note(&incident, &delta);
    let _ = incident.searchable_text();
}

#[test]
fn alertmanager_bodies_never_panic() {
    let tally = Tally::new("alertmanager body");
    proptest!(config(), |(body in json_inputs(alert_fixtures()))| {
        tally.hit();
        check_alerts(Source::Alertmanager, &body);
    });
    tally.report();
}

#[test]
fn grafana_bodies_never_panic() {
    let tally = Tally::new("grafana body");
    proptest!(config(), |(body in json_inputs(alert_fixtures()))| {
        tally.hit();
        check_alerts(Source::Grafana, &body);
    });
    tally.report();
}

#[test]
fn random_bytes_are_never_an_alert_group() {
    let tally = Tally::new("alert garbage");
    proptest!(config(), |(body in bytes())| {
        tally.hit();
        prop_assert!(alert_payload::parse(Source::Alertmanager, &body).is_err());
        prop_assert!(alert_payload::parse(Source::Grafana, &body).is_err());
    });
    tally.report();
}

const ALERT_TOKEN: &str = "s3cr3t-triage-token";
const ALERT_BASIC: &str = "am:pw";
const GRAFANA_HMAC: &str = "grafana-hmac-key";

fn alert_auth() -> AlertAuth {
    AlertAuth {
        tokens: vec![Secret::new("old-token"), Secret::new(ALERT_TOKEN)],
        basic: vec![Secret::new(ALERT_BASIC)],
        grafana_hmac: None,
        grafana_timestamp_header: None,
    }
}

fn authorization() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(Bearer|bearer|BEARER|Basic|basic) ?[ -~]{0,40}",
        "Basic [A-Za-z0-9+/=]{0,40}",
        Just("Bearer".to_string()),
        Just("Bearer ".to_string()),
        Just(" ".to_string()),
    ]
}

#[test]
fn alert_credentials_never_panic_and_only_the_configured_ones_pass() {
    let bearer = alert_auth();
    let grafana = AlertAuth {
        grafana_hmac: Some(Secret::new(GRAFANA_HMAC)),
        grafana_timestamp_header: Some("x-grafana-alerting-signature-timestamp".into()),
        ..AlertAuth::default()
    };
    let tally = Tally::new("alert credentials");
    proptest!(config(), |(
        auth in prop::option::of(authorization()),
        sig in prop::option::of(prop_oneof![any::<String>(), "[0-9a-fA-F]{64}"]),
        ts in prop::option::of(timestamp_header()),
        body in bytes(),
    )| {
        tally.hit();
        let r = bearer.check(auth.as_deref(), sig.as_deref(), ts.as_deref(), &body, NOW);
        prop_assert!(
            matches!(r, Err(AuthError::Missing | AuthError::Wrong | AuthError::Stale)),
            "{:?} passed: {:?}", auth, r
        );
        let r = grafana.check(auth.as_deref(), sig.as_deref(), ts.as_deref(), &body, NOW);
        prop_assert!(r.is_err(), "{:?} {:?} passed", auth, sig);
        prop_assert_eq!(
            AlertAuth::default().check(auth.as_deref(), sig.as_deref(), ts.as_deref(), &body, NOW),
            Err(AuthError::NotConfigured)
        );
    });
    tally.report();
}

#[test]
fn configured_alert_credentials_pass_in_any_spelling_the_scheme_allows() {
    let auth = alert_auth();
    let grafana = AlertAuth {
        grafana_hmac: Some(Secret::new(GRAFANA_HMAC)),
        grafana_timestamp_header: Some("x-grafana-alerting-signature-timestamp".into()),
        ..AlertAuth::default()
    };
    let tally = Tally::new("alert credentials (valid)");
    proptest!(config(), |(
        scheme in "(Bearer|bearer|BEARER|Basic|basic)",
        pad in "[ ]{0,3}",
        ts in fresh_timestamp(),
        stale_by in 1..100_000i64,
        body in bytes(),
        upper in any::<bool>(),
    )| {
        tally.hit();
        let value = if scheme.eq_ignore_ascii_case("bearer") {
            format!("{pad}{scheme} {ALERT_TOKEN}{pad}")
        } else {
            let b64 = base64::engine::general_purpose::STANDARD.encode(ALERT_BASIC);
            format!("{pad}{scheme} {b64}{pad}")
        };
        prop_assert_eq!(auth.check(Some(&value), None, None, &body, NOW), Ok(()));
        let mut mac = Hmac::<Sha256>::new_from_slice(GRAFANA_HMAC.as_bytes()).unwrap();
        mac.update(ts.as_bytes());
        mac.update(b":");
        mac.update(&body);
        let mut sig = hex::encode(mac.finalize().into_bytes());
        if upper {
            sig = sig.to_ascii_uppercase();
        }
        prop_assert_eq!(grafana.check(None, Some(&sig), Some(&ts), &body, NOW), Ok(()));
        let mut other = body.clone();
        other.push(b' ');
        prop_assert_eq!(
            grafana.check(None, Some(&sig), Some(&ts), &other, NOW),
            Err(AuthError::Wrong)
        );
        // The same request, received too long after (or before) it was signed.
        let at: i64 = ts.trim().parse().unwrap();
        let late = at + GRAFANA_MAX_SKEW + stale_by;
        prop_assert_eq!(
            grafana.check(None, Some(&sig), Some(&ts), &body, late),
            Err(AuthError::Stale)
        );
    });
    tally.report();
}

// ---------------------------------------------------------------------------------------------
// Commands, buttons, JWT claims
// ---------------------------------------------------------------------------------------------

fn command_text() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("role".to_string()),
        Just("status".to_string()),
        Just("reviewer".to_string()),
        Just("help".to_string()),
        Just("--help".to_string()),
        Just("-h".to_string()),
        Just("--version".to_string()),
        Just("--".to_string()),
        Just("<@U0ALICE>".to_string()),
        Just("`x`".to_string()),
        "[A-Za-z0-9._-]{1,140}",
        any::<String>(),
    ];
    prop_oneof![
        any::<String>(),
        prop::collection::vec(word, 0..6).prop_map(|w| w.join(" ")),
        prop::collection::vec(any::<char>(), 0..600).prop_map(|c| c.into_iter().collect()),
    ]
}

#[test]
fn the_command_parser_never_panics_and_never_echoes_markup() {
    let tally = Tally::new("command parser");
    proptest!(config(), |(text in command_text())| {
        tally.hit();
        match command::parse(&text) {
            ChatCommand::Role(name) => {
                prop_assert!(!name.is_empty() && name.len() <= 128, "{}", name);
                prop_assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c)), "{}", name);
                let looked_at: String = text.chars().take(MAX_COMMAND_LEN).collect();
                prop_assert!(looked_at.to_ascii_lowercase().contains(&name));
            }
            ChatCommand::Cluster(name) => {
                prop_assert!(!name.is_empty() && name.len() <= 63, "{}", name);
                prop_assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{}", name);
                let looked_at: String = text.chars().take(MAX_COMMAND_LEN).collect();
                prop_assert!(looked_at.contains(&name));
            }
            ChatCommand::Help { note: Some(note) } => {
                // Echoed user text carries no markup, mention or control character.
                let echoed = note
                    .trim_start_matches("I did not understand ")
                    .trim_end_matches(" is not a Vault role name.")
                    .trim_end_matches(" is not a cluster name.")
                    .trim_end_matches('.');
                let inner = echoed.strip_prefix('`').and_then(|e| e.strip_suffix('`')).unwrap_or(echoed);
                prop_assert!(!inner.chars().any(|c| "`<>@*_~|".contains(c) || c.is_control()), "{:?}", note);
                prop_assert!(inner.chars().count() <= 60, "{:?}", note);
            }
            ChatCommand::Triage => {
                // Only nothing (or clap's end-of-options marker `--`) is a full triage.
                let looked_at: String = text.chars().take(MAX_COMMAND_LEN).collect();
                prop_assert!(looked_at.split_whitespace().all(|w| w == "--"), "{:?}", text);
            }
            ChatCommand::Status | ChatCommand::Reviewer | ChatCommand::Help { note: None } => {}
        }
    });
    tally.report();
}

fn button_value() -> impl Strategy<Value = String> {
    let verb = prop_oneof![
        Just("approve"),
        Just("deny"),
        Just("propose"),
        Just("preview"),
        Just("rerun"),
        Just("delete"),
        Just(""),
    ];
    let part = prop_oneof![
        "req_[0-9a-f]{16}",
        "req_[0-9a-fA-F]{14,18}",
        "tri_[0-9a-f]{16}",
        "[A-Za-z0-9_]{0,70}",
        Just("rotate-reviewer".to_string()),
        Just("use-local-token".to_string()),
        Just("restart-deployments".to_string()),
        Just("resync-secrets".to_string()),
        Just("../../etc".to_string()),
        any::<String>(),
    ];
    prop_oneof![
        any::<String>(),
        (
            prop_oneof![Just("vt"), Just("VT"), Just("xx"), Just("")],
            verb,
            prop::collection::vec(part, 0..4)
        )
            .prop_map(|(p, v, parts)| {
                let mut all = vec![p.to_string(), v.to_string()];
                all.extend(parts);
                all.join(":")
            }),
    ]
}

#[test]
fn button_values_decode_only_to_canonical_actions() {
    let tally = Tally::new("button decode");
    proptest!(config(), |(value in button_value())| {
        tally.hit();
        if let Some(action) = ButtonAction::decode(&value) {
            // Only a canonical encoding of an allowed action decodes.
            prop_assert_eq!(action.encode(), value.clone());
            prop_assert!(value.len() <= MAX_ACTION_LEN);
            match &action {
                ButtonAction::Propose { remediation, .. } => prop_assert!(matches!(
                    remediation.id(),
                    "rotate-reviewer" | "use-local-token" | "restart-deployments" | "resync-secrets"
                )),
                ButtonAction::Approve { request } | ButtonAction::Deny { request } => {
                    prop_assert_eq!(RequestId::parse(request.as_str()), Ok(request.clone()));
                }
                ButtonAction::Preview { .. } | ButtonAction::Rerun { .. } => {}
            }
        }
    });
    tally.report();
}

fn token_text() -> impl Strategy<Value = String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let structured = (
        prop_oneof![
            Just(json!({"alg": "RS256", "kid": "k"})),
            Just(json!({"alg": "none"})),
            Just(json!({"alg": "HS256", "typ": "JWT"})),
            json_value(),
        ],
        prop_oneof![
            Just(bound_claims()),
            json_value().prop_map(move |v| {
                let mut c = bound_claims();
                if let Value::Object(m) = v {
                    for (k, v) in m {
                        c[k] = v;
                    }
                }
                c
            }),
            json_value()
        ],
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(h, c, s)| jwt(&h, &c, &s));
    let seed = jwt(
        &json!({"alg": "RS256", "kid": "k"}),
        &bound_claims(),
        b"opaque-signature",
    )
    .into_bytes();
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_=.-]{0,400}",
        "eyJ[A-Za-z0-9_-]{0,60}\\.eyJ[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}",
        structured,
        mutated(seed).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        prop::collection::vec(any::<u8>(), 0..400).prop_map(move |raw| {
            format!(
                "{}.{}.{}",
                b64.encode(&raw),
                b64.encode(&raw),
                b64.encode(&raw)
            )
        }),
    ]
}

#[test]
fn jwt_claims_decode_never_panics() {
    let tally = Tally::new("jwt claims");
    proptest!(config(), |(token in token_text())| {
        tally.hit();
        if let Ok(claims) = TokenClaims::decode(&token) {
            prop_assert!(claims.algorithm.is_some());
            let _ = claims.is_expired_at(chrono::Utc::now());
            // A token that decodes has three dot-separated parts.
            prop_assert_eq!(token.trim().split('.').count(), 3, "{}", token);
        }
    });
    tally.report();
}

// ---------------------------------------------------------------------------------------------
// The edges over HTTP
// ---------------------------------------------------------------------------------------------

/// More than every edge's limit (Slack 64 KiB, Discord 256 KiB, alerts 4 MiB by default).
const HUGE: usize = 6 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_several_megabytes_to_any_edge_is_refused_with_413() {
    let app = crate::support::TestApp::with(crate::support::Options {
        scenario: vault_triage::lab::Scenario::Healthy,
        configure: |cfg| cfg.alerts.tokens = vec![Secret::new(ALERT_TOKEN)],
        ..crate::support::Options::default()
    })
    .await;
    let base = app.url().to_string();
    let addr = base.trim_start_matches("http://").to_string();
    for path in [
        "/slack/commands",
        "/slack/interactions",
        "/slack/events",
        "/discord/interactions",
        "/alerts/alertmanager",
        "/alerts/grafana",
    ] {
        // With a Content-Length, signed and authorised as each edge would want: the size is
        // refused before anything else is looked at.
        let ts = slack_fake::now().to_string();
        let huge = vec![b'a'; HUGE];
        let headers = format!(
            "content-type: application/x-www-form-urlencoded\r\n\
             authorization: Bearer {ALERT_TOKEN}\r\n\
             x-slack-request-timestamp: {ts}\r\n\
             x-slack-signature: {}\r\n\
             x-signature-timestamp: {ts}\r\n\
             x-signature-ed25519: {}\r\n",
            slack_verify::sign(slack_fake::SIGNING_SECRET.as_bytes(), &ts, &huge),
            discord_support::sign(&ts, &huge),
        );
        let status = send_huge(&addr, path, &headers, false).await;
        assert_eq!(status, 413, "{path} with a Content-Length");
        // Streamed in chunks, without a Content-Length: refused once the limit is crossed.
        let status = send_huge(&addr, path, "", true).await;
        assert_eq!(status, 413, "{path} streamed");
    }
    // No incident was opened, and nothing was said anywhere (`finish`).
    assert!(app.running.alerts.incidents().is_empty());
    // The server is still up.
    let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    app.finish().await;
}

/// POSTs [`HUGE`] bytes to `path` over a raw connection and returns the status the server
/// answered with. The body is written on its own task, so an answer that comes before the
/// body is fully sent (and a connection closed under the writer) is still read.
async fn send_huge(addr: &str, path: &str, headers: &str, chunked: bool) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let framing = if chunked {
        "transfer-encoding: chunked\r\n".to_string()
    } else {
        format!("content-length: {HUGE}\r\n")
    };
    let head = format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\n{headers}{framing}\r\n");
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..HUGE / chunk.len() {
            if chunked {
                write
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                write.write_all(&chunk).await?;
                write.write_all(b"\r\n").await?;
            } else {
                write.write_all(&chunk).await?;
            }
        }
        if chunked {
            write.write_all(b"0\r\n\r\n").await?;
        }
        std::io::Result::Ok(())
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read_head = async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = read.read(&mut buf).await.unwrap();
            assert!(n > 0, "{path}: the connection closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read_head)
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer within 30 s"));
    writer.abort();
    let head = String::from_utf8_lossy(&answer);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{path}: not an HTTP answer: {head}"))
}

/// Found in a long run of `slack_event_bodies_never_panic`: invalid UTF-8 in a field the
/// parser ignores is skipped, not refused. Harmless (nothing reads it); pinned here so a
/// change is noticed.
#[test]
fn invalid_utf8_in_an_ignored_slack_event_field_is_skipped() {
    let body = b"{\"challenge\":\"abc\",\"token\":\"\x80\",\"type\":\"url_verification\"}";
    assert_eq!(
        slack_payload::event_json(body),
        Ok(Event::UrlVerification {
            challenge: "abc".into()
        })
    );
    assert!(
        slack_payload::event_json(b"{\"challenge\":\"\x80\",\"type\":\"url_verification\"}")
            .is_err()
    );
}

/// Found by `slack_signatures_never_panic_and_only_the_real_signature_verifies`: a timestamp
/// header of `-9223372036854775808` made the skew check overflow (a panic in debug builds,
/// on an unauthenticated request).
#[test]
fn a_slack_timestamp_at_the_edge_of_i64_is_refused_not_panicked_on() {
    let now = chrono::Utc::now().timestamp();
    for ts in [i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1] {
        let ts = ts.to_string();
        let sig = slack_verify::sign(SLACK_SECRET, &ts, b"x");
        for now in [now, 0, -now] {
            assert_eq!(
                slack_verify::verify(SLACK_SECRET, Some(&ts), Some(&sig), b"x", now),
                Err(SignatureError::Stale),
                "{ts} at {now}"
            );
        }
    }
}
