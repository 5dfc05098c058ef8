//! Work in flight: every task the edges and the alert intake start behind their answer is
//! counted, so shutdown (and a test) can wait until the bot has nothing left to do, and a
//! replica that loses leadership can stop it all at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Counts running tasks and tells when none is left.
#[derive(Debug, Clone, Default)]
pub struct InFlight {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
    next: AtomicU64,
    /// How to abort each running task.
    tasks: Mutex<HashMap<u64, tokio::task::AbortHandle>>,
}

/// Decrements the count when the task ends, however it ends (also when aborted).
struct Guard(Arc<Inner>, u64);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(mut tasks) = self.0.tasks.lock() {
            tasks.remove(&self.1);
        }
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    /// Runs `work` on a task of its own, counted until it ends.
    pub fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let guard = Guard(self.inner.clone(), id);
        // The handle is registered before the task can end (the lock is held across the
        // spawn), so its guard always finds it to remove.
        let mut tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let handle = tokio::spawn(async move {
            let _guard = guard;
            work.await
        });
        tasks.insert(id, handle.abort_handle());
        handle
    }

    /// Aborts every running task (a replica that lost leadership stops its work at once).
    pub fn abort_all(&self) {
        let tasks: Vec<_> = self
            .inner
            .tasks
            .lock()
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default();
        for t in tasks {
            t.abort();
        }
    }

    /// How many tasks run now.
    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Resolves once no task runs. A task counted before the last one ends keeps it waiting,
    /// so work that starts more work is waited for too.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn idle_waits_for_work_and_the_work_it_starts() {
        let work = InFlight::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let inner = work.clone();
        work.spawn(async move {
            let _ = rx.await;
            inner.spawn(tokio::time::sleep(Duration::from_millis(20)));
        });
        assert_eq!(work.running(), 1);
        let idle = tokio::spawn({
            let work = work.clone();
            async move { work.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!idle.is_finished());
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), idle)
            .await
            .expect("idle once both tasks ended")
            .unwrap();
        assert_eq!(work.running(), 0);
    }

    #[tokio::test]
    async fn an_aborted_task_no_longer_counts() {
        let work = InFlight::default();
        let h = work.spawn(std::future::pending::<()>());
        h.abort();
        tokio::time::timeout(Duration::from_secs(5), work.idle())
            .await
            .expect("an aborted task is not waited for");
    }
}
