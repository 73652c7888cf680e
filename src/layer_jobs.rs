//! The one per-layer driver, for every destination: a job per layer, at most `jobs` at once,
//! results in layer order. The first job to fail stops the others through the write's [`Stop`]
//! (they end at their next chunk instead of finishing for nothing), and the jobs still running
//! are waited for, so none is still writing, or holding an upload session open, when the caller
//! sees the failure. The failure returned is the one that stopped the others (the cause), not a
//! consequence of the stop.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;

use crate::stop::Stop;

/// How a write's layer jobs run.
pub struct LayerJobs<'a> {
    pub count: usize,
    /// Most jobs at once.
    pub jobs: usize,
    /// Stopped by the first failure; a job not started by then never starts.
    pub stop: &'a Stop,
    /// Longest wait for the jobs still running once one failed (none: until they end).
    pub wind_down: Option<Duration>,
}

impl<'a> LayerJobs<'a> {
    /// Jobs whose failure is waited for until every running one has ended (a local writer
    /// ends at its next write and removes its temporary file).
    pub fn until_ended(count: usize, jobs: usize, stop: &'a Stop) -> Self {
        LayerJobs {
            count,
            jobs,
            stop,
            wind_down: None,
        }
    }

    /// Runs `job(index)` for every layer; `stopped` is the error of a job that never started.
    pub async fn run<T, E, F, Fut>(self, stopped: impl Fn() -> E, job: F) -> Result<Vec<T>, E>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let stop = self.stop;
        let stopped = &stopped;
        // Unordered: a large layer must not hold back the start of the layers after it.
        let mut running = futures_util::stream::iter(0..self.count)
            .map(|index| {
                let fut = job(index);
                async move {
                    if stop.is_stopped() {
                        return (index, Err((false, stopped())));
                    }
                    // Only the failure that stopped the others is the cause.
                    (index, fut.await.map_err(|e| (stop.stop(), e)))
                }
            })
            .buffer_unordered(self.jobs.max(1));
        let mut done: Vec<Option<T>> = (0..self.count).map(|_| None).collect();
        let mut failure: Option<(bool, E)> = None;
        while let Some((index, result)) = running.next().await {
            match result {
                Ok(value) => done[index] = Some(value),
                Err((cause, e)) => {
                    if cause || failure.is_none() {
                        failure = Some((cause, e));
                    }
                    break;
                }
            }
        }
        let Some((_, first)) = failure else {
            return Ok(done
                .into_iter()
                .map(|v| v.expect("every layer job succeeded"))
                .collect());
        };
        // Wound down: each job still running ends at its next chunk, its failure a consequence
        // (or, if it failed on its own first, the cause).
        let mut cause = None;
        let drain = async {
            while let Some((_, result)) = running.next().await {
                if let Err((true, e)) = result {
                    cause.get_or_insert(e);
                }
            }
        };
        match self.wind_down {
            Some(limit) => {
                let _ = tokio::time::timeout(limit, drain).await;
            }
            None => drain.await,
        }
        Err(cause.unwrap_or(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(Debug, PartialEq)]
    enum Failed {
        Broke(usize),
        Stopped,
    }

    fn jobs(stop: &Stop, wind_down: Option<Duration>) -> LayerJobs<'_> {
        LayerJobs {
            count: 6,
            jobs: 3,
            stop,
            wind_down,
        }
    }

    #[tokio::test]
    async fn the_first_failure_is_returned_after_every_started_job_ended() {
        let stop = Stop::default();
        let (started, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let result: Result<Vec<usize>, Failed> = jobs(&stop, None)
            .run(
                || Failed::Stopped,
                |i| {
                    let (stop, started, finished) =
                        (stop.clone(), started.clone(), finished.clone());
                    async move {
                        started.fetch_add(1, Ordering::SeqCst);
                        let outcome = if i == 1 {
                            Err(Failed::Broke(i))
                        } else {
                            // The others notice the stop, as a writer would at its next chunk.
                            for _ in 0..100 {
                                if stop.is_stopped() {
                                    break;
                                }
                                tokio::task::yield_now().await;
                            }
                            if stop.is_stopped() {
                                Err(Failed::Stopped)
                            } else {
                                Ok(i)
                            }
                        };
                        finished.fetch_add(1, Ordering::SeqCst);
                        outcome
                    }
                },
            )
            .await;
        assert_eq!(result, Err(Failed::Broke(1)));
        // Jobs not started before the failure never start (at most the 3 running at once);
        // every one that started had ended when the failure came back.
        let started = started.load(Ordering::SeqCst);
        assert!((2..=3).contains(&started), "{started}");
        assert_eq!(finished.load(Ordering::SeqCst), started);
        assert!(stop.is_stopped());
    }

    #[tokio::test]
    async fn results_come_back_in_layer_order() {
        let stop = Stop::default();
        let got = LayerJobs {
            count: 5,
            jobs: 2,
            stop: &stop,
            wind_down: None,
        }
        .run(
            || Failed::Stopped,
            |i| async move {
                tokio::time::sleep(Duration::from_millis(10 * (5 - i as u64))).await;
                Ok::<_, Failed>(i)
            },
        )
        .await
        .unwrap();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_job_that_ignores_the_stop_is_waited_for_no_longer_than_the_wind_down() {
        let stop = Stop::default();
        let started = tokio::time::Instant::now();
        let result: Result<Vec<()>, Failed> = jobs(&stop, Some(Duration::from_secs(5)))
            .run(
                || Failed::Stopped,
                |i| async move {
                    if i == 0 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        return Err(Failed::Broke(0));
                    }
                    // Deaf to the stop: an hour.
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(())
                },
            )
            .await;
        assert_eq!(result, Err(Failed::Broke(0)));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
            "{waited:?}"
        );
    }

    #[tokio::test]
    async fn a_stopped_write_starts_nothing() {
        let stop = Stop::default();
        stop.stop();
        let ran = AtomicUsize::new(0);
        let result: Result<Vec<()>, Failed> = jobs(&stop, None)
            .run(
                || Failed::Stopped,
                |_| async {
                    ran.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
            )
            .await;
        assert_eq!(result, Err(Failed::Stopped));
        assert_eq!(ran.load(Ordering::SeqCst), 0, "no job ran");
    }
}
