//! The gateway transport: serenity's client with no intents (interactions need none); each
//! interaction is answered with the REST callback, then its work starts.

use std::sync::Arc;

use serenity::all::{Context, EventHandler, GatewayIntents, Interaction, ShardManager};
use serenity::client::ClientBuilder;
use serenity::http::Http;

use super::edge::Edge;
use super::rest::chat_error;

struct Handler {
    edge: Arc<Edge>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        let (id, token) = (interaction.id(), interaction.token().to_string());
        let (ack, work) = self.edge.accept(interaction);
        let Some(answer) = ack.json() else { return };
        // The callback goes through the REST voice's client: one rate limiter for every call.
        let http = self.edge.chat.http();
        match http
            .create_interaction_response(id, &token, &answer, vec![])
            .await
        {
            Ok(()) => {
                if let Some(work) = work {
                    self.edge.bot.services().work.spawn(work);
                }
            }
            Err(e) => {
                let _ = chat_error("interaction callback", e);
            }
        }
    }
}

/// A running gateway connection.
pub struct Gateway {
    pub shards: Arc<ShardManager>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Connects with `http` (its token, and its REST base for the gateway URL) and serves
/// interactions through `edge`.
pub async fn start(http: Http, edge: Arc<Edge>) -> anyhow::Result<Gateway> {
    let mut client = ClientBuilder::new_with_http(http, GatewayIntents::empty())
        .event_handler(Handler { edge })
        .await?;
    let shards = client.shard_manager.clone();
    let task = tokio::spawn(async move {
        if let Err(e) = client.start().await {
            tracing::error!(error = %e, "the Discord gateway stopped");
        }
    });
    Ok(Gateway { shards, task })
}
