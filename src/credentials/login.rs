//! `nixpush login` and `nixpush logout`: registry credentials kept in the OS keyring (see
//! [`super::keyring`]) for later pushes. The credentials are stored as given, not tried
//! against the registry first: the next push checks them before it uploads anything.

use std::io::{BufRead, IsTerminal, Read};

use crate::credentials::{CredentialStore, OsKeyring, StoreError, KEYRING_KIND};
use crate::reference::{Reference, ReferenceError, DOCKER_HUB};
use crate::registry::{Credentials, Secret};

/// Hosts that are Docker Hub under another name (`docker login` accepts them all).
const DOCKER_HUB_ALIASES: [&str; 3] = ["index.docker.io", "registry-1.docker.io", "docker.io"];

/// A checked `nixpush login`: which registry, who, and where the password comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginRequest {
    /// The registry host as pushes name it (`docker.io` for Docker Hub).
    pub registry: String,
    pub username: Option<String>,
    /// Read the password from standard input (else from the terminal, without echo).
    pub password_stdin: bool,
}

/// Why `login` or `logout` failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("{0:?} is not a registry host: write HOST[:PORT], e.g. ghcr.io or localhost:5000")]
    Registry(String, #[source] Option<ReferenceError>),
    #[error("{0}")]
    Usage(&'static str),
    #[error("could not read the {what} from standard input")]
    Read {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// One line, with the platform's reason at the end: the chain of zbus errors repeats it.
    #[error("no keyring service is available ({KEYRING_KIND}): use NIXPUSH_USERNAME/NIXPUSH_PASSWORD, --password-stdin, or `docker login` ({cause})")]
    NoKeyring { cause: String },
    #[error("cannot store the credentials for {registry}")]
    Store {
        registry: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot remove the credentials for {registry}")]
    Remove {
        registry: String,
        #[source]
        source: StoreError,
    },
}

impl LoginError {
    /// Whether the arguments were wrong (exit code 2) rather than the keyring.
    pub fn is_usage(&self) -> bool {
        matches!(self, LoginError::Registry(..) | LoginError::Usage(_))
    }

    fn from_store(registry: &str, e: StoreError, remove: bool) -> LoginError {
        match (e, remove) {
            (StoreError::NoService(cause), _) => LoginError::NoKeyring {
                cause: cause.to_string(),
            },
            (source, false) => LoginError::Store {
                registry: registry.to_owned(),
                source,
            },
            (source, true) => LoginError::Remove {
                registry: registry.to_owned(),
                source,
            },
        }
    }
}

/// The registry host a push to `input/...` would use: `docker login`'s spellings accepted
/// (`https://ghcr.io`, `https://index.docker.io/v1/`), Docker Hub's aliases made `docker.io`.
pub fn registry_host(input: &str) -> Result<String, LoginError> {
    let bad = |source| LoginError::Registry(input.to_owned(), source);
    let host = input
        .strip_prefix("https://")
        .or_else(|| input.strip_prefix("http://"))
        .unwrap_or(input);
    // What follows the host in a URL (`/v1/`) names no other registry.
    let host = host.split('/').next().unwrap_or_default();
    if DOCKER_HUB_ALIASES.contains(&host) {
        return Ok(DOCKER_HUB.to_owned());
    }
    let reference = Reference::parse(&format!("{host}/x")).map_err(|e| bad(Some(e)))?;
    // `name/x` with no dot, colon or `localhost` in `name` is a Docker Hub repository.
    if reference.registry() != host {
        return Err(bad(None));
    }
    Ok(host.to_owned())
}

/// `nixpush login`: reads the password, stores the credentials in the OS keyring, and says so.
pub fn login(request: &LoginRequest) -> Result<String, LoginError> {
    let credentials = read_credentials(request)?;
    store_login(OsKeyring::shared(), &request.registry, &credentials)?;
    Ok(format!(
        "stored the credentials of {} for {} in the keyring (not checked yet: the next push checks them)",
        credentials.username, request.registry
    ))
}

/// `nixpush logout REGISTRY`: removes what `login` stored. Nothing stored is not an error.
pub fn logout(registry: &str) -> Result<String, LoginError> {
    let registry = registry_host(registry)?;
    logout_from(OsKeyring::shared(), &registry)
}

/// Stores `credentials` for `registry` in `store`.
pub fn store_login(
    store: &dyn CredentialStore,
    registry: &str,
    credentials: &Credentials,
) -> Result<(), LoginError> {
    store
        .set(registry, credentials)
        .map_err(|e| LoginError::from_store(registry, e, false))
}

/// Removes the credentials for `registry` from `store`; the message to show.
pub fn logout_from(store: &dyn CredentialStore, registry: &str) -> Result<String, LoginError> {
    match store.delete(registry) {
        Ok(true) => Ok(format!(
            "removed the credentials for {registry} from the keyring"
        )),
        Ok(false) => Ok(format!("not logged in to {registry}: nothing to remove")),
        Err(e) => Err(LoginError::from_store(registry, e, true)),
    }
}

/// The user name (flag, else asked on the terminal) and the password (standard input with
/// `--password-stdin`, else asked on the terminal without echo).
fn read_credentials(request: &LoginRequest) -> Result<Credentials, LoginError> {
    let interactive = std::io::stdin().is_terminal();
    let username = match &request.username {
        Some(u) => u.clone(),
        None if interactive => {
            eprint!("Username for {}: ", request.registry);
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|source| LoginError::Read {
                    what: "user name",
                    source,
                })?;
            line.trim().to_owned()
        }
        None => {
            return Err(LoginError::Usage(
                "standard input is not a terminal: give the user name with --username",
            ))
        }
    };
    if username.is_empty() {
        return Err(LoginError::Usage("the user name is empty"));
    }
    let password = if request.password_stdin {
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .map_err(|source| LoginError::Read {
                what: "password",
                source,
            })?;
        password.trim_end_matches(['\n', '\r']).to_owned()
    } else if interactive {
        rpassword::prompt_password("Password: ").map_err(|source| LoginError::Read {
            what: "password",
            source,
        })?
    } else {
        return Err(LoginError::Usage(
            "standard input is not a terminal: pipe the password (or token) in with --password-stdin",
        ));
    };
    if password.is_empty() {
        return Err(LoginError::Usage("the password is empty"));
    }
    Ok(Credentials {
        username,
        password: Secret::new(password),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::KeyringStore;
    use crate::progress::Silent;

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            username: user.into(),
            password: Secret::new(password),
        }
    }

    #[test]
    fn registry_hosts_are_normalised_like_references() {
        for (input, host) in [
            ("ghcr.io", "ghcr.io"),
            ("https://ghcr.io", "ghcr.io"),
            ("localhost:5000", "localhost:5000"),
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("[::1]:5000", "[::1]:5000"),
            ("docker.io", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("https://index.docker.io/v1/", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
        ] {
            assert_eq!(registry_host(input).unwrap(), host, "{input}");
        }
        for bad in ["", "myregistry", "ghcr.io:http", "-r.io", "https://"] {
            let e = registry_host(bad).unwrap_err();
            assert!(e.is_usage(), "{bad}");
        }
    }

    #[test]
    fn logout_says_when_nothing_was_stored() {
        let store = KeyringStore::in_memory();
        store_login(&store, "r.io", &creds("u", "p")).unwrap();
        assert!(logout_from(&store, "r.io").unwrap().starts_with("removed"));
        assert!(logout_from(&store, "r.io")
            .unwrap()
            .starts_with("not logged in to r.io"));
    }

    #[test]
    fn no_keyring_points_at_the_alternatives() {
        let e = LoginError::from_store("r.io", StoreError::NoService("no bus".into()), false);
        assert!(!e.is_usage());
        let shown = e.to_string();
        assert!(
            shown.starts_with("no keyring service is available"),
            "{shown}"
        );
        assert!(
            shown.contains("NIXPUSH_USERNAME/NIXPUSH_PASSWORD"),
            "{shown}"
        );
        assert!(shown.contains("--password-stdin") && shown.contains("docker login"));
    }

    /// Login, then the push's lookup, in one process: explicit beats the keyring, which beats
    /// Docker's config, which beats nothing.
    #[test]
    fn a_push_finds_what_login_stored_in_order_of_sources() {
        let store = KeyringStore::in_memory();
        let registry = registry_host("https://r.io:5000").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("config.json");
        // "ZG9ja2VyOmQ=" is base64 of "docker:d".
        std::fs::write(
            &docker,
            r#"{"auths":{"r.io:5000":{"auth":"ZG9ja2VyOmQ="}}}"#,
        )
        .unwrap();
        let files = || vec![docker.clone()];
        let find = |explicit: Option<&Credentials>| {
            crate::credentials::first_credentials(explicit, &store, files(), "r.io:5000", &Silent)
                .unwrap()
                .map(|c| c.username)
        };

        assert_eq!(find(None).as_deref(), Some("docker"), "docker config");
        store_login(&store, &registry, &creds("keyring", "k")).unwrap();
        assert_eq!(find(None).as_deref(), Some("keyring"), "keyring first");
        let explicit = creds("explicit", "e");
        assert_eq!(find(Some(&explicit)).as_deref(), Some("explicit"));
        logout_from(&store, &registry).unwrap();
        assert_eq!(find(None).as_deref(), Some("docker"), "after logout");
        std::fs::remove_file(&docker).unwrap();
        assert_eq!(find(None), None, "anonymous");
    }

    #[test]
    fn a_failing_keyring_falls_through_to_docker_config() {
        struct Broken;
        impl CredentialStore for Broken {
            fn get(&self, _: &str) -> Result<Option<Credentials>, StoreError> {
                Err(StoreError::Locked("locked".into()))
            }
            fn set(&self, _: &str, _: &Credentials) -> Result<(), StoreError> {
                unreachable!()
            }
            fn delete(&self, _: &str) -> Result<bool, StoreError> {
                unreachable!()
            }
        }
        #[derive(Default)]
        struct Phases(std::sync::Mutex<Vec<String>>);
        impl crate::progress::Reporter for Phases {
            fn warning(&self, warning: &crate::progress::Warning) {
                self.0.lock().unwrap().push(warning.to_string());
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("config.json");
        std::fs::write(&docker, r#"{"auths":{"r.io":{"auth":"ZG9ja2VyOmQ="}}}"#).unwrap();
        let phases = Phases::default();
        let found =
            crate::credentials::first_credentials(None, &Broken, vec![docker], "r.io", &phases);
        assert_eq!(found.unwrap().unwrap().username, "docker");
        let phases = phases.0.into_inner().unwrap();
        assert_eq!(phases.len(), 1, "{phases:?}");
        assert!(phases[0].contains("keyring is locked"), "{phases:?}");
    }
}
