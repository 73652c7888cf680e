//! The retry policy: how often, and how long to wait. The one place that retries is
//! `Client::send`; the upload of a layer is retried as a whole by the pusher, by reopening the
//! layer stream, using the same policy (a `Retry-After` the failed step got included).

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
}
