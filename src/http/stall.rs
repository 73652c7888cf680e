//! Progress-based timeouts: a request has failed when nothing has moved for the stall timeout
//! (no byte of its body taken, no byte of the answer come), however long it takes as a whole. A
//! 1 GiB layer on a slow link takes as long as it takes; a registry that stops reading, or never
//! answers, is given up on after the stall timeout, and the request is tried again.
//!
//! Once a streamed body has all been handed to the network, what sits in socket buffers still
//! goes at the link's pace, unseen: the registry then has [`AFTER_BODY`] more to answer.
//!
//! (reqwest's own `read_timeout` will not do: until the answer's head arrives it is one deadline
//! from the start of the request, so a body that takes longer to send than the timeout fails.)

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

// tokio's clock: the same as the system's, and the one paused tests move.
use tokio::time::Instant;

/// How much longer than the stall timeout a registry may stay silent once a streamed body has
/// all been handed to the network: what is still in socket buffers (megabytes) goes at the
/// link's pace, unseen, and the registry then finishes storing it.
pub const AFTER_BODY: Duration = Duration::from_secs(60);

/// When a request last made progress.
#[derive(Clone, Debug)]
pub struct Watch {
    origin: Instant,
    /// Milliseconds from `origin` to the last progress.
    last: Arc<AtomicU64>,
    /// Whether the request's streamed body has all been taken.
    body_done: Arc<std::sync::atomic::AtomicBool>,
}

impl Default for Watch {
    fn default() -> Self {
        Watch::new()
    }
}

impl Watch {
    /// A watch whose last progress is now.
    pub fn new() -> Self {
        Watch {
            origin: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
            body_done: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// The streamed body has all been taken: from now on the registry also has
    /// [`AFTER_BODY`] to answer.
    pub fn body_done(&self) {
        self.tick();
        self.body_done.store(true, Ordering::Relaxed);
    }

    /// How long the request may go without progress now.
    fn allowance(&self, stall: Duration) -> Duration {
        if self.body_done.load(Ordering::Relaxed) {
            stall + AFTER_BODY
        } else {
            stall
        }
    }

    /// Something moved.
    pub fn tick(&self) {
        let now = self.origin.elapsed().as_millis() as u64;
        self.last.fetch_max(now, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.origin + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }
}

/// Runs `request` until it completes, or until nothing has moved for `stall` (`None`).
pub async fn watched<T>(
    request: impl Future<Output = T>,
    watch: &Watch,
    stall: Duration,
) -> Option<T> {
    tokio::pin!(request);
    loop {
        let deadline = watch.last() + watch.allowance(stall);
        tokio::select! {
            out = &mut request => return Some(out),
            () = tokio::time::sleep_until(deadline) => {
                if watch.last() + watch.allowance(stall) <= Instant::now() {
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_request_that_keeps_moving_is_never_timed_out() {
        let watch = Watch::new();
        let ticker = watch.clone();
        // Five seconds of work, progress every 500 ms, a one-second stall timeout.
        let work = async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                ticker.tick();
            }
            "done"
        };
        assert_eq!(
            watched(work, &watch, Duration::from_secs(1)).await,
            Some("done")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn once_the_body_is_sent_the_answer_gets_longer() {
        let watch = Watch::new();
        watch.body_done();
        let started = tokio::time::Instant::now();
        let silent = std::future::pending::<()>();
        assert_eq!(watched(silent, &watch, Duration::from_secs(2)).await, None);
        assert_eq!(started.elapsed(), Duration::from_secs(2) + AFTER_BODY);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_stops_moving_is_timed_out_after_the_stall() {
        let watch = Watch::new();
        let started = tokio::time::Instant::now();
        let silent = std::future::pending::<()>();
        assert_eq!(watched(silent, &watch, Duration::from_secs(2)).await, None);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
