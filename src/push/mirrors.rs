//! `--mirror REF`: the same image to several registries in one run, built once. Once the main
//! destination holds the image with everything attached and tagged, each mirror gets it by the
//! copy path (`copy.rs`): its blobs (mounted on the same registry, else streamed from the main
//! destination, never rebuilt), its attachments, its own signatures when the push signs, and
//! only then its tags. A mirror that fails does not stop the others; the outcome says which.

use std::sync::Arc;

use futures_util::future::LocalBoxFuture;

use super::copy::{copy, CopyRequest};
use crate::outcome::{MirrorOutcome, PushOutcome};
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::request::PushRequest;
use crate::stop::Stop;

/// Copies what `outcome` pushed to every mirror of `request`: each one's result. Run once the
/// push's own outcome is out (printed, its digest file written); `stop` ends the copies early,
/// each mirror left then saying so.
///
/// Boxed, as `push` is: the binary awaits it (docs/benchmarks.md).
pub fn push_mirrors<'a>(
    request: &'a PushRequest,
    outcome: &'a PushOutcome,
    reporter: Arc<dyn Reporter>,
    stop: &'a Stop,
) -> LocalBoxFuture<'a, Vec<MirrorOutcome>> {
    Box::pin(async move {
        let mut mirrors = Vec::with_capacity(request.mirrors.len());
        for mirror in &request.mirrors {
            let result = match Reference::parse(&outcome.reference) {
                Err(e) => Err(e.to_string()),
                Ok(source) => {
                    let copy_request = CopyRequest {
                        source,
                        destination: mirror.clone(),
                        source_credentials: request.credentials.clone(),
                        destination_credentials: None,
                        insecure: request.insecure,
                        ca_cert: request.ca_cert.clone(),
                        retry: request.retry,
                        tags: outcome.tags.clone(),
                        signer: request.signer.clone(),
                    };
                    copy(&copy_request, reporter.clone(), stop)
                        .await
                        .map(|c| c.reference)
                        .map_err(|e| e.to_string())
                }
            };
            mirrors.push(MirrorOutcome {
                destination: mirror.to_string(),
                result,
            });
        }
        mirrors
    })
}
