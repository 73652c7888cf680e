//! `nixpush rebase`: an image's config moved from one base to another without knowing the flags
//! it was made with. What the image has as its old base had it is the base's, and becomes the
//! new base's; what differs is the image's own, and stays. Pure data: `push/rebase.rs` reads
//! and writes the documents.

use serde_json::{Map, Value};

use super::base::{run_config_on, BaseImage};

/// Why an image's config cannot be moved to another base.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RebaseConfigError {
    #[error("its config is not an image config: {0}")]
    NotAConfig(String),
    #[error("its config has {actual} diff_ids, fewer than the old base's {base}")]
    TooFewLayers { actual: usize, base: usize },
    #[error("its first diff_ids are not the old base's")]
    OtherBase,
}

/// The image config `config` (of an image on `old`) as it is on `new`: the base's diff_ids and
/// history replaced, the run config's base part replaced (see [`rebased_run_config`]).
pub fn rebased_config(
    config: &[u8],
    old: &BaseImage,
    new: &BaseImage,
) -> Result<Value, RebaseConfigError> {
    let mut doc: Value =
        serde_json::from_slice(config).map_err(|e| RebaseConfigError::NotAConfig(e.to_string()))?;
    let Some(object) = doc.as_object_mut() else {
        return Err(RebaseConfigError::NotAConfig("not an object".into()));
    };
    let diff_ids: Vec<String> = object
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if diff_ids.len() < old.diff_ids.len() {
        return Err(RebaseConfigError::TooFewLayers {
            actual: diff_ids.len(),
            base: old.diff_ids.len(),
        });
    }
    if diff_ids
        .iter()
        .zip(&old.diff_ids)
        .any(|(ours, theirs)| *ours != theirs.to_string())
    {
        return Err(RebaseConfigError::OtherBase);
    }
    let own_diff_ids = &diff_ids[old.diff_ids.len()..];
    let new_diff_ids: Vec<Value> = new
        .diff_ids
        .iter()
        .map(|d| Value::from(d.to_string()))
        .chain(own_diff_ids.iter().map(|d| Value::from(d.as_str())))
        .collect();
    object.insert(
        "rootfs".into(),
        serde_json::json!({"type": "layers", "diff_ids": new_diff_ids}),
    );
    let history = match object.get("history") {
        Some(Value::Array(h)) => h.clone(),
        _ => Vec::new(),
    };
    let own_history = history.get(old.history.len()..).unwrap_or_default();
    let history: Vec<Value> = new.history.iter().chain(own_history).cloned().collect();
    object.insert("history".into(), Value::from(history));
    let run = object.get("config").cloned().unwrap_or_default();
    object.insert(
        "config".into(),
        rebased_run_config(&run, &old.config, &new.config),
    );
    Ok(doc)
}

