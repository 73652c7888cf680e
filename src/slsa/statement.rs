//! The statement itself: subject (the pushed image manifest), `buildDefinition` (nixpush's
//! build type, the installable and the flake's locked reference as external parameters, every
//! store path and flake input as resolved dependencies) and `runDetails`.

use serde_json::{json, Value};

use super::RunDetails;
use crate::digest::Digest;
use crate::nix::{Closure, NarHash};
use crate::plan::provenance::FlakeMetadata;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// nixpush's build type: what its external parameters and dependencies mean is documented there.
pub const BUILD_TYPE: &str =
    "https://github.com/styrene-lab/nixpush/blob/main/docs/provenance.md#v1";

/// What an image was made from.
pub struct BuildFacts<'a> {
    pub installable: &'a str,
    /// The flake's metadata, for a flake installable whose metadata Nix gave.
    pub flake: Option<&'a FlakeMetadata>,
    /// Every store path in the image.
    pub closure: &'a Closure,
    /// The registry image it was put on (`--base`): its name as given, and its digest.
    pub base: Option<(&'a str, &'a crate::digest::Digest)>,
}

/// The query parameters of a flake URL that say which source it is; anything else (a token a
/// tarball URL carries, say) is left out of a statement anyone may read.
const SOURCE_PARAMETERS: [&str; 8] = [
    "rev",
    "ref",
    "dir",
    "narHash",
    "lastModified",
    "revCount",
    "submodules",
    "shallow",
];

/// `url` as a statement may show it: no user or password (`https://user:token@...`, as CI jobs
/// clone private inputs), no query parameter but those naming the source.
pub fn without_credentials(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    if parsed.cannot_be_a_base() {
        // `github:owner/repo/rev`: no authority to carry a password; still no foreign query.
        if parsed.query().is_none() {
            return url.to_owned();
        }
    } else {
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
    }
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| SOURCE_PARAMETERS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed.set_query(None);
    if !kept.is_empty() {
        parsed.query_pairs_mut().extend_pairs(kept);
    }
    parsed.to_string()
}

/// A digest set for a Nix hash: its SHA-256 as hex.
fn nar_digest(nar_hash: &str) -> Option<Value> {
    NarHash::parse(nar_hash).map(|h| json!({"sha256": h.hex()}))
}

fn external_parameters(facts: &BuildFacts) -> Value {
    let mut params = json!({"installable": facts.installable});
    if let Some(flake) = facts.flake {
        let mut source = serde_json::Map::new();
        if let Some(url) = &flake.url {
            source.insert("url".into(), json!(without_credentials(url)));
        }
        if let Some(rev) = flake.revision.as_ref().or(flake.locked.rev.as_ref()) {
            source.insert("rev".into(), json!(rev));
        }
        if let Some(nar_hash) = &flake.locked.nar_hash {
            source.insert("narHash".into(), json!(nar_hash));
        }
        params["flake"] = Value::Object(source);
    }
    params
}

fn resolved_dependencies(facts: &BuildFacts) -> Vec<Value> {
    let mut deps: Vec<Value> = facts
        .closure
        .paths
        .values()
        .filter_map(|p| {
            let digest = nar_digest(&p.nar_hash)?;
            Some(json!({
                "uri": p.path.display().to_string(),
                "name": p.base_name(),
                "digest": digest,
            }))
        })
        .collect();
    if let Some((name, digest)) = facts.base {
        deps.push(json!({
            "uri": format!("docker://{name}"),
            "name": "base image",
            "digest": {"sha256": digest.hex()},
        }));
    }
    if let Some(flake) = facts.flake {
        for (name, node) in &flake.locks.nodes {
            if *name == flake.locks.root {
                continue;
            }
            let Some(locked) = &node.locked else { continue };
            let mut digest = serde_json::Map::new();
            if let Some(d) = locked.nar_hash.as_deref().and_then(NarHash::parse) {
                digest.insert("sha256".into(), json!(d.hex()));
            }
            if let Some(rev) = &locked.rev {
                digest.insert("gitCommit".into(), json!(rev));
            }
            let mut dep = json!({"name": format!("flake input {name}"), "digest": digest});
            if let Some(url) = locked.to_url() {
                dep["uri"] = json!(without_credentials(&url));
            }
            deps.push(dep);
        }
    }
    deps
}

