//! Progress on a terminal: one live bar per layer being sent (bytes and rate), a line for each
//! layer as it completes (pushed, already present, mounted), and an overall bar. Only the binary
//! draws; the library reports through `Reporter`. Without a terminal (CI logs) the plain
//! line-per-event reporter is used instead.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use nixpush::digest::Digest;
use nixpush::outcome::LayerAction;
use nixpush::progress::{Phase, Reporter, Warning};

use super::lines::{human_size, short};

pub struct ProgressBars {
    bars: MultiProgress,
    overall: ProgressBar,
    layers: Mutex<Vec<Option<ProgressBar>>>,
    /// Layers counted for images pushed earlier in the run (`--images`).
    done_before: Mutex<u64>,
    /// `--verbose`: print details above the bars.
    verbose: bool,
}

impl ProgressBars {
    pub fn new(verbose: bool) -> Self {
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let overall = bars.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} layers {elapsed}")
                .expect("static template")
                .progress_chars("=> "),
        );
        overall.enable_steady_tick(Duration::from_millis(120));
        ProgressBars {
            bars,
            overall,
            layers: Mutex::new(Vec::new()),
            done_before: Mutex::new(0),
            verbose,
        }
    }
}

impl Reporter for ProgressBars {
    fn phase(&self, phase: &Phase) {
        self.overall.set_message(phase.to_string());
    }

    fn warning(&self, warning: &Warning) {
        let _ = self.bars.println(format!("warning: {warning}"));
    }

    fn detail(&self, message: &str) {
        if self.verbose {
            let _ = self.bars.println(message);
        }
    }

    fn layer_started(&self, index: usize, total: usize, description: &str) {
        let mut done_before = self.done_before.lock().unwrap();
        if index == 0 {
            // A new image: its layers count on top of the earlier images'.
            *done_before = self.overall.length().unwrap_or(0);
        }
        self.overall.set_length(*done_before + total as u64);
        drop(done_before);
        let bar = self
            .bars
            .insert_before(&self.overall, ProgressBar::no_length());
        bar.set_style(
            ProgressStyle::with_template("  layer {prefix}: {msg} {bytes} {binary_bytes_per_sec}")
                .expect("static template"),
        );
        bar.set_prefix(format!("{}/{total}", index + 1));
        bar.set_message(description.to_owned());
        let mut layers = self.layers.lock().unwrap();
        if layers.len() <= index {
            layers.resize(index + 1, None);
        }
        layers[index] = Some(bar);
    }

    fn layer_bytes(&self, index: usize, bytes: u64) {
        if let Some(Some(bar)) = self.layers.lock().unwrap().get(index) {
            bar.inc(bytes);
        }
    }

    fn layer_retry(&self, index: usize, reason: &str) {
        if let Some(Some(bar)) = self.layers.lock().unwrap().get(index) {
            bar.set_position(0);
        }
        let _ = self
            .bars
            .println(format!("layer {}: {reason}; retrying", index + 1));
    }

    fn layer_done(&self, index: usize, action: &LayerAction, digest: &Digest, size: u64) {
        if let Some(Some(bar)) = self.layers.lock().unwrap().get_mut(index).map(Option::take) {
            bar.finish_and_clear();
            self.bars.remove(&bar);
        }
        let what = match action {
            LayerAction::Skipped => "already present",
            LayerAction::Pushed => "pushed",
            LayerAction::Mounted => "mounted",
        };
        let _ = self.bars.println(format!(
            "layer {}: {what} {} ({})",
            index + 1,
            short(digest),
            human_size(size)
        ));
        self.overall.inc(1);
    }

    fn retrying(&self, reason: &str) {
        let _ = self.bars.println(format!("{reason}; retrying"));
    }
}

impl Drop for ProgressBars {
    fn drop(&mut self) {
        self.overall.finish_and_clear();
    }
}
