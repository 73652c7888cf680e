//! The retry policy (for how long, how long to wait between tries) and the one loop that applies
//! it: [`with_retries`]. Every request that can be tried again goes through it (a registry's ping,
//! buffered requests and token fetches, a binary cache's files, a resumed NAR download).
//!
//! The budget is time, not a count of tries: a registry restarting, or a network dropping one
//! request in three, is ridden out however many requests a push makes. A [`Budget`] is a
//! deadline, so loops that nest (a protocol step retried around requests that retry on their
//! own) share one: a request never takes longer than `--retry-for` and the stall timeout of its
//! last try, however deep the nesting. A stream that has run a while before it broke (a NAR
//! download) counts its budget from its first failure instead.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
// tokio's clock: the same as the system's, and the one paused tests move.
use tokio::time::Instant;

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
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_BACKOFF))
}

/// How long a loop of attempts may go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    /// Until this instant. Loops given the same budget share the deadline, so nesting them
    /// never adds their budgets up.
    Until(Instant),
    /// For this long from the first failed attempt: a download that streamed for minutes before
    /// the network dropped still gets its whole budget.
    AfterFirstFailure(Duration),
}

impl Budget {
    /// `retry_for` from now.
    pub fn starting_now(retry_for: Duration) -> Budget {
        Budget::Until(Instant::now() + retry_for)
    }

    /// This budget, ending no later than `retry_for` from now (a first contact's short one).
    pub fn at_most(self, retry_for: Duration) -> Budget {
        let cap = Instant::now() + retry_for;
        match self {
            Budget::Until(deadline) => Budget::Until(deadline.min(cap)),
            Budget::AfterFirstFailure(d) => Budget::AfterFirstFailure(d.min(retry_for)),
        }
    }
}

impl From<Duration> for Budget {
    fn from(retry_for: Duration) -> Budget {
        Budget::starting_now(retry_for)
    }
}

/// What one attempt of a request came to.
pub enum Attempt<T, E> {
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
/// waiting for one more would take it past the budget.
pub async fn with_retries<T, E>(
    budget: impl Into<Budget>,
    on_retry: impl Fn(&str),
    mut attempt: impl AsyncFnMut(u32) -> Attempt<T, E>,
) -> Result<T, E> {
    let mut retries = Retries::new(budget);
    loop {
        match attempt(retries.attempt()).await {
            Attempt::Done(answer) => return answer,
            Attempt::Again { last, wait, reason } => {
                if !retries.fits(wait) {
                    return last;
                }
                if let Some(reason) = reason {
                    on_retry(&reason);
                }
                retries.wait(wait).await;
            }
        }
    }
}

/// The state of [`with_retries`]'s loop, for a loop written out where a closure will not do (a
/// spawned task, whose future must be `Send`): the same budget, decided the same way.
#[derive(Debug)]
pub struct Retries {
    budget: Budget,
    deadline: Option<Instant>,
    attempt: u32,
}

impl Retries {
    pub fn new(budget: impl Into<Budget>) -> Retries {
        let budget = budget.into();
        Retries {
            budget,
            deadline: match budget {
                Budget::Until(deadline) => Some(deadline),
                Budget::AfterFirstFailure(_) => None,
            },
            attempt: 1,
        }
    }

    /// The number of the attempt to make now, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// After a failed attempt: whether one more after `wait` fits in the budget.
    pub fn fits(&mut self, wait: Duration) -> bool {
        let budget = self.budget;
        let deadline = *self.deadline.get_or_insert_with(|| match budget {
            Budget::Until(deadline) => deadline,
            Budget::AfterFirstFailure(d) => Instant::now() + d,
        });
        Instant::now() + wait < deadline
    }

    /// Waits before the next attempt.
    pub async fn wait(&mut self, wait: Duration) {
        tokio::time::sleep(wait).await;
        self.attempt += 1;
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

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn nested_loops_share_one_deadline() {
        let budget = Budget::starting_now(Duration::from_secs(10));
        let started = Instant::now();
        let mut outer_tries = 0;
        let answer: Result<(), &str> = with_retries(
            budget,
            |_| {},
            async |_| {
                outer_tries += 1;
                // An inner loop that never succeeds, each try taking a second.
                let inner: Result<(), &str> = with_retries(
                    budget,
                    |_| {},
                    async |_| {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Attempt::Again {
                            last: Err("inner"),
                            wait: Duration::from_millis(500),
                            reason: None,
                        }
                    },
                )
                .await;
                Attempt::Again {
                    last: inner,
                    wait: Duration::from_millis(500),
                    reason: None,
                }
            },
        )
        .await;
        assert_eq!(answer, Err("inner"));
        // The inner loop spends the whole budget; the outer one has none left to try again.
        assert_eq!(outer_tries, 1);
        assert!(
            started.elapsed() <= Duration::from_secs(11),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_after_the_first_failure_starts_when_it_fails() {
        let started = Instant::now();
        let mut tries = 0;
        let answer: Result<(), &str> = with_retries(
            Budget::AfterFirstFailure(Duration::from_secs(2)),
            |_| {},
            async |n| {
                tries += 1;
                if n == 1 {
                    // A long stream, then a drop.
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
                Attempt::Again {
                    last: Err("dropped"),
                    wait: Duration::from_millis(500),
                    reason: None,
                }
            },
        )
        .await;
        assert_eq!(answer, Err("dropped"));
        // Failed at 60 s, tried again at 60.5, 61 and 61.5 s; a try at 62 s is past the budget.
        assert_eq!(tries, 4);
        assert_eq!(started.elapsed(), Duration::from_millis(61_500));
    }
}
