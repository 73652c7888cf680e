//! The OCI image config (`application/vnd.oci.image.config.v1+json`): platform, run settings,
//! the layers' diff_ids and one history entry per layer.

use std::collections::BTreeMap;

use serde::Serialize;

use super::canonical_json;
use crate::digest::Digest;

/// How a container of the image runs (the config's `config` object, Docker's field names).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunConfig {
    #[serde(rename = "Entrypoint", skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    #[serde(rename = "Cmd", skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    #[serde(rename = "Env", skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(rename = "WorkingDir", skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(rename = "User", skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(rename = "ExposedPorts", skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, EmptyObject>,
    #[serde(rename = "Labels", skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `{}`, the value type of `ExposedPorts`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EmptyObject {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub created: String,
    pub created_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: &'a [Digest],
}

/// An image config ready to serialise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageConfig {
    pub created: String,
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    /// The `config` object: a [`RunConfig`] from flags, or what dockerTools wrote.
    pub config: serde_json::Value,
    pub diff_ids: Vec<Digest>,
    /// A base image's history, as it is, before the image's own.
    pub base_history: Vec<serde_json::Value>,
    pub history: Vec<HistoryEntry>,
}

impl ImageConfig {
    /// The config blob's exact bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Doc<'a> {
            created: &'a str,
            architecture: &'a str,
            os: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            variant: Option<&'a str>,
            config: &'a serde_json::Value,
            rootfs: RootFs<'a>,
            history: Vec<serde_json::Value>,
        }
        canonical_json(&Doc {
            created: &self.created,
            architecture: &self.architecture,
            os: &self.os,
            variant: self.variant.as_deref(),
            config: &self.config,
            rootfs: RootFs {
                kind: "layers",
                diff_ids: &self.diff_ids,
            },
            history: self
                .base_history
                .iter()
                .cloned()
                .chain(
                    self.history
                        .iter()
                        .map(|h| serde_json::to_value(h).expect("a history entry serialises")),
                )
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_has_sorted_keys_and_omits_empty_fields() {
        let mut labels = BTreeMap::new();
        labels.insert("z".to_owned(), "1".to_owned());
        labels.insert("a".to_owned(), "2".to_owned());
        let cfg = ImageConfig {
            created: "1970-01-01T00:00:01Z".into(),
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
            config: serde_json::to_value(RunConfig {
                entrypoint: vec!["/bin/app".into()],
                labels,
                ..RunConfig::default()
            })
            .unwrap(),
            diff_ids: vec![Digest::of(b"x")],
            base_history: vec![],
            history: vec![],
        };
        let text = String::from_utf8(cfg.to_bytes()).unwrap();
        let expected = format!(
            r#"{{"architecture":"amd64","config":{{"Entrypoint":["/bin/app"],"Labels":{{"a":"2","z":"1"}}}},"created":"1970-01-01T00:00:01Z","history":[],"os":"linux","rootfs":{{"diff_ids":["{}"],"type":"layers"}}}}"#,
            Digest::of(b"x")
        );
        assert_eq!(text, expected);
    }
}
