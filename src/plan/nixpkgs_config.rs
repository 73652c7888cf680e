//! The image config nixpkgs' `stream_layered_image.py` writes for a dockerTools image, byte for
//! byte, so the config digest a push gives is the image ID of the tarball nixpkgs builds and
//! `docker load < result` agrees with the registry.
//!
//! The rules (the same from mid 2020 to now): `json.dumps(image, indent=4)` of an object with,
//! in this order, `created` (`datetime.isoformat()`: `1970-01-01T00:00:01+00:00`),
//! `architecture`, `os`, `config` (the conf's, its keys in the conf's order at every depth, as
//! `json.load` reads them: Nix's sorted order for a conf from `builtins.toJSON`, the author's
//! for a hand-written one), `rootfs` (`diff_ids`, then `type: "layers"`) and `history`: one `created`,
//! `comment` pair per layer, the comment being `store paths: ` and Python's repr of the layer's
//! paths (a base image's layer names its archive member). With a base image, `Env` is the
//! base's followed by the image's, one entry per name, at the name's first position with its
//! last value (a Python dict); it is appended to `config` when the image had none.

use serde_json::Value;

use crate::digest::Digest;
use crate::image::python_json::{dumps_indent4, repr_str_list, Ordered};

/// What nixpkgs' config is made of, before the layers' diff_ids are known.
#[derive(Clone, Debug, PartialEq)]
pub struct NixpkgsConfig {
    /// `created`, as Python's `isoformat()` writes it.
    pub created: String,
    pub architecture: String,
    pub os: String,
    /// The `config` object's entries, in order.
    pub config: Vec<(String, Ordered)>,
    /// One history comment per layer, bottom first.
    pub comments: Vec<String>,
}

impl NixpkgsConfig {
    /// The config for `config` (the conf's object, in the conf's order), with `base_env` (a
    /// base image's `Env`, `None` without a base image) merged in the way nixpkgs merges it.
    pub fn config_entries(config: &Ordered, base_env: Option<&[String]>) -> Vec<(String, Ordered)> {
        let mut entries = config.entries().unwrap_or_default();
        let Some(base_env) = base_env else {
            return entries;
        };
        let own: Vec<String> = entries
            .iter()
            .find(|(k, _)| k == "Env")
            .and_then(|(_, v)| v.items())
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut merged: Vec<(String, String)> = Vec::new();
        for entry in base_env.iter().chain(&own) {
            let name = entry.split_once('=').map_or(entry.as_str(), |(n, _)| n);
            match merged.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = entry.clone(),
                None => merged.push((name.to_owned(), entry.clone())),
            }
        }
        if merged.is_empty() {
            return entries;
        }
        let env = Ordered::Array(
            merged
                .into_iter()
                .map(|(_, e)| Ordered::Value(Value::String(e)))
                .collect(),
        );
        match entries.iter_mut().find(|(k, _)| k == "Env") {
            Some(slot) => slot.1 = env,
            None => entries.push(("Env".to_owned(), env)),
        }
        entries
    }

    /// The history comment of a layer of `paths` (store paths, or a base layer's member).
    pub fn comment(paths: &[String]) -> String {
        format!("store paths: {}", repr_str_list(paths))
    }

    /// The config's bytes, given each layer's diff_id (bottom first).
    pub fn to_bytes(&self, diff_ids: &[Digest]) -> Vec<u8> {
        let created = || Ordered::from(self.created.as_str());
        let image = Ordered::Object(vec![
            ("created".into(), created()),
            ("architecture".into(), self.architecture.as_str().into()),
            ("os".into(), self.os.as_str().into()),
            ("config".into(), Ordered::Object(self.config.clone())),
            (
                "rootfs".into(),
                Ordered::Object(vec![
                    (
                        "diff_ids".into(),
                        Ordered::Array(
                            diff_ids
                                .iter()
                                .map(|d| Ordered::from(d.to_string().as_str()))
                                .collect(),
                        ),
                    ),
                    ("type".into(), "layers".into()),
                ]),
            ),
            (
                "history".into(),
                Ordered::Array(
                    self.comments
                        .iter()
                        .map(|c| {
                            Ordered::Object(vec![
                                ("created".into(), created()),
                                ("comment".into(), c.as_str().into()),
                            ])
                        })
                        .collect(),
                ),
            ),
        ]);
        dumps_indent4(&image).into_bytes()
    }
}

