//! The OCI distribution API, as nixpush speaks it: one function per protocol step, one client
//! that authenticates every request and retries it through the http layer (`crate::http`:
//! transport, TLS, redirects, stall watch, the retry loop), and errors that say what failed
//! without ever carrying a secret.

mod auth;
mod blob;
mod blob_stream;
#[cfg(test)]
mod blob_tests;
mod chunks;
#[cfg(test)]
mod chunks_tests;
mod client;
mod error;
mod host_facts;
mod manifest;
#[cfg(test)]
mod manifest_tests;
mod session;

pub use auth::{Credentials, Secret};
pub use client::{cancel_abandoned_uploads, Access, Client, ConnectOptions};
pub use error::RegistryError;
pub use host_facts::{HostFacts, DEFAULT_CHUNK};
pub use session::{BlobBody, Mount, UploadSession};
// The retry policy is the http layer's; named here too, as the push and the command line
// know it.
pub use crate::http::{backoff, RetryPolicy};
