//! The gateway transport against a fake gateway on loopback (HELLO, IDENTIFY, READY,
//! INTERACTION_CREATE): the same command answers with the same summary as over HTTP, the
//! initial response going through the REST callback.

use serde_json::{Value, json};

use crate::support::discord::*;
use crate::support::{Options, TestApp};

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
    let gateway = FakeGateway::start().await;
    let app = TestApp::with(Options {
        slack: false,
        discord_gateway: Some(gateway.url.clone()),
        ..Options::default()
    })
    .await;
    let (fake, base) = (&app.discord, app.url());

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

    // Over HTTP, the same command, in another channel (in the same one it would get a pointer
    // to the summary above).
    let mut over_http = command("tok-http", ALICE, "triage", &[]);
    over_http["channel_id"] = json!("1100000000000000077");
    over_http["channel"]["id"] = json!("1100000000000000077");
    let (status, body, _) = post_signed(base, &over_http).await;
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

    let said = app.said().await.discord_calls();
    assert_eq!(said[0], "GET /gateway");
    assert!(
        said[1].starts_with("POST /interactions/") && said[1].ends_with("/tok-gw/callback"),
        "{said:?}"
    );
    assert_eq!(
        said[2..],
        [
            format!("PATCH /webhooks/{APP}/tok-gw/messages/@original"),
            format!("PATCH /webhooks/{APP}/tok-http/messages/@original"),
        ]
    );
    app.finish().await;
}
