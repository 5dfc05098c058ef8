//! Discord's REST voice against the fake Discord API: what Discord's refusals and outages become,
//! and how it recovers from an `@original` not there yet or a thread already started.

use crate::support::discord as discord_support;

use std::sync::Arc;

use vault_triage::approval::Actor;
use vault_triage::chat::discord::DiscordChat;
use vault_triage::chat::discord::rest::http_client;
use vault_triage::chat::message::{Message, MessageRef};
use vault_triage::chat::{ChatError, ChatPlatform, Origin};
use vault_triage::config::Secret;

use discord_support::*;

fn sink(fake: &FakeDiscord) -> DiscordChat {
    let http = http_client(
        &Secret::new(BOT_TOKEN),
        Some(APP),
        Some(&format!("{}/api/v10", fake.base)),
    )
    .unwrap();
    DiscordChat::new(Arc::new(http))
}

fn text(t: &str) -> Message {
    Message {
        text: t.into(),
        ..Message::default()
    }
}

fn origin(token: &str) -> Origin {
    Origin {
        channel: CHANNEL.into(),
        thread: None,
        reply: token.into(),
        actor: Actor::discord(ALICE),
    }
}

fn summary_at(id: &str) -> MessageRef {
    MessageRef {
        channel: CHANNEL.into(),
        id: id.into(),
        thread: None,
    }
}

#[tokio::test]
async fn a_refusal_carries_discords_message_and_an_outage_is_unavailable() {
    let fake = FakeDiscord::start().await;
    let sink = sink(&fake);
    fake.fail_next("/messages/", 403, 50001, "Missing Access");
    let err = sink
        .update(&summary_at("1500000000000000001"), &text("x"))
        .await;
    assert_eq!(
        err,
        Err(ChatError::Refused(
            "Missing Access (code 50001, HTTP 403)".into()
        ))
    );
    // An outage that outlasts the retries is reported as unavailable.
    for _ in 0..vault_triage::chat::discord::rest::MAX_ATTEMPTS {
        fake.fail_next("/messages/", 502, 0, "Bad Gateway");
    }
    let err = sink
        .update(&summary_at("1500000000000000001"), &text("x"))
        .await;
    assert!(matches!(err, Err(ChatError::Unavailable(_))), "{err:?}");
    let nowhere = DiscordChat::new(Arc::new(
        http_client(
            &Secret::new(BOT_TOKEN),
            Some(APP),
            Some("http://127.0.0.1:1"),
        )
        .unwrap(),
    ));
    let err = nowhere.ephemeral(&origin("secret-token"), "hi").await;
    let Err(ChatError::Unavailable(why)) = err else {
        panic!("{err:?}")
    };
    assert!(
        !why.contains("secret-token"),
        "an interaction token in an error: {why}"
    );
    assert!(
        sink.update(&summary_at("not-an-id"), &text("x"))
            .await
            .is_err(),
        "ids are checked before any call"
    );
}

#[tokio::test]
async fn a_passing_5xx_is_retried_and_the_edit_goes_through() {
    let fake = FakeDiscord::start().await;
    let sink = sink(&fake);
    fake.fail_next("/messages/", 503, 0, "Service Unavailable");
    let before = fake.calls().len();
    sink.update(&summary_at("1500000000000000001"), &text("x"))
        .await
        .expect("the second attempt succeeds");
    let patches = fake.calls()[before..]
        .iter()
        .filter(|c| c.method == "PATCH")
        .count();
    assert_eq!(patches, 2, "one failed attempt, one retry");
}

#[tokio::test]
async fn an_original_not_there_yet_is_edited_on_a_retry() {
    let fake = FakeDiscord::start().await;
    let sink = sink(&fake);
    fake.fail_next("/@original", 404, 10008, "Unknown Message");
    let at = sink
        .follow_up(&origin("tok-early"), &text("hello"))
        .await
        .unwrap();
    assert_eq!(at.channel, CHANNEL);
    let edits = fake
        .calls()
        .into_iter()
        .filter(|c| c.path.ends_with("/@original"))
        .count();
    assert_eq!(edits, 2);
}

#[tokio::test]
async fn a_thread_is_started_once_and_one_started_before_is_found() {
    let fake = FakeDiscord::start().await;
    let sink = Arc::new(sink(&fake));
    let root = summary_at("1500000000000000002");
    // Concurrent replies share one thread start.
    let (one, two) = (text("one"), text("two"));
    let (a, b) = tokio::join!(
        sink.reply_in_thread(&root, &one),
        sink.reply_in_thread(&root, &two)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.thread, b.thread);
    assert_eq!(a.channel, a.thread.clone().unwrap());
    let starts = |fake: &FakeDiscord| {
        fake.calls()
            .iter()
            .filter(|c| c.path.ends_with("/threads"))
            .count()
    };
    assert_eq!(starts(&fake), 1);

    // After a restart the thread exists already: Discord says so, and its id is the message's.
    let fresh = self::sink(&fake);
    let root = summary_at("1500000000000000003");
    fake.fail_next(
        "/threads",
        400,
        160004,
        "A thread has already been created for this message",
    );
    let at = fresh.reply_in_thread(&root, &text("three")).await.unwrap();
    assert_eq!(at.thread.as_deref(), Some("1500000000000000003"));
    assert!(
        fake.calls()
            .iter()
            .any(|c| c.method == "POST" && c.path == "/channels/1500000000000000003/messages")
    );
}
