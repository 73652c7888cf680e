//! Progress for humans on stderr as plain lines, one per event: what CI logs get (a terminal gets
//! the live bars of `bars.rs` instead).

use std::sync::Mutex;
use std::time::Instant;

use nixpush::digest::Digest;
use nixpush::outcome::LayerAction;
use nixpush::progress::{Phase, Reporter, Warning};

pub struct ProgressLines {
    start: Instant,
    sent: Mutex<Vec<u64>>,
    /// `--verbose`: print details too.
    verbose: bool,
}

impl ProgressLines {
    pub fn new(verbose: bool) -> Self {
        ProgressLines {
            start: Instant::now(),
            sent: Mutex::new(Vec::new()),
            verbose,
        }
    }

    fn line(&self, text: &str) {
        eprintln!("[{:>6.1}s] {text}", self.start.elapsed().as_secs_f64());
    }
}

impl Reporter for ProgressLines {
    fn phase(&self, phase: &Phase) {
        self.line(&phase.to_string());
    }

    fn warning(&self, warning: &Warning) {
        self.line(&format!("warning: {warning}"));
    }

    fn detail(&self, message: &str) {
        if self.verbose {
            self.line(message);
        }
    }

    fn layer_started(&self, index: usize, total: usize, description: &str) {
        let mut sent = self.sent.lock().unwrap();
        if sent.len() < total {
            sent.resize(total, 0);
        }
        drop(sent);
        self.line(&format!("layer {}/{total}: {description}", index + 1));
    }

    fn layer_bytes(&self, index: usize, bytes: u64) {
        if let Some(n) = self.sent.lock().unwrap().get_mut(index) {
            *n += bytes;
        }
    }

    fn layer_retry(&self, index: usize, reason: &str) {
        if let Some(n) = self.sent.lock().unwrap().get_mut(index) {
            *n = 0;
        }
        self.line(&format!("layer {}: {reason}; retrying", index + 1));
    }

    fn layer_done(&self, index: usize, action: &LayerAction, digest: &Digest, size: u64) {
        let what = match action {
            LayerAction::Skipped => "already present",
            LayerAction::Pushed => "pushed",
            LayerAction::Mounted => "mounted",
        };
        self.line(&format!(
            "layer {}: {what} {} ({})",
            index + 1,
            short(digest),
            human_size(size)
        ));
    }

    fn retrying(&self, reason: &str) {
        self.line(&format!("{reason}; retrying"));
    }
}

pub fn short(d: &Digest) -> String {
    format!("sha256:{}", &d.hex()[..12])
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
