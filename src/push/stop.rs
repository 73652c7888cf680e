//! Stopping uploads so that their sessions can still be cancelled. A streamed `PATCH` cut off
//! in the middle leaves the registry holding its bytes under a session state nixpush does not
//! know (docker-registry then refuses the `DELETE`: "upload resumed at wrong offset"). So a push
//! that fails, or is interrupted, does not drop the uploads in flight: it ends their streams
//! early, each `PATCH` completes with what it sent, the registry answers with the session's
//! latest state, and the session is `DELETE`d with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use tokio::sync::Notify;

/// A stop signal, shared by everything it stops.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    stopped: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// Stops: streams end at their next chunk, nothing new starts.
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn is_stopped(&self) -> bool {
        self.0.stopped.load(Ordering::SeqCst)
    }

    /// Completes once stopped.
    pub async fn stopped(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}

/// The process-wide stop: Ctrl-C.
static INTERRUPT: LazyLock<Stop> = LazyLock::new(Stop::default);

/// Stops every push of this process (the binary calls it on Ctrl-C, then lets the pushes wind
/// down for a moment before it exits).
pub fn interrupt() {
    INTERRUPT.stop();
}

/// Whether [`interrupt`] was called.
pub fn is_interrupted() -> bool {
    INTERRUPT.is_stopped()
}

/// Completes once `local` is stopped or the process is interrupted.
pub async fn stopped(local: &Stop) {
    tokio::select! {
        () = local.stopped() => {}
        () = INTERRUPT.stopped() => {}
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
        stop.stop();
        waiter.await.unwrap();
        // A waiter arriving later returns at once.
        stop.stopped().await;
        assert!(stop.is_stopped());
    }
}
