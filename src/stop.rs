//! One stop signal for everything a run does, passed down rather than kept in a static. The
//! binary makes the root and stops it on Ctrl-C; each push, and each image write, works under a
//! child of it, stopped when one of its layers fails for good (the others end at their next
//! chunk instead of finishing for nothing) or when the work is abandoned (the future dropped).
//! A stopped child never stops its parent: one failed push of an `--images` run leaves the next
//! free to start.
//!
//! Stopping ends streams rather than dropping them: a streamed `PATCH` cut off in the middle
//! leaves the registry holding its bytes under a session state nixpush does not know
//! (docker-registry then refuses the `DELETE`: "upload resumed at wrong offset"). So uploads in
//! flight end their streams early, each `PATCH` completes with what it sent, and the session is
//! `DELETE`d with the state the registry answered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A stop signal, shared by everything it stops; see the module's header.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    stopped: AtomicBool,
    notify: Notify,
    parent: Option<Stop>,
}

impl Stop {
    /// A signal stopped when this one is, and also on its own without stopping this one.
    pub fn child(&self) -> Stop {
        Stop(Arc::new(Inner {
            parent: Some(self.clone()),
            ..Inner::default()
        }))
    }

    /// Stops: streams end at their next chunk, nothing new starts. True if this call was the
    /// first to stop this signal (the caller's failure is the cause, not a consequence).
    pub fn stop(&self) -> bool {
        let first = !self.0.stopped.swap(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
        first
    }

    /// Whether this signal, or one it descends from, was stopped.
    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
            || self.0.parent.as_ref().is_some_and(Stop::is_stopped)
    }

    /// Completes once stopped (here or above).
    pub async fn stopped(&self) {
        match &self.0.parent {
            Some(parent) => {
                tokio::select! {
                    () = self.own_stop() => {}
                    () = Box::pin(parent.stopped()) => {}
                }
            }
            None => self.own_stop().await,
        }
    }

    async fn own_stop(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.0.stopped.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    /// A guard that stops this signal when dropped: held by the async side for as long as it
    /// waits, so abandoned work stops its blocking threads.
    pub fn on_drop(&self) -> StopOnDrop {
        StopOnDrop(self.clone())
    }
}

/// See [`Stop::on_drop`].
#[derive(Debug)]
pub struct StopOnDrop(Stop);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_wakes_every_waiter_and_stays_stopped() {
        let stop = Stop::default();
        let waiter = {
            let stop = stop.clone();
            tokio::spawn(async move { stop.stopped().await })
        };
        tokio::task::yield_now().await;
        assert!(!stop.is_stopped());
        assert!(stop.stop(), "the first stop is the cause");
        assert!(!stop.stop(), "a second one is not");
        waiter.await.unwrap();
        // A waiter arriving later returns at once.
        stop.stopped().await;
        assert!(stop.is_stopped());
    }

    #[tokio::test]
    async fn a_child_stops_with_its_parent_but_never_stops_it() {
        let root = Stop::default();
        let first = root.child();
        let second = root.child();
        first.stop();
        assert!(first.is_stopped());
        assert!(!root.is_stopped() && !second.is_stopped());

        let grandchild = second.child();
        let waiter = {
            let g = grandchild.clone();
            tokio::spawn(async move { g.stopped().await })
        };
        tokio::task::yield_now().await;
        root.stop();
        waiter.await.unwrap();
        assert!(second.is_stopped() && grandchild.is_stopped());
    }

    #[test]
    fn dropping_the_guard_stops() {
        let stop = Stop::default();
        drop(stop.on_drop());
        assert!(stop.is_stopped());
    }
}
