//! The neutral conversation logic against the lab, through a recording sink: a command gets a
//! summary with buttons; a click opens an approval card; a self-approval is refused only to the
//! clicker; two approvals run the fix, with progress in the thread and the card updated.

use vault_triage::approval::Actor;
use vault_triage::chat::Origin;
use vault_triage::chat::command::ChatCommand;
use vault_triage::chat::message::{ButtonAction, MessageRef};
use vault_triage::diagnosis::RemediationKind;
use vault_triage::lab::{Lab, LabOptions, Scenario};

use crate::support::app::conversation;
use crate::support::recording::{Posted as Said, RecordingChat};

fn origin(user: &str) -> Origin {
    Origin {
        channel: "C0INCIDENTS".into(),
        thread: None,
        reply: "https://hooks.example/response".into(),
        actor: Actor::slack(user),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_to_a_verified_fix_through_the_neutral_bot() {
    crate::support::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = crate::support::lab_files(&lab);
    let (bot, sink) = conversation(&lab, &files).await;

    bot.handle_command(&sink, origin("U0ALICE"), ChatCommand::Triage)
        .await;
    let said = sink.take();
    let [Said::Root(_, summary)] = said.as_slice() else {
        panic!("{said:?}")
    };
    assert!(
        summary.text.contains("reviewer token expired"),
        "{}",
        summary.text
    );
    let labels: Vec<&str> = summary.buttons.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "Rotate reviewer token",
            "Use Vault's own token",
            "Restart affected workloads",
            "Re-sync secrets",
            "Re-sync incl. dynamic secrets",
            "Preview plan",
            "Re-run triage"
        ]
    );
    assert!(summary.buttons[0].confirm.is_some());
    assert_eq!(
        summary.footer.as_deref(),
        Some(
            "Reconfigure needs 2 approvals (not the requester) · expires in 15 min · Restart needs 2 approvals (not the requester) · expires in 15 min · Re-sync needs 2 approvals (not the requester) · expires in 15 min"
        )
    );
    let summary_ref = MessageRef {
        channel: "C0INCIDENTS".into(),
        id: RecordingChat::nth_id(1),
        thread: None,
    };

    // alice requests the rotation.
    bot.handle_click(
        &sink,
        origin("U0ALICE"),
        summary_ref.clone(),
        summary.buttons[0].action.clone(),
    )
    .await;
    let said = sink.take();
    let [Said::Reply(root, card)] = said.as_slice() else {
        panic!("{said:?}")
    };
    assert_eq!(root, &summary_ref);
    assert!(card.text.contains("Needs 2 approvals"), "{}", card.text);
    let approve = card.buttons[0].action.clone();
    assert!(matches!(approve, ButtonAction::Approve { .. }));
    let card_ref = MessageRef {
        channel: "C0INCIDENTS".into(),
        id: RecordingChat::nth_id(2),
        thread: Some(RecordingChat::nth_id(1)),
    };

    // alice approving from her Discord identity is refused, only to her.
    let mut alice_discord = origin("1001");
    alice_discord.actor = Actor::discord("1001");
    bot.handle_click(&sink, alice_discord, card_ref.clone(), approve.clone())
        .await;
    let said = sink.take();
    let [Said::Ephemeral(to, text)] = said.as_slice() else {
        panic!("{said:?}")
    };
    assert_eq!(to.actor.user_id, "1001");
    assert!(
        text.contains("you requested this change; someone else must approve it"),
        "{text}"
    );

    // bob: recorded, card updated.
    bot.handle_click(&sink, origin("U0BOB"), card_ref.clone(), approve.clone())
        .await;
    let said = sink.take();
    let [Said::Update(target, updated)] = said.as_slice() else {
        panic!("{said:?}")
    };
    assert_eq!(target, &card_ref);
    assert!(
        updated.footer.as_deref().unwrap_or("").contains("1 so far"),
        "{:?}",
        updated.footer
    );

    // carol: quorum, the fix runs, progress in the thread, the card reaches its final state.
    bot.handle_click(&sink, origin("U0CAROL"), card_ref.clone(), approve)
        .await;
    let said = sink.take();
    let progress: String = said
        .iter()
        .filter_map(|s| match s {
            Said::Reply(_, m) => Some(m.text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        progress.contains("*verify*: canary login through auth/kubernetes succeeds (200)"),
        "{progress}"
    );
    let Some(Said::Update(_, last)) = said.iter().rev().find(|s| matches!(s, Said::Update(..)))
    else {
        panic!("{said:?}")
    };
    assert!(
        last.title.as_deref().unwrap_or("").starts_with("✅"),
        "{:?}",
        last.title
    );
    assert!(last.buttons.is_empty());
    let text = format!("{said:?}");
    assert!(!text.contains("eyJ"), "a token reached chat");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_of_an_unknown_triage_are_refused_only_to_the_clicker() {
    crate::support::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = crate::support::lab_files(&lab);
    let (bot, sink) = conversation(&lab, &files).await;
    let at = MessageRef {
        channel: "C0INCIDENTS".into(),
        id: "x".into(),
        thread: None,
    };
    bot.handle_click(
        &sink,
        origin("U0BOB"),
        at,
        ButtonAction::Propose {
            triage: "tri_0000000000000000".into(),
            remediation: RemediationKind::RotateReviewer,
        },
    )
    .await;
    let said = sink.take();
    let [Said::Ephemeral(to, text)] = said.as_slice() else {
        panic!("{said:?}")
    };
    assert_eq!(to.actor.user_id, "U0BOB");
    assert!(text.contains("Re-run triage"), "{text}");
    lab.shutdown().await;
}
