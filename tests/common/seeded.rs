//! A seeded fault pattern for the fault front: which request breaks, and how.

use std::collections::HashMap;
use std::sync::Mutex;

use super::front::{Action, Front, Request};
use super::Registry;

/// A fault pattern, deterministic from its seed: the requests are taken in blocks of `every`,
/// and one request of each block, at a seeded position, gets a seeded fault. A request that has
/// just failed twice in a row (the same method and path; upload sessions count as one path) is
/// passed, and the fault moves to the next request. The pattern is a function of the order
/// requests arrive in: with concurrent uploads that order, hence which request gets which
/// fault, may vary between runs; the guarantees above hold whatever it is.
pub struct SeededFaults {
    every: usize,
    state: Mutex<PatternState>,
}

struct PatternState {
    rng: u64,
    /// Position of the next request in its block.
    position: usize,
    /// Position of the block's fault.
    fault_at: usize,
    /// A fault moved on from a request that could not take it.
    pending: bool,
    /// Faults in a row, per request.
    streaks: HashMap<String, u32>,
}

impl PatternState {
    /// splitmix64: small, and the same on every machine.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl SeededFaults {
    pub fn new(seed: u64, every: usize) -> SeededFaults {
        SeededFaults {
            every,
            state: Mutex::new(PatternState {
                rng: seed,
                position: 0,
                fault_at: 0,
                pending: false,
                streaks: HashMap::new(),
            }),
        }
    }

    pub fn decide(&self, request: &Request) -> Action {
        let mut guard = self.state.lock().unwrap();
        let s = &mut *guard;
        if s.position == 0 {
            s.fault_at = (s.next() % self.every as u64) as usize;
        }
        let due = s.pending || s.position == s.fault_at;
        s.position = (s.position + 1) % self.every;
        let kind = s.next() % 5;
        let streak = s.streaks.entry(request_key(request)).or_default();
        if !due || *streak >= 2 {
            s.pending = due;
            *streak = 0;
            return Action::forward();
        }
        *streak += 1;
        s.pending = false;
        match kind {
            0 => Action::DropMidBody,
            1 => Action::CutResponse,
            2 => Action::answer(500, &[], b"internal error"),
            3 => Action::answer(503, &[], b"service unavailable"),
            _ => Action::answer(429, &[("Retry-After", "1")], b"slow down"),
        }
    }
}

/// What "the same request" is: method and path, every upload session's path counting as one,
/// and the digest a blob upload is committed with.
fn request_key(request: &Request) -> String {
    let path = request.path();
    let path = match path.split_once("/blobs/uploads/") {
        Some((repo, session)) if !session.is_empty() => format!("{repo}/blobs/uploads/*"),
        _ => path.to_owned(),
    };
    format!(
        "{} {path} {}",
        request.method,
        request.query("digest").unwrap_or_default()
    )
}

pub fn faulty_front(registry: &Registry, seed: u64, every: usize) -> Front {
    let faults = SeededFaults::new(seed, every);
    Front::start(Some(registry.port), move |r| faults.decide(r))
}