/// `created` as nixpkgs' script writes it: Python's `datetime.isoformat()` of the conf's date,
/// which Nix wrote in UTC (`date -Iseconds`): `+00:00` rather than `Z`, and an offset the conf
/// gives kept as it is. `unix` is the date in seconds (for `now`, and for dates in other forms).
pub fn isoformat(conf_text: &str, unix: i64) -> String {
    // `YYYY-MM-DDTHH:MM:SS`, with `+HH:MM` or without an offset (a naive time stays naive).
    let b = conf_text.as_bytes();
    let isoformat_already = (conf_text.len() == 19
        || (conf_text.len() == 25 && matches!(b[19], b'+' | b'-')))
        && b[10] == b'T'
        && super::parse_unix(conf_text).is_some();
    if isoformat_already {
        return conf_text.to_owned();
    }
    let z = super::format_unix(unix);
    format!("{}+00:00", z.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use serde_json::json;

    #[test]
    fn a_base_env_is_merged_as_a_python_dict_would() {
        let config = json!({"Cmd": ["x"], "Env": ["B=image", "C=3"], "WorkingDir": "/"});
        let base = vec!["A=1".to_owned(), "B=base".to_owned(), "PATH".to_owned()];
        let entries = NixpkgsConfig::config_entries(&config.into(), Some(&base));
        let env = &entries.iter().find(|(k, _)| k == "Env").unwrap().1;
        assert_eq!(env.to_value(), json!(["A=1", "B=image", "PATH", "C=3"]));
        // Without Env of its own, the merged one comes last.
        let entries = NixpkgsConfig::config_entries(
            &json!({"Cmd": ["x"], "WorkingDir": "/"}).into(),
            Some(&base),
        );
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["Cmd", "WorkingDir", "Env"]);
        // No base image: the conf's config as it is.
        let entries = NixpkgsConfig::config_entries(&json!({"Cmd": ["x"]}).into(), None);
        assert_eq!(entries, vec![("Cmd".to_owned(), json!(["x"]).into())]);
    }

    #[test]
    fn the_bytes_are_those_of_python_json_dumps() {
        // Pinned from CPython 3.11: json.dumps(image, indent=4) of this image, built as
        // nixpkgs' script builds it (sha256 of the 871 bytes).
        let config = NixpkgsConfig {
            created: isoformat("1970-01-01T00:00:01+00:00", 1),
            architecture: "amd64".into(),
            os: "linux".into(),
            config: NixpkgsConfig::config_entries(
                &json!({"Cmd": ["/bin/app", "--ünï"], "Env": ["A=1"], "Labels": {"b": "2", "a": "1"}}).into(),
                None,
            ),
            comments: vec![
                NixpkgsConfig::comment(&["/nix/store/x-a".into(), "/nix/store/y-b".into()]),
                NixpkgsConfig::comment(&["0a/layer.tar".into()]),
            ],
        };
        let a = Digest::from_str(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let b = Digest::from_str(&format!("sha256:{}", "b".repeat(64))).unwrap();
        let bytes = config.to_bytes(&[a, b]);
        assert_eq!(bytes.len(), 871);
        assert_eq!(
            Digest::of(&bytes).to_string(),
            "sha256:363d778f978b16416cb3abeff5e2e6a0a6af11f9cfc924f22da90f12a4f2d61e"
        );
    }

    #[test]
    fn dates_are_written_as_isoformat() {
        assert_eq!(
            isoformat("1970-01-01T00:00:01Z", 1),
            "1970-01-01T00:00:01+00:00"
        );
        assert_eq!(
            isoformat("1970-01-01T00:00:01+00:00", 1),
            "1970-01-01T00:00:01+00:00"
        );
        assert_eq!(isoformat("now", 86_400), "1970-01-02T00:00:00+00:00");
        assert_eq!(isoformat("2024-05-01T12:00:00", 0), "2024-05-01T12:00:00");
        assert_eq!(
            isoformat("2024-05-01T12:00:00-02:00", 0),
            "2024-05-01T12:00:00-02:00"
        );
    }
}
