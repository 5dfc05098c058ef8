//! The bot's own changes to the world, counted: a shared triage made before a fix started or
//! finished is not handed out after it, so `/vault-triage` right after a fix shows the fixed
//! world rather than the broken one it reused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A counter of changes the bot made, shared by the fixes (which count) and the triage
/// service (which compares).
#[derive(Debug, Clone, Default)]
pub struct Changes(Arc<AtomicU64>);

impl Changes {
    /// Records that the world may have changed (a fix starts, or ends).
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// The count so far: a triage started at one value is stale once it moves.
    pub fn current(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_count_together() {
        let a = Changes::default();
        let b = a.clone();
        let before = b.current();
        a.bump();
        assert_eq!(b.current(), before + 1);
    }
}
