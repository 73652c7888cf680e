//! The retry policy (how often, how long to wait) and the one loop that applies it to single
//! requests: the ping, every buffered request (`Client::send`) and token fetches go through
//! [`with_retries`]. The upload of a layer is retried as a whole by the pusher, by reopening the
//! layer stream, with the same policy (a `Retry-After` the failed step got included); its steps
//! are sent once each, so retries never nest.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Attempts per request, the first included: enough to ride out a registry restart or a dropped
/// connection on a CI runner, few enough that a dead registry is reported within seconds.
pub const MAX_ATTEMPTS: u32 = 4;
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
    /// An answer that may be different later: tried again after `wait` while attempts remain
    /// (`reason`, when given, is told to the user), else `last` is the answer.
    Again {
        last: Result<T, E>,
        wait: Duration,
        reason: Option<String>,
    },
}

/// Runs `attempt` (given the attempt's number, from 1) until it gives a final answer or
/// `max_attempts` have been made.
pub(crate) async fn with_retries<T, E>(
    max_attempts: u32,
    on_retry: impl Fn(&str),
    mut attempt: impl AsyncFnMut(u32) -> Attempt<T, E>,
) -> Result<T, E> {
    let mut n = 1;
    loop {
        match attempt(n).await {
            Attempt::Done(answer) => return answer,
            Attempt::Again { last, .. } if n >= max_attempts => return last,
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
            3,
            |r| told.lock().unwrap().push(r.to_owned()),
            async |n| {
                calls += 1;
                Attempt::Again {
                    last: Err("503"),
                    wait: Duration::ZERO,
                    reason: Some(format!("try {n}")),
                }
            },
        )
        .await;
        assert_eq!(answer, Err("503"));
        assert_eq!(calls, 3);
        assert_eq!(*told.lock().unwrap(), ["try 1", "try 2"]);
    }

    #[tokio::test]
    async fn a_final_answer_ends_the_loop_at_once() {
        let answer: Result<u32, &str> = with_retries(
            4,
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
