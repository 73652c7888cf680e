//! The `conf.json` nixpkgs' `dockerTools.streamLayeredImage` writes, read into what an image
//! needs: the layers (lists of store paths), the customisation layer, the config, the dates and
//! the file ownership.
//!
//! Two shapes exist. Current nixpkgs has `mtime`, `uid`, `gid`, `uname` and `gname` (uid and gid
//! as JSON strings); older nixpkgs (mid 2020 to early 2024) lacks them, and then files are owned
//! by root (0), their mtime is `created`, and the layers' `/nix` and `/nix/store` entries have
//! mode 0555 rather than 0755. Either date may be `now`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::image::python_json::Ordered;
use crate::layer::{Owner, NIX_DIRS_MODE, OLD_NIX_DIRS_MODE};
use crate::nix::{check_store_path, STORE_DIR};
use crate::plan::{format_unix, isoformat, parse_unix};

/// A dockerTools image as its conf describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct DockerToolsConf {
    pub architecture: String,
    pub os: String,
    /// The image's `config` object.
    pub config: serde_json::Value,
    /// The same, in the conf's order (as nixpkgs' script reads and writes it).
    pub config_in_order: Ordered,
    pub store_layers: Vec<Vec<PathBuf>>,
    /// Store path holding `layer.tar` and `checksum`.
    pub customisation_layer: PathBuf,
    /// The tag of `repo_tag` (`name:tag`), if any.
    pub tag: Option<String>,
    /// `created`, as `YYYY-MM-DDTHH:MM:SSZ`.
    pub created: String,
    /// `created` as nixpkgs' script writes it in the config (Python's `isoformat()`).
    pub created_iso: String,
    /// The name of `repo_tag` (`name:tag`), if any.
    pub name: Option<String>,
    /// mtime and owner of every file of the store layers.
    pub owner: Owner,
    /// Mode of the store layers' `/nix/` and `/nix/store/` entries: 0755 for a conf of the
    /// current shape, 0555 for the older one (those nixpkgs versions wrote them so).
    pub nix_dirs_mode: u32,
    /// A base image archive (`fromImage`): its layers come first.
    pub from_image: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfError {
    #[error("not a dockerTools conf.json: {0}")]
    Shape(String),
    #[error("dockerTools conf.json: {field} {value:?} is not {expected}")]
    Field {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// A number that nixpkgs may write as a JSON string (`"uid": "1000"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Number(u64),
    Text(String),
}

#[derive(Deserialize)]
struct Raw {
    architecture: String,
    #[serde(default)]
    config: Option<Ordered>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    store_dir: Option<String>,
    #[serde(default)]
    from_image: Option<String>,
    store_layers: Vec<Vec<String>>,
    customisation_layer: String,
    #[serde(default)]
    repo_tag: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    mtime: Option<String>,
    #[serde(default)]
    uid: Option<Id>,
    #[serde(default)]
    gid: Option<Id>,
    #[serde(default)]
    uname: Option<String>,
    #[serde(default)]
    gname: Option<String>,
}

/// nixpkgs' default for `created` (and so for `mtime` in old confs).
const DEFAULT_CREATED: &str = "1970-01-01T00:00:01Z";

impl DockerToolsConf {
    /// Parses a conf.json; `now` is the time `now` dates stand for.
    pub fn parse(bytes: &[u8], now: i64) -> Result<Self, ConfError> {
        let raw: Raw =
            serde_json::from_slice(bytes).map_err(|e| ConfError::Shape(e.to_string()))?;
        if let Some(dir) = raw.store_dir.as_deref() {
            if dir != STORE_DIR {
                return Err(ConfError::Field {
                    field: "store_dir",
                    value: dir.to_owned(),
                    expected: "/nix/store",
                });
            }
        }
        let time = |field: &'static str, value: &str| -> Result<i64, ConfError> {
            if value == "now" {
                return Ok(now);
            }
            parse_unix(value).ok_or_else(|| ConfError::Field {
                field,
                value: value.to_owned(),
                expected: "an ISO 8601 date-time or \"now\"",
            })
        };
        // `uid`/`gid`/`uname`/`gname` came in one change (early 2024) with the 0755 `/nix`
        // entries; `mtime` came later. Any of them marks a conf of the current rules.
        let current = raw.uid.is_some()
            || raw.gid.is_some()
            || raw.uname.is_some()
            || raw.gname.is_some()
            || raw.mtime.is_some();
        let created_text = raw.created.as_deref().unwrap_or(DEFAULT_CREATED);
        let created = time("created", created_text)?;
        let mtime = match raw.mtime.as_deref() {
            Some(m) => time("mtime", m)?,
            None => created,
        };
        let mtime = u64::try_from(mtime).map_err(|_| ConfError::Field {
            field: "mtime",
            value: format_unix(mtime),
            expected: "after 1970",
        })?;
        let id = |field: &'static str, v: Option<Id>| -> Result<u64, ConfError> {
            match v {
                None => Ok(0),
                Some(Id::Number(n)) => Ok(n),
                Some(Id::Text(t)) => t.trim().parse().map_err(|_| ConfError::Field {
                    field,
                    value: t,
                    expected: "a number",
                }),
            }
        };
        let path = |field: &'static str, p: &str| {
            check_store_path(p).map_err(|_| ConfError::Field {
                field,
                value: p.to_owned(),
                expected: "a store path",
            })
        };
        let store_layers = raw
            .store_layers
            .iter()
            .map(|layer| layer.iter().map(|p| path("store_layers", p)).collect())
            .collect::<Result<Vec<Vec<PathBuf>>, _>>()?;
        let name_tag = raw
            .repo_tag
            .as_deref()
            .and_then(|rt| rt.rsplit_once(':'))
            .filter(|(name, tag)| !tag.contains('/') && !name.is_empty() && !tag.is_empty());
        let tag = name_tag.map(|(_, tag)| tag.to_owned());
        let config_in_order = raw.config.unwrap_or(Ordered::Object(Vec::new()));
        let name = name_tag.map(|(name, _)| name.to_owned());
        Ok(DockerToolsConf {
            architecture: raw.architecture,
            os: raw.os.unwrap_or_else(|| "linux".to_owned()),
            config: config_in_order.to_value(),
            config_in_order,
            store_layers,
            customisation_layer: path("customisation_layer", &raw.customisation_layer)?,
            tag,
            name,
            created: format_unix(created),
            created_iso: isoformat(created_text, created),
            owner: Owner {
                mtime,
                uid: id("uid", raw.uid)?,
                gid: id("gid", raw.gid)?,
                uname: raw.uname.unwrap_or_else(|| "root".to_owned()),
                gname: raw.gname.unwrap_or_else(|| "root".to_owned()),
            },
            nix_dirs_mode: if current {
                NIX_DIRS_MODE
            } else {
                OLD_NIX_DIRS_MODE
            },
            from_image: match raw.from_image {
                Some(p) => Some(path("from_image", &p)?),
                None => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a";
    const C: &str = "/nix/store/cccccccccccccccccccccccccccccccc-custom";

    fn conf(extra: &str) -> String {
        format!(
            r#"{{"architecture":"arm64","config":{{"Cmd":["x"]}},"os":"linux","store_dir":"/nix/store","from_image":null,
                "store_layers":[["{A}"]],"customisation_layer":"{C}","repo_tag":"reg:5000/app:1.2"{extra}}}"#
        )
    }

    #[test]
    fn reads_the_current_shape_with_string_ids() {
        let text = conf(
            r#","created":"1970-01-01T00:00:01+00:00","mtime":"2020-01-01T00:00:00+00:00","uid":"1000","gid":"100","uname":"app","gname":"users""#,
        );
        let c = DockerToolsConf::parse(text.as_bytes(), 0).unwrap();
        assert_eq!(c.architecture, "arm64");
        assert_eq!(c.store_layers, vec![vec![PathBuf::from(A)]]);
        assert_eq!(c.customisation_layer, PathBuf::from(C));
        assert_eq!(c.tag.as_deref(), Some("1.2"), "the tag, not the port");
        assert_eq!(c.created, "1970-01-01T00:00:01Z");
        assert_eq!(
            c.owner,
            Owner {
                mtime: 1_577_836_800,
                uid: 1000,
                gid: 100,
                uname: "app".into(),
                gname: "users".into()
            }
        );
        assert_eq!(c.config, serde_json::json!({"Cmd": ["x"]}));
    }

    #[test]
    fn a_hand_written_config_keeps_its_order() {
        let text = format!(
            r#"{{"architecture":"amd64","config":{{"WorkingDir":"/","Cmd":["x"],"Labels":{{"z":"1","a":"2"}}}},
                "store_layers":[["{A}"]],"customisation_layer":"{C}"}}"#
        );
        let c = DockerToolsConf::parse(text.as_bytes(), 0).unwrap();
        let keys: Vec<String> = c
            .config_in_order
            .entries()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["WorkingDir", "Cmd", "Labels"]);
        let labels = &c.config_in_order.entries().unwrap()[2].1;
        let label_keys: Vec<String> = labels
            .entries()
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(label_keys, ["z", "a"]);
        assert_eq!(c.config, c.config_in_order.to_value());
    }

    #[test]
    fn old_shape_takes_mtime_from_created_and_root_ownership() {
        let text = conf(r#","created":"2001-02-03T04:05:06Z""#);
        let c = DockerToolsConf::parse(text.as_bytes(), 0).unwrap();
        assert_eq!(
            c.owner,
            Owner {
                mtime: 981_173_106,
                ..Owner::default()
            }
        );
        assert_eq!(c.created, "2001-02-03T04:05:06Z");
    }

    #[test]
    fn now_dates_are_the_given_now() {
        let text = conf(r#","created":"now","mtime":"now""#);
        let c = DockerToolsConf::parse(text.as_bytes(), 1_700_000_000).unwrap();
        assert_eq!(c.owner.mtime, 1_700_000_000);
        assert_eq!(c.created, format_unix(1_700_000_000));
    }

    #[test]
    fn rejects_what_it_cannot_reproduce() {
        assert!(DockerToolsConf::parse(b"{}", 0).is_err());
        let other_store = conf("").replace(
            "\"/nix/store\",\"from_image\"",
            "\"/gnu/store\",\"from_image\"",
        );
        assert!(matches!(
            DockerToolsConf::parse(other_store.as_bytes(), 0),
            Err(ConfError::Field {
                field: "store_dir",
                ..
            })
        ));
        let bad_uid = conf(r#","uid":"root""#);
        assert!(matches!(
            DockerToolsConf::parse(bad_uid.as_bytes(), 0),
            Err(ConfError::Field { field: "uid", .. })
        ));
        let bad_date = conf(r#","created":"yesterday""#);
        assert!(DockerToolsConf::parse(bad_date.as_bytes(), 0).is_err());
    }
}
