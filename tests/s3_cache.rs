//! Publishing from a binary cache in an S3 bucket (`--substituter 's3://BUCKET?endpoint=...'`),
//! as Hydra and CI set-ups write them: a signed cache written by `nix copy --to file://`,
//! uploaded to a real S3-compatible server (SeaweedFS) by boto3, the closure then deleted from
//! the store. A logging front before the S3 API records what nixpush asked for. The image is the
//! one the local store gives; an unchanged re-push reads no NAR; a wrong secret, a missing
//! bucket and no credentials are one line each naming the bucket, the secret in no output; an
//! unknown URL parameter is a usage error. A bucket among Nix's own caches that cannot be used
//! is passed over, as Nix passes over a substituter it cannot use.

use crate::common;

use std::collections::BTreeSet;

use common::binary_cache::*;
use common::cached_closure::*;
use common::front::{Action, Front};
use common::object_storage::{ObjectStorage, S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY};
use common::*;

const BUCKET: &str = "nix-cache";

/// `app`'s closure, signed, in a SeaweedFS bucket (uploaded by boto3) reached through a
/// logging front, and deleted from the local store.
struct InBucket {
    signed: SignedCache,
    storage: ObjectStorage,
    front: Front,
    registry: Registry,
}

impl InBucket {
    fn only_there(app: &Built) -> InBucket {
        let signed = SignedCache::copy(&app.closure, &app.key_name());
        delete_from_store(&app.closure);
        let storage = ObjectStorage::start();
        storage.create_bucket(BUCKET);
        storage.upload(BUCKET, signed.cache.dir());
        let front = Front::start(Some(storage.port), |_| Action::forward());
        InBucket {
            signed,
            storage,
            front,
            registry: Registry::start(),
        }
    }

    /// Nix's URL of `bucket` on this server, through the front: plain HTTP, path-style.
    fn url(&self, bucket: &str, extra: &str) -> String {
        format!(
            "s3://{bucket}?endpoint={}&region={S3_REGION}&scheme=http{extra}",
            self.front.host()
        )
    }

    fn args(&self, app: &Built, url: &str, extra: &[&str]) -> Vec<String> {
        let image = format!("{}/cache/app:v1", self.registry.host());
        from_cache(app.top(), &image, &[url], &[&self.signed.key.public], extra)
    }

    /// The paths of the NARs the bucket sent so far.
    fn nar_downloads(&self, since: usize) -> BTreeSet<String> {
        self.front.seen()[since..]
            .iter()
            .filter(|s| s.method == "GET" && s.target.contains("/nar/"))
            .map(|s| s.target.split('?').next().unwrap().to_owned())
            .collect()
    }
}

/// The environment of a run whose S3 credentials come from these variables only.
fn keys_in_env(secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", secret.into()),
        ("AWS_SESSION_TOKEN", String::new()),
        ("AWS_PROFILE", String::new()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/credentials".into(),
        ),
    ]
}

fn run(args: &[String], env: &[(&str, String)]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Nixpush::new().run_with(&args, env, None)
}

#[test]
fn a_closure_only_in_an_s3_bucket_gives_the_image_of_the_local_store_and_a_repush_reads_no_nar() {
    let app = Built::attr("cached-22");
    let (_local_registry, _, local) = push_from_the_local_store(&app, &[]);
    let oracle = app.oracle_diff_ids();
    let bucket = InBucket::only_there(&app);

    let first = run(
        &bucket.args(&app, &bucket.url(BUCKET, ""), &[]),
        &keys_in_env(S3_SECRET_KEY),
    );
    assert_no_secret(&first, S3_ACCESS_KEY, &[S3_SECRET_KEY]);
    let json: serde_json::Value = serde_json::from_str(first.assert_ok()).unwrap();
    assert_eq!(image_facts(&json), image_facts(&local));
    assert_layers_are_the_oracles(&json, &oracle);
    // Every NAR of the closure came from the bucket (path-style: /BUCKET/KEY)...
    let nars: BTreeSet<String> = nar_paths(&bucket.signed.cache, &app.closure_paths())
        .into_iter()
        .map(|p| format!("/{BUCKET}{p}"))
        .collect();
    assert_eq!(bucket.nar_downloads(0), nars);
    // ...each request pre-signed (SigV4 in the query, no header credential).
    for seen in bucket.front.seen() {
        assert!(seen.target.contains("X-Amz-Signature="), "{seen:?}");
        assert!(seen.target.contains(S3_ACCESS_KEY), "{seen:?}");
        assert_eq!(seen.authorization, None, "{seen:?}");
    }
    assert_not_in_store(&app.closure);

    // Again, on a machine whose keys are a profile of its credentials file (`profile=`), with
    // --verbose: the tag is unchanged, and only narinfos and nix-cache-info were read.
    let credentials = bucket.storage.scratch().join("credentials");
    std::fs::write(
        &credentials,
        format!("[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n[publisher]\naws_access_key_id = {S3_ACCESS_KEY}\naws_secret_access_key = {S3_SECRET_KEY}\n"),
    )
    .unwrap();
    let before = bucket.front.seen().len();
    let env = [
        ("AWS_ACCESS_KEY_ID", String::new()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials.display().to_string(),
        ),
    ];
    let url = bucket.url(BUCKET, "&profile=publisher");
    let again = run(&bucket.args(&app, &url, &["--verbose"]), &env);
    assert_no_secret(&again, S3_ACCESS_KEY, &[S3_SECRET_KEY]);
    let json_again: serde_json::Value = serde_json::from_str(again.assert_ok()).unwrap();
    assert_eq!(json_again["images"][0]["unchanged"], true, "{json_again}");
    assert_eq!(
        json_again["images"][0]["reference"],
        json["images"][0]["reference"]
    );
    let since = &bucket.front.seen()[before..];
    assert!(!since.is_empty());
    for seen in since {
        let path = seen.target.split('?').next().unwrap();
        assert!(
            path.ends_with(".narinfo") || path.ends_with("/nix-cache-info"),
            "{} {path}: only narinfos and nix-cache-info are read",
            seen.method
        );
    }
    assert!(bucket.nar_downloads(before).is_empty());

    // And with the bucket as Nix's own configured substituter (no --substituter): the same.
    let conf_dir = nix_conf_with_caches(&[&bucket.url(BUCKET, "")], &[&bucket.signed.key.public]);
    let before = bucket.front.seen().len();
    let image = format!("{}/cache/app:v1", bucket.registry.host());
    let mut env = keys_in_env(S3_SECRET_KEY);
    env.push(("NIX_CONF_DIR", conf_dir.path().display().to_string()));
    let configured = run(
        &[app.top(), &image, "--system", SYSTEM, "--json"].map(str::to_owned),
        &env,
    );
    assert_no_secret(&configured, S3_ACCESS_KEY, &[S3_SECRET_KEY]);
    let json_configured: serde_json::Value = serde_json::from_str(configured.assert_ok()).unwrap();
    assert_eq!(json_configured["images"][0]["unchanged"], true);
    assert!(bucket.front.seen().len() > before, "the bucket was asked");
    assert!(bucket.nar_downloads(before).is_empty());
}

