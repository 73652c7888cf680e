//! What the HTTP side tells the user, and nothing else: requests tried again, what a host was
//! seen to refuse, and (for `--verbose`) each request and its answer. The push's progress
//! reporter stands behind it through an adapter; the HTTP side never sees a layer or a phase.

/// Told of what requests do. Never given a secret.
pub trait Notices: Send + Sync {
    /// A request is being tried again, and why.
    fn retrying(&self, _reason: &str) {}
    /// Something learnt about a host that changes how it is spoken to from now on.
    fn learnt(&self, _what: &str) {}
    /// What only `--verbose` shows: a request and its answer (method, URL without its query,
    /// status), never a header.
    fn detail(&self, _message: &str) {}
}

/// Tells nothing.
pub struct Quiet;

impl Notices for Quiet {}
