//! The retry policy (for how long, how long to wait between tries) and the one loop that applies
//! it to single requests: the ping, every buffered request (`Client::send`: each step of an
//! upload too) and token fetches go through [`with_retries`]. Only a layer's streamed body cannot
//! be sent again: when that request fails, the pusher opens the layer stream again, within the
//! same time budget. A request that has used its budget fails as [`RegistryError::GaveUp`], which
//! nothing retries again, so retries never nest.
//!
//! The budget is time, not a count of tries: a registry restarting, or a network dropping one
//! request in three, is ridden out however many requests the push makes.
//!
//! [`RegistryError::GaveUp`]: super::RegistryError::GaveUp

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How long one request (or one layer's stream) is tried again after it first failed, unless
/// `--retry-for` says otherwise: enough to ride out a registry restart or a flaky network on a
/// CI runner; with the stall timeout, a registry that never answers fails a push in about two
/// minutes.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(90);
/// How long a request may go without a byte of the answer arriving before it counts as failed
/// (and is tried again), unless `--stall-timeout` says otherwise.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The budget of the first request to a registry (the ping): a registry that is not there at
/// all (a wrong port, a stopped service) is said in seconds, not after the whole budget.
pub const FIRST_CONTACT_RETRY_FOR: Duration = Duration::from_secs(10);

/// How long a push keeps trying, and how long it waits on a silent registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long a failing request is tried again, from its first try.
    pub retry_for: Duration,
    /// How long a request may go without progress before it counts as failed.
    pub stall_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retry_for: DEFAULT_RETRY_FOR,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }
}
/// Wait before the first retry; doubled for each next one.
const BASE_BACKOFF: Duration = Duration::from_millis(300);
/// No wait is longer than this, even when a registry's `Retry-After` asks for more.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long to wait before attempt `attempt + 1` (attempt counts from 1), with up to 25% jitter
/// so that parallel uploads do not retry in lockstep; `Retry-After` seconds win when given.
pub fn backoff(attempt: u32, headers: Option<&HeaderMap>) -> Duration {
    if let Some(wait) = headers.and_then(retry_after) {
        return wait;
    }
    let exp = BASE_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(10));
    let jitter_source = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = exp.mul_f64((jitter_source % 1000) as f64 / 4000.0);
    (exp + jitter).min(MAX_BACKOFF)
}

/// A `Retry-After` in seconds (the form registries use), capped at `MAX_BACKOFF`.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_BACKOFF))
}

/// What one attempt of a request came to.
pub(crate) enum Attempt<T, E> {
    /// A final answer, good or bad: returned as it is.
    Done(Result<T, E>),
    /// An answer that may be different later: tried again after `wait` while the budget lasts
    /// (`reason`, when given, is told to the user), else `last` is the answer.
    Again {
        last: Result<T, E>,
        wait: Duration,
        reason: Option<String>,
    },
}

/// Runs `attempt` (given the attempt's number, from 1) until it gives a final answer, or until
/// waiting for one more would take it past `retry_for` since the first try.
pub(crate) async fn with_retries<T, E>(
    retry_for: Duration,
    on_retry: impl Fn(&str),
    mut attempt: impl AsyncFnMut(u32) -> Attempt<T, E>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let mut n = 1;
    loop {
        match attempt(n).await {
            Attempt::Done(answer) => return answer,
            Attempt::Again { last, wait, .. } if started.elapsed() + wait >= retry_for => {
                return last
            }
            Attempt::Again { wait, reason, .. } => {
                if let Some(reason) = reason {
                    on_retry(&reason);
                }
                tokio::time::sleep(wait).await;
            }
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let a = backoff(1, None);
        let b = backoff(2, None);
        assert!(a >= BASE_BACKOFF && a <= BASE_BACKOFF.mul_f64(1.25));
        assert!(b >= BASE_BACKOFF * 2);
        assert!(backoff(30, None) <= MAX_BACKOFF);
    }

    #[test]
    fn retry_after_seconds_are_honoured_and_capped() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(backoff(1, Some(&h)), Duration::from_secs(2));
        h.insert(RETRY_AFTER, "9999".parse().unwrap());
        assert_eq!(backoff(1, Some(&h)), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn a_temporary_answer_is_retried_until_the_attempts_run_out() {
        let told = std::sync::Mutex::new(Vec::new());
        let mut calls = 0;
        let answer: Result<u32, &str> = with_retries(
            Duration::from_millis(300),
            |r| told.lock().unwrap().push(r.to_owned()),
            async |n| {
                calls += 1;
                Attempt::Again {
                    last: Err("503"),
                    wait: Duration::from_millis(100),
                    reason: Some(format!("try {n}")),
                }
            },
        )
        .await;
        assert_eq!(answer, Err("503"));
        // Tries at 0, 100 and 200 ms; a fourth would start at 300 ms, past the budget.
        assert_eq!(calls, 3);
        assert_eq!(*told.lock().unwrap(), ["try 1", "try 2"]);
    }

    #[tokio::test]
    async fn no_budget_is_one_try() {
        let mut calls = 0;
        let answer: Result<u32, &str> = with_retries(
            Duration::ZERO,
            |_| {},
            async |_| {
                calls += 1;
                Attempt::Again {
                    last: Err("dropped"),
                    wait: Duration::ZERO,
                    reason: None,
                }
            },
        )
        .await;
        assert_eq!((answer, calls), (Err("dropped"), 1));
    }

    #[tokio::test]
    async fn a_final_answer_ends_the_loop_at_once() {
        let answer: Result<u32, &str> = with_retries(
            Duration::from_secs(60),
            |_| {},
            async |n| {
                if n < 2 {
                    Attempt::Again {
                        last: Err("dropped"),
                        wait: Duration::ZERO,
                        reason: None,
                    }
                } else {
                    Attempt::Done(Ok(n))
                }
            },
        )
        .await;
        assert_eq!(answer, Ok(2));
    }
}
