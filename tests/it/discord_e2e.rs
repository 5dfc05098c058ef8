//! Discord end to end over real HTTP: signed interactions into `/discord/interactions`, the
//! bot against the lab, and a fake Discord REST API on loopback recording what the bot said.

use std::time::Duration;

use serde_json::{Value, json};
use vault_triage::chat::message::{ButtonAction, Tone};
use vault_triage::lab::LabOptions;

use crate::support::discord::*;
use crate::support::{Options, TestApp};

/// The app with the Discord interactions endpoint only.
async fn setup(lab: LabOptions) -> TestApp {
    TestApp::with(Options {
        lab,
        slack: false,
        ..Options::default()
    })
    .await
}

fn original(token: &str) -> impl Fn(&Call) -> bool + '_ {
    move |c: &Call| {
        c.is(
            "PATCH",
            &format!("/webhooks/{APP}/{token}/"),
            "/messages/@original",
        )
    }
}

fn assert_no_token_leaked(fake: &FakeDiscord) {
    for c in fake.calls() {
        let body = c.body.to_string();
        assert!(!body.contains("eyJ"), "a JWT reached Discord: {body}");
        assert_eq!(
            c.auth.as_deref(),
            Some("Bot test-bot-token"),
            "{} {}",
            c.method,
            c.path
        );
    }
    assert_eq!(fake.unexpected(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_deferred_at_once_and_answered_with_the_verdict_while_the_lab_is_slow() {
    let s = setup(LabOptions {
        latency: Duration::from_secs(2),
        ..LabOptions::default()
    })
    .await;
    let (status, body, took) = s
        .discord_interaction(&command("tok-slow", ALICE, "triage", &[]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"type": 5})
    );
    assert!(
        took < Duration::from_millis(1000),
        "the deferral took {took:?}"
    );
    assert!(
        s.discord.calls().is_empty(),
        "nothing is said before the triage ends"
    );

    let summary = s
        .discord
        .wait_for("the summary", 1, original("tok-slow"))
        .await
        .remove(0);
    let e = summary.embed();
    let title = e["title"].as_str().unwrap();
    assert!(title.contains("reviewer token expired"), "{title}");
    assert_eq!(e["color"], Tone::Danger.colour());
    assert_eq!(summary.body["content"], "");
    let labels: Vec<String> = summary.buttons().into_iter().map(|b| b.0).collect();
    assert_eq!(
        labels,
        [
            "Rotate reviewer token (asks for approval)",
            "Use Vault's own token (asks for approval)",
            "Restart affected workloads (asks for approval)",
            "Re-sync secrets (asks for approval)",
            "Re-sync incl. dynamic secrets (asks for approval)",
            "Preview plan",
            "Re-run triage"
        ]
    );
    assert_no_token_leaked(&s.discord);
    assert_eq!(
        s.said().await.discord_calls(),
        [format!("PATCH /webhooks/{APP}/tok-slow/messages/@original")]
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_discord_approvals_run_the_fix_and_a_self_approval_is_refused_quietly() {
    let s = setup(LabOptions::default()).await;
    let fake = &s.discord;

    // alice triages: deferred, then @original becomes the summary with its buttons.
    let (status, _, _) = s
        .discord_interaction(&command("tok-1", ALICE, "triage", &[]))
        .await;
    assert_eq!(status, 200);
    let summary = fake
        .wait_for("the summary", 1, original("tok-1"))
        .await
        .remove(0);
    let e = summary.embed();
    assert!(
        e["title"]
            .as_str()
            .unwrap()
            .contains("reviewer token expired")
    );
    let fields: Vec<&str> = e["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(
        fields.iter().any(|f| f.contains("Canary login")),
        "{fields:?}"
    );
    assert!(
        e["footer"]["text"]
            .as_str()
            .unwrap()
            .starts_with("Reconfigure needs 2 approvals"),
        "{e}"
    );
    let buttons = summary.buttons();
    let (rotate_label, rotate_style, rotate) = &buttons[0];
    assert_eq!(rotate_label, "Rotate reviewer token (asks for approval)");
    assert_eq!(*rotate_style, 4);
    assert_eq!(buttons[5].1, 2, "secondary");
    assert!(matches!(
        ButtonAction::decode(rotate),
        Some(ButtonAction::Propose { .. })
    ));
    let summary_id = summary.answered_id();
    let summary_msg = message(&summary_id, CHANNEL, &summary.body);

    // alice asks for the rotation: acknowledged (type 6); a thread starts under the summary
    // and the approval card is posted there.
    let (status, body, _) = s
        .discord_interaction(&click("tok-2", ALICE, rotate, summary_msg, 0))
        .await;
    assert_eq!((status, body.as_str()), (200, r#"{"type":6}"#));
    let thread_call = fake
        .wait_for("the thread", 1, |c| {
            c.is(
                "POST",
                &format!("/channels/{CHANNEL}/messages/{summary_id}/"),
                "/threads",
            )
        })
        .await
        .remove(0);
    let name = thread_call.body["name"].as_str().unwrap();
    assert!(
        name.starts_with("vault-triage: Vault Kubernetes auth"),
        "{name}"
    );
    assert!(name.chars().count() <= 100);
    let thread = thread_call.answered_id();
    let in_thread = format!("/channels/{thread}/messages");
    let card = fake
        .wait_for("the approval card", 1, |c| {
            c.method == "POST" && c.path == in_thread
        })
        .await
        .remove(0);
    assert!(
        card.embed()["title"]
            .as_str()
            .unwrap()
            .contains("Reconfigure Vault auth"),
        "{}",
        card.body
    );
    let card_buttons = card.buttons();
    assert_eq!(card_buttons[0].0, "Approve");
    assert_eq!(card_buttons[0].1, 1);
    assert_eq!(card_buttons[1].0, "Deny");
    let approve = card_buttons[0].2.clone();
    let card_id = card.answered_id();
    let card_msg = || message(&card_id, &thread, &card.body);

    // alice approving her own request is refused, only to her (flags 64).
    let (status, _, _) = s
        .discord_interaction(&click("tok-3", ALICE, &approve, card_msg(), 11))
        .await;
    assert_eq!(status, 200);
    let refusal = fake
        .wait_for("the refusal", 1, |c| {
            c.is("POST", &format!("/webhooks/{APP}/tok-3"), "")
        })
        .await
        .remove(0);
    assert_eq!(refusal.body["flags"], 64);
    let text = refusal.body["content"].as_str().unwrap();
    assert!(text.contains("someone else must approve"), "{text}");

    // bob approves: the card shows one approval.
    let card_edit = format!("/channels/{thread}/messages/{card_id}");
    let (status, _, _) = s
        .discord_interaction(&click("tok-4", BOB, &approve, card_msg(), 11))
        .await;
    assert_eq!(status, 200);
    let edit = fake
        .wait_for("the card after bob", 1, |c| {
            c.method == "PATCH" && c.path == card_edit
        })
        .await
        .remove(0);
    let footer = edit.embed()["footer"]["text"].as_str().unwrap();
    assert!(footer.contains("1 so far"), "{footer}");

    // carol approves: quorum, the fix runs with progress in the thread, the card ends done.
    let (status, _, _) = s
        .discord_interaction(&click("tok-5", CAROL, &approve, card_msg(), 11))
        .await;
    assert_eq!(status, 200);
    let done = fake
        .wait_for("the final card", 1, |c| {
            c.method == "PATCH"
                && c.path == card_edit
                && c.embed()["title"]
                    .as_str()
                    .is_some_and(|t| t.starts_with('✅'))
        })
        .await
        .remove(0);
    assert_eq!(
        done.body["components"],
        json!([]),
        "a final card has no buttons"
    );
    assert_eq!(done.embed()["color"], Tone::Good.colour());
    let progress = fake
        .wait_for("the closing line", 1, |c| {
            c.method == "POST"
                && c.path == in_thread
                && c.body["content"]
                    .as_str()
                    .is_some_and(|t| t.contains("after approval"))
        })
        .await;
    assert!(
        progress[0].body["content"]
            .as_str()
            .unwrap()
            .starts_with('✅')
    );
    let said: String = fake
        .calls()
        .iter()
        .filter(|c| c.method == "POST" && c.path == in_thread)
        .filter_map(|c| c.body["content"].as_str().map(str::to_string))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        said.contains("**verify**: canary login through auth/kubernetes succeeds (200)"),
        "{said}"
    );
    let threads = fake
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/threads"))
        .count();
    assert_eq!(threads, 1, "the thread is started once");
    assert_no_token_leaked(fake);
    let said = s.said().await;
    crate::support::app::assert_said_around(
        &said.discord_shapes(),
        &[
            "PATCH /webhooks/<id>/tok-1/messages/@original",
            "POST /channels/<id>/messages/<id>/threads",
            "POST /channels/<id>/messages",
            "POST /webhooks/<id>/tok-3",
            "PATCH /channels/<id>/messages/<id>",
            "PATCH /channels/<id>/messages/<id>",
        ],
        "POST /channels/<id>/messages",
        &[
            "PATCH /channels/<id>/messages/<id>",
            "POST /channels/<id>/messages",
        ],
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_stale_or_forged_requests_are_refused_and_change_nothing() {
    let s = setup(LabOptions::default()).await;
    let cmd = command("tok-bad", ALICE, "triage", &[]).to_string();
    let signed_at = now();
    let ts = signed_at.to_string();
    let other = (signed_at - 1).to_string();
    let good = sign(&ts, cmd.as_bytes());

    // PING → PONG, exactly `{"type":1}`.
    let ping = json!({"id": snowflake(), "application_id": APP, "type": 1, "token": "tok-ping", "version": 1});
    let (status, body, _) = s.discord_interaction(&ping).await;
    assert_eq!((status, body.as_str()), (200, r#"{"type":1}"#));

    let tampered = cmd.replace("triage", "status");
    let stale = (now() - 360).to_string();
    let future = (now() + 360).to_string();
    let cases = [
        ("no headers", cmd.clone(), None, None),
        ("no signature", cmd.clone(), None, Some(ts.clone())),
        ("no timestamp", cmd.clone(), Some(good.clone()), None),
        (
            "tampered body",
            tampered,
            Some(good.clone()),
            Some(ts.clone()),
        ),
        (
            "other timestamp",
            cmd.clone(),
            Some(good.clone()),
            Some(other),
        ),
        (
            "stale",
            cmd.clone(),
            Some(sign(&stale, cmd.as_bytes())),
            Some(stale),
        ),
        (
            "future",
            cmd.clone(),
            Some(sign(&future, cmd.as_bytes())),
            Some(future),
        ),
        (
            "garbage signature",
            cmd.clone(),
            Some("zz".into()),
            Some(ts.clone()),
        ),
    ];
    for (what, raw, sig, ts) in cases {
        let (status, _, _) = post_raw(s.url(), raw, sig.as_deref(), ts.as_deref()).await;
        assert_eq!(status, 401, "{what}");
    }

    // Too large to be an interaction: refused before anything else.
    let huge = "x".repeat(vault_triage::chat::discord::MAX_BODY + 1);
    let (status, _, _) = post_raw(s.url(), huge, Some(&good), Some(&ts)).await;
    assert_eq!(status, 413);

    // Signed but not an interaction: 400 with a reason.
    let (status, body, _) = s.discord_interaction(&json!({"hello": "world"})).await;
    assert_eq!(status, 400);
    assert!(body.contains("not a Discord interaction"), "{body}");

    // An unknown button gets an ephemeral answer at once and nothing else.
    let unknown = click(
        "tok-odd",
        BOB,
        "vt:launch:missiles",
        message("1", CHANNEL, &json!({})),
        0,
    );
    let (status, body, _) = s.discord_interaction(&unknown).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["type"].clone(), v["data"]["flags"].clone()),
        (json!(4), json!(64))
    );

    // Help is answered at once and only to the caller, as on Slack, and starts nothing.
    let (status, body, _) = s
        .discord_interaction(&command("tok-help", ALICE, "help", &[]))
        .await;
    assert_eq!(status, 200);
    let help: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (help["type"].clone(), help["data"]["flags"].clone()),
        (json!(4), json!(64))
    );
    assert!(
        help["data"]["content"]
            .as_str()
            .unwrap()
            .contains("/vault-triage role NAME"),
        "{help}"
    );

    // A good request afterwards is served; the refused ones left no trace before it.
    let (status, _, _) = s
        .discord_interaction(&command("tok-status", ALICE, "status", &[]))
        .await;
    assert_eq!(status, 200);
    s.discord
        .wait_for("the status", 1, original("tok-status"))
        .await;
    let calls = s.discord.calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_no_token_leaked(&s.discord);
    assert_eq!(
        s.said().await.discord_calls(),
        [format!(
            "PATCH /webhooks/{APP}/tok-status/messages/@original"
        )]
    );
    s.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_people_typing_the_command_at_once_share_one_triage() {
    let s = setup(LabOptions::default()).await;
    let before = s.canary_triages();
    let users = [ALICE, BOB, CAROL];
    let commands = (0..20).map(|i| {
        let body = command(&format!("tok-{i}"), users[i % 3], "triage", &[]);
        let s = &s;
        async move { s.discord_interaction(&body).await.0 }
    });
    for status in futures::future::join_all(commands).await {
        assert_eq!(status, 200);
    }
    let said = s.said().await;
    let shapes = said.discord_shapes();
    assert_eq!(shapes.len(), 20, "each command is answered: {shapes:?}");
    assert!(
        shapes
            .iter()
            .all(|c| c.starts_with("PATCH /webhooks/<id>/tok-"))
    );
    // One answer carries the summary and its buttons; the others point at it.
    let (full, pointers): (Vec<&Call>, Vec<&Call>) = said.discord.iter().partition(|c| {
        c.body["components"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    assert_eq!(full.len(), 1, "one summary with buttons");
    for p in pointers {
        assert!(
            p.body["content"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Same triage as the summary just posted here"),
            "{}",
            p.body
        );
    }
    assert_eq!(
        s.canary_triages() - before,
        1,
        "twenty commands, one canary login"
    );
    // `status` in the same breath uses the same triage.
    s.discord_interaction(&command("tok-status", ALICE, "status", &[]))
        .await;
    assert_eq!(s.said().await.discord_shapes().len(), 1);
    assert_eq!(s.canary_triages() - before, 1);
    s.finish().await;
}
