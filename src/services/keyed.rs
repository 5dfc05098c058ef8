//! One async lock per key (an incident, say), held across awaits, and gone from memory as soon
//! as nobody holds or waits for it: ten thousand quiet incidents keep no locks.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Locks by key.
#[derive(Debug, Default)]
pub struct KeyedLocks(DashMap<String, Arc<Mutex<()>>>);

/// Held while one task works on a key; released (and forgotten when unused) on drop.
pub struct KeyedGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    guard: Option<OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    /// Waits until no other task holds `key`'s lock, then holds it.
    pub async fn lock(&self, key: &str) -> KeyedGuard<'_> {
        // The lock is cloned out of the map: no map guard is held across the wait.
        let lock = self.0.entry(key.to_string()).or_default().clone();
        let guard = lock.lock_owned().await;
        KeyedGuard {
            locks: self,
            key: key.to_string(),
            guard: Some(guard),
        }
    }

    /// Keys with a lock in memory now.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for KeyedGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        // Only the map's own reference left: nobody holds or waits for it.
        self.locks
            .0
            .remove_if(&self.key, |_, lock| Arc::strong_count(lock) == 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_holder_per_key_and_nothing_left_behind() {
        let locks = Arc::new(KeyedLocks::default());
        let first = locks.lock("INC-1").await;
        let waiter = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _held = locks.lock("INC-1").await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "the second holder waits");
        let other = locks.lock("INC-2").await;
        drop(other);
        assert_eq!(locks.len(), 1, "INC-2 is forgotten; INC-1 is waited for");
        drop(first);
        waiter.await.unwrap();
        assert!(locks.is_empty());
    }
}
