//! HTTP as every part of nixpush speaks it, a registry's client and a binary cache's alike: the
//! one place an HTTP client is built (`transport.rs`), TLS with certs.d, `--ca-cert` and pinned
//! certificates (`tls.rs`, `certs_d.rs`, `pinned_cert.rs`), redirects that never carry
//! credentials off their origin (`redirect.rs`), progress-based timeouts (`stall.rs`), the one
//! budgeted retry loop (`retry.rs`), and failures that say whether trying again may help
//! (`error.rs`). Nothing here knows a registry, a cache, or a push.

mod certs_d;
mod error;
mod notices;
mod pinned_cert;
mod redirect;
mod retry;
mod stall;
mod tls;
mod transport;

#[cfg(test)]
pub(crate) mod test_server;

pub use certs_d::ClientCert;
pub use error::{
    bounded_text, display_url, host_of, is_temporary_status, transport_reason, HttpError,
};
pub use notices::{Notices, Quiet};
pub use redirect::{OriginCredential, Outgoing, Payload, MAX_REDIRECTS, SENSITIVE};
pub use retry::{
    backoff, retry_after, with_retries, Attempt, Budget, Retries, RetryPolicy, DEFAULT_RETRY_FOR,
    DEFAULT_STALL_TIMEOUT, FIRST_CONTACT_RETRY_FOR,
};
pub use stall::{watched, Watch, AFTER_BODY};
pub use tls::{HostTls, TlsOptions};
pub use transport::{SendError, Transport};
