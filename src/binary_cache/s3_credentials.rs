//! The credentials of an S3 binary cache, found the way Nix (through the AWS SDK) finds them:
//! `profile=` in the URL names a profile of the shared credentials file and only that is read;
//! otherwise `AWS_ACCESS_KEY_ID` with `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), then
//! the profile `AWS_PROFILE` names (`default` when unset) of the shared credentials file,
//! `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`. The environment is passed in, so
//! the order is tested in-process. The secret never leaves `rusty_s3::Credentials`, whose
//! `Debug` shows the access key only.

use std::path::PathBuf;

use rusty_s3::Credentials;

/// Where a set of credentials was found, for `--verbose` and messages (never the secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    Environment,
    Profile { name: String, file: PathBuf },
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::Environment => write!(f, "AWS_ACCESS_KEY_ID"),
            CredentialSource::Profile { name, file } => {
                write!(f, "profile {name} of {}", file.display())
            }
        }
    }
}

/// The credentials for a bucket whose URL names `profile` (or none), given the environment.
pub fn find_credentials(
    profile: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(Credentials, CredentialSource)> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    if profile.is_none() {
        if let (Some(key), Some(secret)) = (set("AWS_ACCESS_KEY_ID"), set("AWS_SECRET_ACCESS_KEY"))
        {
            let credentials = match set("AWS_SESSION_TOKEN") {
                Some(token) => Credentials::new_with_token(key, secret, token),
                None => Credentials::new(key, secret),
            };
            return Some((credentials, CredentialSource::Environment));
        }
    }
    let name = profile
        .map(str::to_owned)
        .or_else(|| set("AWS_PROFILE"))
        .unwrap_or_else(|| "default".to_owned());
    let file = set("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")))?;
    let text = std::fs::read_to_string(&file).ok()?;
    let credentials = profile_credentials(&text, &name)?;
    Some((credentials, CredentialSource::Profile { name, file }))
}

/// The keys of `[profile]` in an AWS shared credentials file (INI: `[name]` sections,
/// `key = value` lines, `#` and `;` comments).
fn profile_credentials(text: &str, profile: &str) -> Option<Credentials> {
    let (mut key, mut secret, mut token) = (None, None, None);
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = section.trim() == profile;
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if !inside {
            continue;
        }
        let v = v.trim().to_owned();
        match k.trim() {
            "aws_access_key_id" => key = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" => token = Some(v),
            _ => {}
        }
    }
    let (key, secret) = (key?, secret?);
    Some(match token {
        Some(token) => Credentials::new_with_token(key, secret, token),
        None => Credentials::new(key, secret),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const FILE: &str = "# shared credentials\n[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = default-secret\n\n[ci]\naws_access_key_id=CIKEY\naws_secret_access_key=ci-secret\naws_session_token = ci-token\n; comment\n[partial]\naws_access_key_id = ONLYKEY\n";

    /// Finds credentials with `vars` as the environment and FILE as the credentials file.
    fn find(profile: Option<&str>, vars: &[(&str, &str)]) -> Option<(String, CredentialSource)> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(&file, FILE).unwrap();
        let mut env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.entry("AWS_SHARED_CREDENTIALS_FILE".into())
            .or_insert_with(|| file.display().to_string());
        let found = find_credentials(profile, &|name| env.get(name).cloned());
        found.map(|(c, source)| {
            let shown = format!("{}/{}/{}", c.key(), c.secret(), c.token().unwrap_or("-"));
            let source = match source {
                CredentialSource::Profile { name, .. } => CredentialSource::Profile {
                    name,
                    file: PathBuf::new(),
                },
                s => s,
            };
            (shown, source)
        })
    }

    fn profile(name: &str) -> CredentialSource {
        CredentialSource::Profile {
            name: name.into(),
            file: PathBuf::new(),
        }
    }

    #[test]
    fn credentials_are_looked_up_in_the_aws_order() {
        let env_keys = [
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ];
        // The environment's keys come first...
        assert_eq!(
            find(None, &env_keys),
            Some(("ENVKEY/env-secret/-".into(), CredentialSource::Environment))
        );
        let mut with_token = env_keys.to_vec();
        with_token.push(("AWS_SESSION_TOKEN", "env-token"));
        with_token.push(("AWS_PROFILE", "ci"));
        assert_eq!(
            find(None, &with_token),
            Some((
                "ENVKEY/env-secret/env-token".into(),
                CredentialSource::Environment
            ))
        );
        // ...but `profile=` in the URL reads that profile only, as Nix does.
        assert_eq!(
            find(Some("ci"), &env_keys),
            Some(("CIKEY/ci-secret/ci-token".into(), profile("ci")))
        );
        // A key id without its secret is no credential: the file is read.
        assert_eq!(
            find(None, &[("AWS_ACCESS_KEY_ID", "ENVKEY")]),
            Some(("DEFAULTKEY/default-secret/-".into(), profile("default")))
        );
        // AWS_PROFILE names the profile, `default` otherwise.
        assert_eq!(
            find(None, &[("AWS_PROFILE", "ci")]),
            Some(("CIKEY/ci-secret/ci-token".into(), profile("ci")))
        );
        // A missing profile, a profile without its secret, no file: no credentials.
        assert_eq!(find(Some("nope"), &[]), None);
        assert_eq!(find(Some("partial"), &[]), None);
        assert_eq!(
            find(
                None,
                &[("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")]
            ),
            None
        );
    }

    #[test]
    fn home_holds_the_default_credentials_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".aws")).unwrap();
        std::fs::write(home.path().join(".aws/credentials"), FILE).unwrap();
        let home_dir = home.path().display().to_string();
        let env = |name: &str| (name == "HOME").then(|| home_dir.clone());
        let (c, source) = find_credentials(None, &env).unwrap();
        assert_eq!(c.key(), "DEFAULTKEY");
        assert_eq!(
            source,
            CredentialSource::Profile {
                name: "default".into(),
                file: home.path().join(".aws/credentials")
            }
        );
    }

    #[test]
    fn the_secret_is_not_in_debug_output() {
        let (c, _) = find_credentials(None, &|name| match name {
            "AWS_ACCESS_KEY_ID" => Some("KEY".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("very-secret-value".into()),
            "AWS_SESSION_TOKEN" => Some("session-token-value".into()),
            _ => None,
        })
        .unwrap();
        let shown = format!("{c:?}");
        assert!(shown.contains("KEY"), "{shown}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        assert!(!shown.contains("session-token-value"), "{shown}");
    }
}