#[test]
fn a_wrong_secret_a_missing_bucket_no_credentials_and_a_bad_url_are_one_line_each() {
    let app = Built::attr("cached-23");
    let bucket = InBucket::only_there(&app);
    let wrong = "wrong-secret-0d9e7c";

    let refused = run(
        &bucket.args(&app, &bucket.url(BUCKET, ""), &["--verbose"]),
        &keys_in_env(wrong),
    );
    assert_refused(&refused, 1, &["s3://nix-cache", "refused"]);
    assert_no_secret(&refused, S3_ACCESS_KEY, &[wrong]);

    let missing = run(
        &bucket.args(&app, &bucket.url("no-such-bucket", ""), &[]),
        &keys_in_env(S3_SECRET_KEY),
    );
    assert_refused(&missing, 1, &["s3://no-such-bucket", "no such bucket"]);
    assert_no_secret(&missing, S3_ACCESS_KEY, &[S3_SECRET_KEY]);

    let no_keys = [
        ("AWS_ACCESS_KEY_ID", String::new()),
        ("AWS_SECRET_ACCESS_KEY", String::new()),
        ("AWS_PROFILE", String::new()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/credentials".into(),
        ),
    ];
    let anonymous = run(&bucket.args(&app, &bucket.url(BUCKET, ""), &[]), &no_keys);
    assert_refused(&anonymous, 1, &["s3://nix-cache", "no S3 credentials"]);
    // A parameter Nix does not know is a usage error, before anything runs.
    let typo = run(
        &bucket.args(&app, &bucket.url(BUCKET, "&regoin=eu-west-1"), &[]),
        &keys_in_env(S3_SECRET_KEY),
    );
    assert_refused(&typo, 2, &["--substituter", "unknown parameter \"regoin\""]);
    // Nothing was tagged.
    assert_eq!(
        bucket.registry.manifest_status("cache/app", "v1", None),
        404
    );

    // Among Nix's own caches, a bucket without credentials is passed over with a warning
    // saying why, as Nix passes over a substituter it cannot use; alone, it is the one line.
    let image = format!("{}/cache/app:v1", bucket.registry.host());
    let args = [app.top(), &image, "--system", SYSTEM].map(str::to_owned);
    let nix_with = |urls: &[&str]| {
        let dir = nix_conf_with_caches(urls, &[&bucket.signed.key.public]);
        let mut env = no_keys.to_vec();
        env.push(("NIX_CONF_DIR", dir.path().display().to_string()));
        (dir, env)
    };
    let s3 = bucket.url(BUCKET, "");
    let (_alone, env) = nix_with(&[&s3]);
    assert_refused(
        &run(&args, &env),
        1,
        &["s3://nix-cache", "no S3 credentials"],
    );
    let (_both, env) = nix_with(&[&s3, &bucket.signed.cache.file_url()]);
    let passed = run(&args, &env);
    passed.assert_ok();
    for needle in ["passing over", "s3://nix-cache", "no S3 credentials"] {
        assert!(
            passed.stderr.contains(needle),
            "{needle}: {}",
            passed.stderr
        );
    }
    assert_eq!(
        bucket.registry.manifest_status("cache/app", "v1", None),
        200
    );
}
