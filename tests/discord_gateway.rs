//! The gateway transport against a fake gateway on loopback (HELLO, IDENTIFY, READY,
//! INTERACTION_CREATE): the same command answers with the same summary as over HTTP, the
//! initial response going through the REST callback.

mod common;
mod discord_support;

use serde_json::{Value, json};
use vault_triage::chat::discord::DiscordRuntime;
use vault_triage::lab::{Lab, LabOptions, Scenario};

use discord_support::*;

/// What must match between two summaries of the same incident.
fn shape(c: &Call) -> Value {
    let e = c.embed();
    json!({
        "title": e["title"],
        "color": e["color"],
        "footer": e["footer"],
        "fields": e["fields"].as_array().unwrap().iter().map(|f| f["name"].clone()).collect::<Vec<_>>(),
        "buttons": c.buttons().into_iter().map(|(l, s, _)| json!([l, s])).collect::<Vec<_>>(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_command_gets_the_same_summary_as_the_endpoint() {
    common::init_crypto();
    let lab = Lab::start(Scenario::ReviewerJwtExpired, LabOptions::default())
        .await
        .unwrap();
    let (_dir, files) = common::lab_files(&lab);
    let state = tempfile::tempdir().unwrap();
    let bot = bot(&lab, &files, state.path()).await;
    let fake = FakeDiscord::start().await;
    let gateway = FakeGateway::start().await;
    fake.set_gateway(&gateway.url);
    let rt = DiscordRuntime::start(bot, settings(&fake, true, true))
        .await
        .unwrap();
    assert!(rt.has_gateway());
    let base = serve(rt.router().unwrap()).await;

    tokio::time::timeout(WAIT, gateway.identified.notified())
        .await
        .expect("the bot never identified");
    let identify = gateway.identify.lock().unwrap().clone().unwrap();
    assert_eq!(identify["d"]["token"], format!("Bot {BOT_TOKEN}"));
    assert_eq!(identify["d"]["intents"], 0, "interactions need no intents");

    // Over the gateway: the deferral is the REST callback, then @original is edited.
    let interaction = command("tok-gw", ALICE, "triage", &[]);
    let interaction_id = interaction["id"].as_str().unwrap().to_string();
    gateway.events.send(interaction).unwrap();
    let callback = fake
        .wait_for("the callback", 1, |c| {
            c.is(
                "POST",
                &format!("/interactions/{interaction_id}/tok-gw/"),
                "/callback",
            )
        })
        .await
        .remove(0);
    assert_eq!(callback.body, json!({"type": 5}));
    let over_gateway = fake
        .wait_for("the gateway summary", 1, |c| {
            c.is(
                "PATCH",
                &format!("/webhooks/{APP}/tok-gw/"),
                "/messages/@original",
            )
        })
        .await
        .remove(0);
    let calls = fake.calls();
    let index = |path: &str| calls.iter().position(|c| c.path == path).unwrap();
    assert!(
        index(&callback.path) < index(&over_gateway.path),
        "the callback comes before the answer"
    );

    // Over HTTP, the same command.
    let (status, body, _) = post_signed(&base, &command("tok-http", ALICE, "triage", &[])).await;
    assert_eq!((status, body.as_str()), (200, r#"{"type":5}"#));
    let over_http = fake
        .wait_for("the endpoint summary", 1, |c| {
            c.is(
                "PATCH",
                &format!("/webhooks/{APP}/tok-http/"),
                "/messages/@original",
            )
        })
        .await
        .remove(0);

    let title = over_gateway.embed()["title"].as_str().unwrap();
    assert!(title.contains("reviewer token expired"), "{title}");
    assert_eq!(shape(&over_gateway), shape(&over_http));
    assert!(
        fake.calls()
            .iter()
            .filter(|c| c.path.contains("/tok-http/"))
            .all(|c| c.method == "PATCH"),
        "the endpoint answers in its response body, not with a callback"
    );
    assert_eq!(fake.unexpected(), Vec::<String>::new());

    rt.shutdown().await;
    lab.shutdown().await;
}