/// The run config `image` (on a base whose run config is `old`) on a base whose run config is
/// `new`: a setting the image has as the old base had it (or lacks as it lacked it) is the
/// base's, and is the new base's now; one that differs (set, changed or removed by the image) is
/// the image's own and stays. `Env` entries, `Labels` and `ExposedPorts` are told apart one by
/// one, and the image's own laid over the new base's as a push with `--base` lays them.
pub fn rebased_run_config(image: &Value, old: &Value, new: &Value) -> Value {
    let empty = Map::new();
    let (image, old, new_map) = (
        image.as_object().unwrap_or(&empty),
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut own = Map::new();
    let mut out = Map::new();
    let keys: std::collections::BTreeSet<&String> = image
        .keys()
        .chain(old.keys())
        .chain(new_map.keys())
        .collect();
    for key in keys {
        let (ours, theirs) = (image.get(key), old.get(key));
        match key.as_str() {
            "Env" => {
                let old_env: Vec<&Value> = theirs
                    .and_then(Value::as_array)
                    .map(|a| a.iter().collect())
                    .unwrap_or_default();
                let mine: Vec<Value> = ours
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter(|e| !old_env.contains(e)).cloned().collect())
                    .unwrap_or_default();
                if !mine.is_empty() {
                    own.insert(key.clone(), Value::from(mine));
                }
            }
            "Labels" | "ExposedPorts" => {
                let old_map = theirs.and_then(Value::as_object);
                let mine: Map<String, Value> = ours
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter(|(k, v)| old_map.and_then(|o| o.get(*k)) != Some(*v))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                if !mine.is_empty() {
                    own.insert(key.clone(), Value::Object(mine));
                }
            }
            _ if ours == theirs => {}
            _ => match ours {
                Some(value) => {
                    own.insert(key.clone(), value.clone());
                }
                // Removed by the image (a `Cmd` dropped for its entrypoint): stays removed.
                None => {
                    out.insert(key.clone(), Value::Null);
                }
            },
        }
    }
    let mut merged = run_config_on(new, &Value::Object(own));
    if let Some(merged) = merged.as_object_mut() {
        for removed in out.keys() {
            merged.remove(removed);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::nix::Platform;
    use serde_json::json;

    fn base(run: Value, diff_ids: &[&str], history: usize) -> BaseImage {
        BaseImage {
            name: "r/base:1".into(),
            digest: Digest::of(b"m"),
            layers: Vec::new(),
            diff_ids: diff_ids.iter().map(|d| Digest::of(d.as_bytes())).collect(),
            history: (0..history)
                .map(|i| json!({"created_by": format!("{diff_ids:?} {i}")}))
                .collect(),
            config: run,
            platform: Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None,
            },
        }
    }

    #[test]
    fn the_bases_settings_are_replaced_and_the_images_own_kept() {
        let old = json!({
            "Env": ["PATH=/bin", "RELEASE=1"], "Cmd": ["sh"], "WorkingDir": "/srv",
            "Labels": {"vendor": "base", "release": "1"}, "User": "base"
        });
        let new = json!({
            "Env": ["PATH=/usr/bin:/bin", "RELEASE=2"], "Cmd": ["sh"], "WorkingDir": "/srv2",
            "Labels": {"vendor": "base", "release": "2"}, "StopSignal": "SIGINT"
        });
        // The image: on `old`, with its own entrypoint (Cmd dropped), env, label and user.
        let image = json!({
            "Env": ["PATH=/bin", "RELEASE=1", "APP=1"], "Entrypoint": ["/app"],
            "WorkingDir": "/srv", "Labels": {"vendor": "base", "release": "1", "app": "x"},
            "User": "app"
        });
        assert_eq!(
            rebased_run_config(&image, &old, &new),
            json!({
                "Env": ["PATH=/usr/bin:/bin", "RELEASE=2", "APP=1"], "Entrypoint": ["/app"],
                "WorkingDir": "/srv2", "Labels": {"vendor": "base", "release": "2", "app": "x"},
                "User": "app", "StopSignal": "SIGINT"
            })
        );
    }

    #[test]
    fn diff_ids_and_history_of_the_base_are_replaced() {
        let old = base(json!({}), &["o1", "o2"], 3);
        let new = base(json!({"Env": ["N=1"]}), &["n1"], 1);
        let config = json!({
            "architecture": "amd64", "os": "linux", "created": "x",
            "config": {"Entrypoint": ["/app"]},
            "rootfs": {"type": "layers", "diff_ids": [
                Digest::of(b"o1"), Digest::of(b"o2"), Digest::of(b"own")]},
            "history": [old.history[0], old.history[1], old.history[2], {"created_by": "nixpush"}]
        });
        let out = rebased_config(config.to_string().as_bytes(), &old, &new).unwrap();
        assert_eq!(
            out["rootfs"]["diff_ids"],
            json!([Digest::of(b"n1"), Digest::of(b"own")])
        );
        assert_eq!(
            out["history"],
            json!([new.history[0], {"created_by": "nixpush"}])
        );
        assert_eq!(
            out["config"],
            json!({"Entrypoint": ["/app"], "Env": ["N=1"]})
        );
        assert_eq!(out["created"], "x");

        let other = base(json!({}), &["x1"], 1);
        assert_eq!(
            rebased_config(config.to_string().as_bytes(), &other, &new),
            Err(RebaseConfigError::OtherBase)
        );
        let bigger = base(json!({}), &["o1", "o2", "own", "more"], 1);
        assert!(matches!(
            rebased_config(config.to_string().as_bytes(), &bigger, &new),
            Err(RebaseConfigError::TooFewLayers { .. })
        ));
    }
}