/// The statement that the manifest `digest` in `repository` (`HOST/REPO`) was made from `facts`.
pub fn statement(
    repository: &str,
    digest: &Digest,
    facts: &BuildFacts,
    run: &RunDetails,
) -> Vec<u8> {
    let value = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": repository, "digest": {"sha256": digest.hex()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external_parameters(facts),
                "resolvedDependencies": resolved_dependencies(facts),
            },
            "runDetails": run.to_json(),
        },
    });
    serde_json::to_vec(&value).expect("a statement serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::StorePath;
    use std::path::PathBuf;

    #[test]
    fn urls_lose_their_credentials_and_foreign_parameters() {
        assert_eq!(
            without_credentials(
                "git+https://gitlab-ci-token:SECRET@gitlab.example/g/p.git?ref=main&rev=abc"
            ),
            "git+https://gitlab.example/g/p.git?ref=main&rev=abc"
        );
        assert_eq!(
            without_credentials("https://host/a.tar.gz?private_token=SECRET&narHash=sha256-x"),
            "https://host/a.tar.gz?narHash=sha256-x"
        );
        assert_eq!(
            without_credentials("github:NixOS/nixpkgs/def"),
            "github:NixOS/nixpkgs/def"
        );
        assert_eq!(without_credentials("path:/src"), "path:/src");
    }

    #[test]
    fn the_statement_names_the_image_and_every_store_path() {
        let path = PathBuf::from("/nix/store/0c0fps3pd1bzkphfpj2fhdllw56wz4cl-hello-1.0");
        let mut closure = Closure::default();
        closure.paths.insert(
            path.clone(),
            StorePath {
                path,
                nar_hash: "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=".into(),
                nar_size: 1,
                references: vec![],
            },
        );
        let flake: FlakeMetadata = serde_json::from_str(
            r#"{"url":"git+file:///src?rev=abc","revision":"abc","locked":{"narHash":"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=","rev":"abc","type":"git"},
                "locks":{"root":"root","nodes":{"root":{"inputs":{"nixpkgs":"nixpkgs"}},
                "nixpkgs":{"locked":{"type":"github","owner":"NixOS","repo":"nixpkgs","rev":"def","narHash":"sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}}}}}"#,
        )
        .unwrap();
        let facts = BuildFacts {
            installable: ".#app",
            flake: Some(&flake),
            closure: &closure,
            base: None,
        };
        let run = RunDetails::from_vars(|_| None);
        let digest = Digest::of(b"manifest");
        let bytes = statement("127.0.0.1:5000/app", &digest, &facts, &run);
        assert_eq!(
            bytes,
            statement("127.0.0.1:5000/app", &digest, &facts, &run)
        );
        let s: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(s["subject"][0]["digest"]["sha256"], digest.hex());
        let build = &s["predicate"]["buildDefinition"];
        assert_eq!(build["externalParameters"]["flake"]["rev"], "abc");
        // The empty string's SHA-256, which that narHash spells in base64.
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let deps = build["resolvedDependencies"].as_array().unwrap();
        assert_eq!(deps[0]["digest"]["sha256"], empty);
        assert_eq!(
            deps[0]["uri"],
            "/nix/store/0c0fps3pd1bzkphfpj2fhdllw56wz4cl-hello-1.0"
        );
        assert_eq!(deps[1]["uri"], "github:NixOS/nixpkgs/def");
        assert_eq!(deps[1]["digest"]["gitCommit"], "def");
    }
}
