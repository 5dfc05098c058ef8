//! Slack Socket Mode end to end: the bot opens a connection through a fake
//! `apps.connections.open` with its app-level token, a loopback WebSocket server plays Slack
//! (`hello`, then a `slash_commands` envelope), the bot acks the envelope with the same answer
//! the HTTP endpoint gives, and the summary is posted to the fake Web API.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::support::slack::*;
use crate::support::{Options, TestApp};

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_mode_command_is_acked_and_its_summary_posted() {
    // The WebSocket side of Slack: hello, one slash command, then the ack comes back.
    let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_url = format!("ws://{}/link/?ticket=test-ticket", ws.local_addr().unwrap());
    let (reply_to, response_url) = tokio::sync::oneshot::channel::<String>();
    let slack = tokio::spawn(async move {
        let (tcp, _) = ws.accept().await.unwrap();
        let response_url = response_url.await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(tcp).await.unwrap();
        socket
            .send(WsMessage::Text(
                json!({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0TEST"},
                       "debug_info": {"host": "applink-test", "approximate_connection_time": 18060}})
                    .to_string(),
            ))
            .await
            .unwrap();
        socket
            .send(WsMessage::Text(
                json!({
                    "envelope_id": "env-1",
                    "type": "slash_commands",
                    "accepts_response_payload": true,
                    "payload": {
                        "token": "deprecated", "team_id": "T0TEST", "team_domain": "test",
                        "channel_id": CHANNEL, "channel_name": "incidents",
                        "user_id": "U0ALICE", "user_name": "alice",
                        "command": "/vault-triage", "text": "",
                        "api_app_id": "A0TEST", "response_url": response_url, "trigger_id": "1.2.3"
                    }
                })
                .to_string(),
            ))
            .await
            .unwrap();
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Text(t))) => {
                    let ack: Value = serde_json::from_str(&t).unwrap();
                    // Keep the connection open while the bot works.
                    return (ack, socket);
                }
                Some(Ok(_)) => continue,
                other => panic!("the bot closed the socket without an ack: {other:?}"),
            }
        }
    });

    // Socket Mode only: no signing secret, so no HTTP endpoints.
    let app = TestApp::with(Options {
        slack: false,
        discord: false,
        slack_socket: Some(ws_url),
        ..Options::default()
    })
    .await;
    let fake = &app.slack;
    reply_to.send(fake.response_url("socket")).unwrap();
    let r = app
        .slack_bot
        .command("U0ALICE", "", &fake.response_url("http"))
        .await;
    assert_eq!(
        r.status(),
        404,
        "no HTTP endpoints without a signing secret"
    );

    let (ack, _socket) = tokio::time::timeout(WAIT, slack)
        .await
        .expect("an ack in time")
        .unwrap();
    assert_eq!(
        ack,
        json!({"envelope_id": "env-1", "payload": {"response_type": "in_channel", "text": "🔎 Triaging…"}})
    );

    let open = fake
        .calls()
        .into_iter()
        .find(|c| c.method == "apps.connections.open")
        .expect("the connection was opened through the Web API");
    assert_eq!(
        open.auth.as_deref(),
        Some(&*format!("Bearer {APP_TOKEN}")),
        "apps.connections.open uses the app-level token"
    );

    let summary = fake
        .wait_for("the summary", WAIT, |c| {
            post_where(c, |b| {
                b["channel"] == CHANNEL
                    && b["text"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("reviewer token expired")
            })
        })
        .await;
    assert_eq!(
        summary.auth.as_deref(),
        Some(&*format!("Bearer {BOT_TOKEN}"))
    );
    let labels: Vec<String> = buttons(&summary.body).into_iter().map(|b| b.0).collect();
    assert!(
        labels.contains(&"Rotate reviewer token".to_string()),
        "{labels:?}"
    );
    assert_eq!(
        app.said().await.slack_methods(),
        ["apps.connections.open", "chat.postMessage"]
    );
    app.finish().await;
}
