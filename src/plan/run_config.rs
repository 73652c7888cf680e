//! Image run settings from command-line flags (`--entrypoint`, `--env`, ...), checked before any
//! work starts, and the one rule that needs the built image: a relative entrypoint names a file
//! inside the image's top store path.

use std::path::Path;

use crate::image::{EmptyObject, RunConfig};

/// The flags as given, after the syntax checks in [`ConfigFlags::parse_*`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigFlags {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub expose: Vec<String>,
    pub labels: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{flag} {value:?}: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("entrypoint {relative:?} does not exist in {}", top.display())]
    MissingEntrypoint {
        relative: String,
        top: std::path::PathBuf,
    },
}

impl ConfigFlags {
    /// `--entrypoint`/`--cmd`: a JSON array of strings (`'["bin/app","--serve"]'`), or one word
    /// taken as a single program path (so paths with spaces need no quoting tricks).
    pub fn parse_command(flag: &'static str, value: &str) -> Result<Vec<String>, ConfigError> {
        if value.trim_start().starts_with('[') {
            serde_json::from_str::<Vec<String>>(value).map_err(|_| ConfigError::Invalid {
                flag,
                value: value.to_owned(),
                reason: "not a JSON array of strings",
            })
        } else if value.is_empty() {
            Err(ConfigError::Invalid {
                flag,
                value: value.to_owned(),
                reason: "empty",
            })
        } else {
            Ok(vec![value.to_owned()])
        }
    }

    /// `K=V` for `--env` and `--label`.
    pub fn parse_key_value(
        flag: &'static str,
        value: &str,
    ) -> Result<(String, String), ConfigError> {
        match value.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            _ => Err(ConfigError::Invalid {
                flag,
                value: value.to_owned(),
                reason: "expected KEY=VALUE",
            }),
        }
    }

    /// `--expose PORT[/tcp|udp|sctp]`, normalised to `PORT/proto`.
    pub fn parse_port(value: &str) -> Result<String, ConfigError> {
        let bad = |reason| ConfigError::Invalid {
            flag: "--expose",
            value: value.to_owned(),
            reason,
        };
        let (port, proto) = value.split_once('/').unwrap_or((value, "tcp"));
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(bad("the port must be a number from 1 to 65535"));
        }
        if !matches!(proto, "tcp" | "udp" | "sctp") {
            return Err(bad("the protocol must be tcp, udp or sctp"));
        }
        Ok(format!("{port}/{proto}"))
    }

    /// The names of the flags that were given, if any (they cannot apply to an image that
    /// carries its own configuration).
    pub fn set_flags(&self) -> Option<Vec<&'static str>> {
        let mut set = Vec::new();
        let mut note = |given: bool, name: &'static str| {
            if given {
                set.push(name);
            }
        };
        note(!self.entrypoint.is_empty(), "--entrypoint");
        note(!self.cmd.is_empty(), "--cmd");
        note(!self.env.is_empty(), "--env");
        note(self.workdir.is_some(), "--workdir");
        note(self.user.is_some(), "--user");
        note(!self.expose.is_empty(), "--expose");
        note(!self.labels.is_empty(), "--label");
        (!set.is_empty()).then_some(set)
    }

    /// The run config for an image whose top store path is `top`.
    pub fn resolve(&self, top: &Path) -> Result<RunConfig, ConfigError> {
        if let Some(relative) = self.relative_entrypoint() {
            if std::fs::symlink_metadata(top.join(relative)).is_err() {
                return Err(self.missing_entrypoint(top));
            }
        }
        Ok(self.resolve_unchecked(top))
    }

    /// The entrypoint's program when it is relative to the top store path.
    pub fn relative_entrypoint(&self) -> Option<&str> {
        self.entrypoint
            .first()
            .map(String::as_str)
            .filter(|e| !e.starts_with('/'))
    }

    /// The error of a relative entrypoint that `top` does not hold.
    pub fn missing_entrypoint(&self, top: &Path) -> ConfigError {
        ConfigError::MissingEntrypoint {
            relative: self.relative_entrypoint().unwrap_or_default().to_owned(),
            top: top.to_owned(),
        }
    }

    /// [`ConfigFlags::resolve`] without looking for a relative entrypoint in `top`: for a top
    /// path that is not in the local store, whose files are checked another way.
    pub fn resolve_unchecked(&self, top: &Path) -> RunConfig {
        let mut entrypoint = self.entrypoint.clone();
        if let Some(first) = entrypoint.first_mut() {
            if !first.starts_with('/') {
                *first = top.join(first.as_str()).to_string_lossy().into_owned();
            }
        }
        // Later --env values for the same name win, as with `docker run -e`.
        let mut env: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.env {
            env.retain(|(old, _)| old != k);
            env.push((k.clone(), v.clone()));
        }
        RunConfig {
            entrypoint,
            cmd: self.cmd.clone(),
            env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
            working_dir: self.workdir.clone(),
            user: self.user.clone(),
            exposed_ports: self
                .expose
                .iter()
                .map(|p| (p.clone(), EmptyObject {}))
                .collect(),
            // Later --label values for the same key win.
            labels: self.labels.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_one_word_or_a_json_array() {
        assert_eq!(
            ConfigFlags::parse_command("--cmd", "bin/app").unwrap(),
            ["bin/app"]
        );
        assert_eq!(
            ConfigFlags::parse_command("--cmd", r#"["a b", "--x"]"#).unwrap(),
            ["a b", "--x"]
        );
        assert!(ConfigFlags::parse_command("--cmd", "[1]").is_err());
        assert!(ConfigFlags::parse_command("--cmd", "").is_err());
    }

    #[test]
    fn ports_and_key_values_are_checked() {
        assert_eq!(ConfigFlags::parse_port("80").unwrap(), "80/tcp");
        assert_eq!(ConfigFlags::parse_port("53/udp").unwrap(), "53/udp");
        for bad in ["0", "70000", "http", "80/icmp", ""] {
            assert!(ConfigFlags::parse_port(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ConfigFlags::parse_key_value("--env", "A=b=c").unwrap(),
            ("A".to_owned(), "b=c".to_owned())
        );
        assert!(ConfigFlags::parse_key_value("--env", "=x").is_err());
        assert!(ConfigFlags::parse_key_value("--env", "novalue").is_err());
    }

    #[test]
    fn relative_entrypoint_resolves_inside_the_top_path_and_must_exist() {
        let top = tempfile::tempdir().unwrap();
        std::fs::create_dir(top.path().join("bin")).unwrap();
        std::fs::write(top.path().join("bin/app"), "").unwrap();
        let flags = ConfigFlags {
            entrypoint: vec!["bin/app".into(), "arg".into()],
            env: vec![
                ("A".into(), "1".into()),
                ("B".into(), "2".into()),
                ("A".into(), "3".into()),
            ],
            ..ConfigFlags::default()
        };
        let rc = flags.resolve(top.path()).unwrap();
        assert_eq!(
            rc.entrypoint[0],
            top.path().join("bin/app").to_str().unwrap()
        );
        assert_eq!(rc.entrypoint[1], "arg");
        assert_eq!(rc.env, ["B=2", "A=3"]);
        let missing = ConfigFlags {
            entrypoint: vec!["bin/nope".into()],
            ..ConfigFlags::default()
        };
        assert!(matches!(
            missing.resolve(top.path()),
            Err(ConfigError::MissingEntrypoint { .. })
        ));
    }
}
