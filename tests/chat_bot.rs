//! The neutral conversation logic against the lab, through a recording sink: a command gets a
//! summary with buttons; a click opens an approval card; a self-approval is refused only to the
//! clicker; two approvals run the fix, with progress in the thread and the card updated.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use vault_triage::approval::Actor;
use vault_triage::chat::bot::{ChatBot, ChatError, Origin, Sink};
use vault_triage::chat::command::ChatCommand;
use vault_triage::chat::message::{ButtonAction, Message, MessageRef};
use vault_triage::config::{ApprovalRule, ConnectionArgs, FileConfig, Person};
use vault_triage::lab::{Lab, LabOptions, Scenario};

#[derive(Debug, Clone)]
enum Said {
    Deliver(Message),
    Reply(MessageRef, Message),
    Update(MessageRef, Message),
    Ephemeral(String, String),
}

#[derive(Default)]
struct Recorder {
    said: Mutex<Vec<Said>>,
    n: Mutex<u64>,
}

impl Recorder {
    fn next_id(&self) -> String {
        let mut n = self.n.lock().unwrap();
        *n += 1;
        format!("m{n}")
    }
    fn take(&self) -> Vec<Said> {
        std::mem::take(&mut self.said.lock().unwrap())
    }
}

impl Sink for Recorder {
    async fn deliver(&self, origin: &Origin, msg: &Message) -> Result<MessageRef, ChatError> {
        self.said.lock().unwrap().push(Said::Deliver(msg.clone()));
        Ok(MessageRef {
            channel: origin.channel.clone(),
            id: self.next_id(),
            thread: None,
        })
    }
    async fn reply_in_thread(
        &self,
        root: &MessageRef,
        msg: &Message,
    ) -> Result<MessageRef, ChatError> {
        self.said
            .lock()
            .unwrap()
            .push(Said::Reply(root.clone(), msg.clone()));
        Ok(MessageRef {
            channel: root.channel.clone(),
            id: self.next_id(),
            thread: Some(root.thread.clone().unwrap_or_else(|| root.id.clone())),
        })
    }
    async fn update(&self, target: &MessageRef, msg: &Message) -> Result<(), ChatError> {
        self.said
            .lock()
            .unwrap()
            .push(Said::Update(target.clone(), msg.clone()));
        Ok(())
    }
    async fn ephemeral(&self, origin: &Origin, text: &str) -> Result<(), ChatError> {
        self.said.lock().unwrap().push(Said::Ephemeral(
            origin.actor.user_id.clone(),
            text.to_string(),
        ));
        Ok(())
    }
}

fn origin(user: &str) -> Origin {
    Origin {
        channel: "C0INCIDENTS".into(),
        thread: None,
        reply: "https://hooks.example/response".into(),
        actor: Actor::slack(user),
    }
}

async fn bot(lab: &Lab, files: &vault_triage::lab::LabFiles, state: &std::path::Path) -> ChatBot {
    let mut cfg = FileConfig::load(Some(&files.config)).unwrap();
    cfg.state.dir = state.to_path_buf();
    cfg.people = vec![Person {
        name: "alice".into(),
        slack: Some("U0ALICE".into()),
        discord: Some("1001".into()),
    }];
    let rule = |action: &str| ApprovalRule {
        action: action.into(),
        approvers: vec!["alice".into(), "U0BOB".into(), "U0CAROL".into()],
        required: 2,
        expires_after: Duration::from_secs(900),
    };
    cfg.approvals = vec![rule("reconfigure-auth"), rule("restart-deployments")];
    let conn = ConnectionArgs {
        vault_addr: lab.vault_addr(),
        vault_token: Some(lab.vault_token()),
        vault_token_file: None,
        vault_cacert: None,
        vault_namespace: None,
        kubeconfig: Some(files.kubeconfig.clone()),
    };
    let ctx = vault_triage::app::build_context(&conn, cfg).await.unwrap();
    ChatBot::new(Arc::new(ctx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_to_a_verified_fix_through_the_neutral_bot() {
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let bot = bot(&lab, &files, state.path()).await;
    let sink = Recorder::default();

    bot.handle_command(&sink, origin("U0ALICE"), ChatCommand::Triage)
        .await;
    let said = sink.take();
    let [Said::Deliver(summary)] = said.as_slice() else {
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
            "Restart affected deployments",
            "Preview plan",
            "Re-run triage"
        ]
    );
    assert!(summary.buttons[0].confirm.is_some());
    assert_eq!(
        summary.footer.as_deref(),
        Some(
            "Reconfigure needs 2 approvals (not the requester) · expires in 15 min · Restart needs 2 approvals (not the requester) · expires in 15 min"
        )
    );
    let summary_ref = MessageRef {
        channel: "C0INCIDENTS".into(),
        id: "m1".into(),
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
        id: "m2".into(),
        thread: Some("m1".into()),
    };

    // alice approving from her Discord identity is refused, only to her.
    let mut alice_discord = origin("1001");
    alice_discord.actor = Actor::discord("1001");
    bot.handle_click(&sink, alice_discord, card_ref.clone(), approve.clone())
        .await;
    let said = sink.take();
    let [Said::Ephemeral(user, text)] = said.as_slice() else {
        panic!("{said:?}")
    };
    assert_eq!(user, "1001");
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
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let bot = bot(&lab, &files, state.path()).await;
    let sink = Recorder::default();
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
            remediation: "rotate-reviewer".into(),
        },
    )
    .await;
    let said = sink.take();
    let [Said::Ephemeral(user, text)] = said.as_slice() else {
        panic!("{said:?}")
    };
    assert_eq!(user, "U0BOB");
    assert!(text.contains("Re-run triage"), "{text}");
    lab.shutdown().await;
}
