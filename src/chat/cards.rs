//! Where each approval card lives, per request and platform, journaled: every click, the
//! expiry sweep and a restart update the same card and tell the same thread.

use chrono::Utc;
use dashmap::DashMap;

use super::message::MessageRef;
use crate::approval::RequestId;
use crate::config::Platform;
use crate::incident::journal::{Event, Journal, JournalEntry};

/// The approval cards the bot posted.
#[derive(Debug, Default)]
pub struct Cards {
    cards: DashMap<(RequestId, Platform), MessageRef>,
}

impl Cards {
    /// The cards the journal recorded (the last one per request and platform wins).
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

    /// Records a card (journaled first, so a restart still finds it).
    pub fn record(&self, journal: &Journal, id: &RequestId, platform: Platform, card: MessageRef) {
        let event = Event::ApprovalCardPosted {
            id: id.clone(),
            platform,
            channel: card.channel.clone(),
            message: card.id.clone(),
            thread: card.thread.clone(),
        };
        if let Err(e) = journal.append_at(Utc::now(), event, None, None) {
            tracing::warn!(request = %id, error = %e, "the approval card's place could not be journaled; it is kept until a restart");
        }
        self.cards.insert((id.clone(), platform), card);
    }

    /// The card of `id` on `platform`.
    pub fn get(&self, id: &RequestId, platform: Platform) -> Option<MessageRef> {
        self.cards.get(&(id.clone(), platform)).map(|c| c.clone())
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
    fn a_restart_finds_every_card_the_journal_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).unwrap();
        let cards = Cards::default();
        let id = RequestId::generate();
        let card = |n: &str| MessageRef {
            channel: "C1".into(),
            id: n.into(),
            thread: Some("1.1".into()),
        };
        cards.record(&journal, &id, Platform::Slack, card("1.2"));
        cards.record(&journal, &id, Platform::Discord, card("99"));
        drop(journal);
        let (_, replay) = Journal::open(dir.path()).unwrap();
        let restored = Cards::restore(&replay.entries);
        assert_eq!(restored.get(&id, Platform::Slack), Some(card("1.2")));
        assert_eq!(restored.all(&id).len(), 2);
        assert_eq!(restored.get(&RequestId::generate(), Platform::Slack), None);
    }
}
