//! Warnings kept for the `--json` document: a reporter that hands every event to the one that
//! draws them and keeps a copy of each warning, so machines can read what went wrong without
//! failing the push (`warnings`, each with its `kind`), apart from the phases.

use std::sync::{Arc, Mutex};

use nixpush::digest::Digest;
use nixpush::outcome::LayerAction;
use nixpush::progress::{Phase, Reporter, Warning};

pub struct WarningLog {
    inner: Arc<dyn Reporter>,
    warnings: Mutex<Vec<Warning>>,
}

impl WarningLog {
    pub fn new(inner: Arc<dyn Reporter>) -> Self {
        WarningLog {
            inner,
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// Every warning so far, once each, in the order they came.
    pub fn warnings(&self) -> Vec<Warning> {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Reporter for WarningLog {
    fn phase(&self, phase: &Phase) {
        self.inner.phase(phase)
    }
    fn warning(&self, warning: &Warning) {
        let mut kept = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
        if !kept.contains(warning) {
            kept.push(warning.clone());
        }
        drop(kept);
        self.inner.warning(warning)
    }
    fn layer_started(&self, index: usize, total: usize, description: &str) {
        self.inner.layer_started(index, total, description)
    }
    fn layer_bytes(&self, index: usize, bytes: u64) {
        self.inner.layer_bytes(index, bytes)
    }
    fn layer_retry(&self, index: usize, reason: &str) {
        self.inner.layer_retry(index, reason)
    }
    fn layer_done(&self, index: usize, action: &LayerAction, digest: &Digest, size: u64) {
        self.inner.layer_done(index, action, digest, size)
    }
    fn retrying(&self, reason: &str) {
        self.inner.retrying(reason)
    }
    fn detail(&self, message: &str) {
        self.inner.detail(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nixpush::progress::Silent;

    #[test]
    fn keeps_each_warning_once_in_order_and_passes_everything_on() {
        struct Counting(Mutex<usize>);
        impl Reporter for Counting {
            fn warning(&self, _: &Warning) {
                *self.0.lock().unwrap() += 1;
            }
        }
        let counting = Arc::new(Counting(Mutex::new(0)));
        let log = WarningLog::new(counting.clone());
        let a = Warning::CacheNotWritten {
            reason: "read-only".into(),
        };
        let b = Warning::CachedDigestWrong { layer: 2 };
        log.warning(&a);
        log.warning(&b);
        log.warning(&a);
        assert_eq!(log.warnings(), vec![a, b]);
        assert_eq!(*counting.0.lock().unwrap(), 3, "each one is still drawn");
        assert!(WarningLog::new(Arc::new(Silent)).warnings().is_empty());
    }
}
