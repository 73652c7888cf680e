//! A layer's upload started again: on a temporary failure, within `--retry-for` counted from the
//! first failure (however long the attempt streamed before it), never after a stop, and never
//! around a final answer.

use std::cell::Cell;
use std::time::Duration;

use crate::push::upload::retrying;
use crate::push::PushError;
use crate::registry::RegistryError;
use crate::stop::Stop;

fn unavailable() -> PushError {
    PushError::Registry(RegistryError::Status {
        method: "PATCH".into(),
        url: "https://r.example/v2/app/blobs/uploads/1".into(),
        status: reqwest::StatusCode::SERVICE_UNAVAILABLE,
        detail: String::new(),
        retry_after: Some(Duration::from_secs(1)),
    })
}

fn refused() -> PushError {
    PushError::Registry(RegistryError::Status {
        method: "PATCH".into(),
        url: "https://r.example/v2/app/blobs/uploads/1".into(),
        status: reqwest::StatusCode::FORBIDDEN,
        detail: String::new(),
        retry_after: None,
    })
}

/// Runs `retrying` over attempts that fail `failures` times (the first after streaming for
/// `streamed`, the others at once), then succeed; (the result, attempts made, retries told).
async fn run(
    retry_for: Duration,
    stop: &Stop,
    failures: usize,
    streamed: Duration,
    error: fn() -> PushError,
) -> (Result<u32, PushError>, usize, usize) {
    let (made, told) = (Cell::new(0), Cell::new(0));
    let result = retrying(
        retry_for,
        stop,
        || {
            made.set(made.get() + 1);
            let n = made.get();
            async move {
                if n == 1 {
                    tokio::time::sleep(streamed).await;
                }
                if n <= failures {
                    Err(error())
                } else {
                    Ok(n as u32)
                }
            }
        },
        |_| told.set(told.get() + 1),
    )
    .await;
    (result, made.get(), told.get())
}

#[tokio::test(start_paused = true)]
async fn a_temporary_failure_is_retried_within_the_budget_from_the_first_failure() {
    let stop = Stop::default();
    // The first attempt streams for a minute before it fails; with a 10 s budget and 1 s waits,
    // that minute does not count: the budget starts at the first failure.
    let (result, made, told) = run(
        Duration::from_secs(10),
        &stop,
        3,
        Duration::from_secs(60),
        unavailable,
    )
    .await;
    assert_eq!(result.unwrap(), 4);
    assert_eq!((made, told), (4, 3));
}

#[tokio::test(start_paused = true)]
async fn the_budget_ends_the_retries_with_the_last_failure() {
    let stop = Stop::default();
    // Waits of 1 s (Retry-After) in a 3.5 s budget: three retries, then the last failure.
    let (result, made, _) = run(
        Duration::from_millis(3500),
        &stop,
        100,
        Duration::ZERO,
        unavailable,
    )
    .await;
    assert!(matches!(result, Err(PushError::Registry(_))));
    assert_eq!(made, 4);
}

#[tokio::test(start_paused = true)]
async fn a_final_answer_or_a_stop_is_never_retried() {
    let stop = Stop::default();
    let (result, made, told) =
        run(Duration::from_secs(60), &stop, 1, Duration::ZERO, refused).await;
    assert!(result.is_err());
    assert_eq!((made, told), (1, 0));

    stop.stop();
    let (result, made, told) = run(
        Duration::from_secs(60),
        &stop,
        1,
        Duration::ZERO,
        unavailable,
    )
    .await;
    assert!(result.is_err());
    assert_eq!((made, told), (1, 0));
}
