//! A configurable quirk front: the real docker-registry behind a [`Front`] that bends the
//! distribution spec the way registries in the field do, one switch per documented behaviour
//! (each switch names the public report it reproduces). Everything it does not bend is passed
//! on, so what a push leaves is checked in the real registry behind it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::front::{Action, Forwarding, Front, Request, ResponseHead};

/// GHCR's answer to a body over its cap (oras-project/rust-oci-client#35).
pub const GHCR_TOO_LARGE: &str = r#"{"errors":[{"code":"REQUESTED_RANGE_NOT_SATISFIABLE","message":"the request body is too large and exceeds the maximum permissible limit of 4.00MiB"}]}"#;

/// Docker Hub's answer over its rate limit (docs.docker.com/docker-hub/usage/pulls/).
pub const HUB_TOO_MANY: &str = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}"#;

/// Which quirks the front plays.
#[derive(Clone, Debug, Default)]
pub struct Quirks {
    /// A `PATCH` without a `Content-Length` (`Transfer-Encoding: chunked`) is answered with this
    /// status: 411 (Google Artifact Registry, which takes monolithic uploads only) or 400 (front
    /// ends that refuse chunked bodies).
    pub length_required: Option<u16>,
    /// A request whose `Content-Length` is over this many bytes is answered 416 with GHCR's
    /// message (GHCR's cap is 4 MiB).
    pub body_cap: Option<u64>,
    /// ECR (aws/containers-roadmap#2831, dotnet/sdk-container-builds#279): `PATCH` answered 201
    /// instead of 202, the `Range` of every later `PATCH` answer stuck at the first one's, and a
    /// part under 5 MiB that is not the last refused (`LayerPartTooSmallException`).
    pub ecr: bool,
    /// OCI manifests and indexes refused with 400 `MANIFEST_INVALID` (older Artifactory, Nexus,
    /// Harbor 1.x; GitLab's older registry in chainguard-forks/kaniko#160).
    pub docker_media_types_only: bool,
    /// Quay (quay/quay#899): a mount without `from=` is a 400.
    pub mount_needs_from: bool,
    /// Every mount is declined: answered 202 with an upload session, as the spec allows
    /// (opencontainers/distribution-spec#296).
    pub decline_mounts: bool,
    /// A tag policy (Harbor's tag immutability and retention rules, ECR's repository policies,
    /// a cosign-unaware proxy): a manifest `PUT` under a tag ending with this is answered 403
    /// `DENIED`.
    pub denied_tag_suffix: Option<String>,
    /// Docker Hub: this many requests answered 429 `TOOMANYREQUESTS` with its rate-limit
    /// headers before any is passed on.
    pub rate_limited: usize,
}

/// Smallest part ECR takes that is not the last.
const ECR_MIN_PART: u64 = 5 * 1024 * 1024;

/// What the front remembers of one upload session (by its path), for ECR.
#[derive(Default)]
struct Session {
    patches: usize,
    /// The `Range` of the first `PATCH` answer, repeated ever after.
    first_range: Option<String>,
    /// A part under the minimum was taken: another part after it is refused.
    small_part: bool,
}

/// Starts the quirk front before `upstream` (a registry's port on 127.0.0.1).
pub fn quirk_front(upstream: u16, quirks: Quirks) -> Front {
    let sessions: Arc<Mutex<HashMap<String, Session>>> = Default::default();
    let limited = Arc::new(Mutex::new(quirks.rate_limited));
    Front::start(Some(upstream), move |r| {
        decide(&quirks, r, &sessions, &limited)
    })
}

fn decide(
    quirks: &Quirks,
    r: &Request,
    sessions: &Arc<Mutex<HashMap<String, Session>>>,
    limited: &Mutex<usize>,
) -> Action {
    {
        let mut left = limited.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return Action::answer(
                429,
                &[
                    ("Content-Type", "application/json"),
                    ("ratelimit-limit", "100;w=21600"),
                    ("ratelimit-remaining", "0;w=21600"),
                    ("docker-ratelimit-source", "203.0.113.7"),
                ],
                HUB_TOO_MANY.as_bytes(),
            );
        }
    }
    let length = r
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = r
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let is_upload = r.path().contains("/blobs/uploads/");
    if let (Some(status), true, true) = (
        quirks.length_required,
        r.method == "PATCH",
        chunked || length.is_none(),
    ) {
        return Action::answer(status, &[], b"length required");
    }
    if let (Some(cap), Some(len)) = (quirks.body_cap, length) {
        if len > cap {
            return Action::answer(
                416,
                &[("Content-Type", "application/json")],
                GHCR_TOO_LARGE.as_bytes(),
            );
        }
    }
    if quirks.docker_media_types_only
        && r.method == "PUT"
        && r.path().contains("/manifests/")
        && r.header("content-type")
            .is_some_and(|t| t.contains("vnd.oci."))
    {
        return Action::answer(
            400,
            &[("Content-Type", "application/json")],
            br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":"unsupported manifest media type"}]}"#,
        );
    }
    if let Some(suffix) = &quirks.denied_tag_suffix {
        if r.method == "PUT"
            && r.path().contains("/manifests/")
            && r.path().ends_with(suffix.as_str())
        {
            return Action::answer(
                403,
                &[("Content-Type", "application/json")],
                br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied: tag policy"}]}"#,
            );
        }
    }
    if r.method == "POST" && r.query("mount").is_some() {
        if quirks.mount_needs_from && r.query("from").is_none() {
            return Action::answer(400, &[], b"Bad Request: missing from");
        }
        if quirks.decline_mounts {
            // The registry opens a plain upload session instead of mounting.
            return Action::Forward(Forwarding {
                target: Some(r.path().to_owned()),
                ..Default::default()
            });
        }
    }
    if quirks.ecr && r.method == "PATCH" && is_upload {
        let key = r.path().to_owned();
        let mut all = sessions.lock().unwrap();
        let session = all.entry(key.clone()).or_default();
        if session.small_part {
            return Action::answer(
                400,
                &[("Content-Type", "application/json")],
                br#"{"errors":[{"code":"BLOB_UPLOAD_INVALID","message":"LayerPartTooSmallException: All layer parts except the last part should be at least 5MB"}]}"#,
            );
        }
        session.patches += 1;
        session.small_part = length.is_some_and(|l| l < ECR_MIN_PART);
        let sessions = sessions.clone();
        return Action::Forward(Forwarding {
            edit_response: Some(Box::new(move |head: &mut ResponseHead| {
                if head.status == 202 {
                    head.status = 201;
                }
                let mut all = sessions.lock().unwrap();
                let session = all.entry(key).or_default();
                match (&session.first_range, head.header("range")) {
                    (None, Some(range)) => session.first_range = Some(range.to_owned()),
                    (Some(first), Some(_)) => {
                        let first = first.clone();
                        head.set("Range", &first);
                    }
                    _ => {}
                }
            })),
            ..Default::default()
        });
    }
    Action::forward()
}
