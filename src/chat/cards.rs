//! Where each approval card lives, per request and platform, recorded: every click, the
//! expiry sweep and a restart update the same card and tell the same thread.

use chrono::Utc;
use dashmap::DashMap;

use super::message::MessageRef;
use crate::approval::RequestId;
use crate::config::Platform;
use crate::store::{Event, JournalEntry, Record, Store};

/// The approval cards the bot posted.
#[derive(Debug, Default)]
pub struct Cards {
    cards: DashMap<(RequestId, Platform), MessageRef>,
}

impl Cards {
    /// The cards recorded for the live requests (the last one per request and platform wins).
    pub fn restore(entries: &[JournalEntry]) -> Self {
        let cards = DashMap::new();
        for e in entries {
            if let Event::ApprovalCardPosted {
                id,
                platform,
                channel,
                message,
                thread,
            } = &e.event
            {
                cards.insert(
                    (id.clone(), *platform),
                    MessageRef {
                        channel: channel.clone(),
                        id: message.clone(),
                        thread: thread.clone(),
                    },
                );
            }
        }
        Self { cards }
    }

    /// Records a card (in the store first, so a restart still finds it).
    pub async fn record(
        &self,
        store: &Store,
        id: &RequestId,
        platform: Platform,
        card: MessageRef,
    ) {
        let event = Event::ApprovalCardPosted {
            id: id.clone(),
            platform,
            channel: card.channel.clone(),
            message: card.id.clone(),
            thread: card.thread.clone(),
        };
        if let Err(e) = store.record(Record::event(Utc::now(), event)).await {
            tracing::warn!(request = %id, error = %e, "the approval card's place could not be recorded; it is kept until a restart");
        }
        self.cards.insert((id.clone(), platform), card);
    }

    /// The card of `id` on `platform`.
    pub fn get(&self, id: &RequestId, platform: Platform) -> Option<MessageRef> {
        self.cards.get(&(id.clone(), platform)).map(|c| c.clone())
    }

    /// Forgets the cards of requests that left memory.
    pub fn forget(&self, ids: &[RequestId]) {
        for id in ids {
            for p in Platform::ALL {
                self.cards.remove(&(id.clone(), p));
            }
        }
    }

    /// Every card of `id`, on every platform.
    pub fn all(&self, id: &RequestId) -> Vec<(Platform, MessageRef)> {
        Platform::ALL
            .into_iter()
            .filter_map(|p| self.get(id, p).map(|c| (p, c)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_recorded_card_per_request_and_platform_wins() {
        let id = RequestId::generate();
        let card = |n: &str| MessageRef {
            channel: "C1".into(),
            id: n.into(),
            thread: Some("1.1".into()),
        };
        let posted = |platform, n: &str| JournalEntry {
            seq: 1,
            at: Utc::now(),
            incident: None,
            actor: None,
            event: Event::ApprovalCardPosted {
                id: id.clone(),
                platform,
                channel: "C1".into(),
                message: n.into(),
                thread: Some("1.1".into()),
            },
        };
        let restored = Cards::restore(&[
            posted(Platform::Slack, "1.0"),
            posted(Platform::Slack, "1.2"),
            posted(Platform::Discord, "99"),
        ]);
        assert_eq!(restored.get(&id, Platform::Slack), Some(card("1.2")));
        assert_eq!(restored.all(&id).len(), 2);
        assert_eq!(restored.get(&RequestId::generate(), Platform::Slack), None);
        restored.forget(std::slice::from_ref(&id));
        assert!(restored.all(&id).is_empty());
    }
}
