//! Registry credentials kept in the OS keyring by `nixpush login`: one entry per registry host
//! (service `nixpush`, user the host as written, `docker.io` for Docker Hub), its secret a small
//! JSON `{"username","password"}`. Behind [`CredentialStore`] so that tests use keyring-core's
//! in-memory mock store, shared between a login and a push in one process.
//!
//! The keyring is the Secret Service over D-Bus on Linux (zbus, pure Rust: no libdbus) and the
//! Keychain on macOS. A machine without one (headless CI) is [`StoreError::NoService`], told
//! apart from every other failure: `login` explains the alternatives, a push moves on to the
//! next source. Keyring calls block (D-Bus round trips, perhaps an unlock prompt), so a push
//! bounds its lookup with [`within`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::registry::{Credentials, Secret};

/// The keyring service name nixpush's entries are filed under.
pub const SERVICE: &str = "nixpush";

/// How long a push waits for the keyring: connecting and reading one entry takes tens of
/// milliseconds, so this is only reached by a hung D-Bus or an unlock prompt nobody answers,
/// and then the push goes on without it.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the keyring is on this platform, for messages.
#[cfg(target_os = "macos")]
pub const KEYRING_KIND: &str = "the macOS Keychain";
/// What the keyring is on this platform, for messages.
#[cfg(not(target_os = "macos"))]
pub const KEYRING_KIND: &str = "Secret Service over D-Bus";

/// Where registry credentials are stored, one entry per registry host.
pub trait CredentialStore: Send + Sync {
    /// The credentials stored for `registry`, if any.
    fn get(&self, registry: &str) -> Result<Option<Credentials>, StoreError>;
    /// Stores `credentials` for `registry`, replacing any stored before.
    fn set(&self, registry: &str, credentials: &Credentials) -> Result<(), StoreError>;
    /// Removes the credentials stored for `registry`; false when there were none.
    fn delete(&self, registry: &str) -> Result<bool, StoreError>;
}

/// What the keyring's platform layer (zbus, Security.framework) said went wrong.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Why the keyring could not be used. No variant holds any part of a secret: keyring errors
/// that carry the stored bytes become [`StoreError::Malformed`] without them. The cause is the
/// platform's error (keyring-core's own wrapper would repeat it in the message chain).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// There is no keyring to talk to: no D-Bus session bus, nothing on it providing the Secret
    /// Service, or a platform without a supported keyring.
    #[error("no keyring service is available ({KEYRING_KIND})")]
    NoService(#[source] Cause),
    /// The keyring is there but refused: locked, or the unlock prompt was dismissed.
    #[error("the keyring is locked or refused access")]
    Locked(#[source] Cause),
    #[error("the keyring did not answer within {} s", .0.as_secs())]
    TimedOut(Duration),
    #[error("the keyring entry for {registry} does not hold credentials nixpush stored")]
    Malformed { registry: String },
    #[error("the keyring failed")]
    Failed(#[source] Cause),
}

impl StoreError {
    /// Sorts a keyring-core error, dropping any secret bytes it carries.
    fn from_keyring(registry: &str, e: keyring_core::Error) -> StoreError {
        use keyring_core::Error as E;
        match e {
            E::NoStorageAccess(cause) => StoreError::Locked(cause),
            E::PlatformFailure(cause) => StoreError::Failed(cause),
            E::NoDefaultStore => StoreError::NoService(Box::new(e)),
            E::BadEncoding(_) | E::BadDataFormat(..) => StoreError::Malformed {
                registry: registry.to_owned(),
            },
            other => StoreError::Failed(Box::new(other)),
        }
    }

    /// A failure to reach the keyring at all.
    fn no_service(e: keyring_core::Error) -> StoreError {
        match e {
            keyring_core::Error::PlatformFailure(cause) => StoreError::NoService(cause),
            other => StoreError::NoService(Box::new(other)),
        }
    }
}

/// The secret of an entry.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSecret {
    username: String,
    password: String,
}

/// A [`CredentialStore`] on any keyring-core store: the OS one, or the in-memory mock.
pub struct KeyringStore {
    store: Arc<keyring_core::CredentialStore>,
}

impl KeyringStore {
    /// The OS keyring of this session; connecting is where a missing service shows.
    pub fn connect() -> Result<KeyringStore, StoreError> {
        Ok(KeyringStore {
            store: os_store().map_err(StoreError::no_service)?,
        })
    }

    /// keyring-core's in-memory mock store: nothing outlives the process (for tests).
    pub fn in_memory() -> KeyringStore {
        KeyringStore {
            store: keyring_core::mock::Store::new().expect("the mock store always builds"),
        }
    }

    fn entry(&self, registry: &str) -> Result<keyring_core::Entry, StoreError> {
        keyring_core::Entry::new_in_store(&self.store, SERVICE, registry)
            .map_err(|e| StoreError::from_keyring(registry, e))
    }
}

impl CredentialStore for KeyringStore {
    fn get(&self, registry: &str) -> Result<Option<Credentials>, StoreError> {
        let secret = match self.entry(registry)?.get_secret() {
            Ok(s) => s,
            Err(keyring_core::Error::NoEntry) => return Ok(None),
            Err(e) => return Err(StoreError::from_keyring(registry, e)),
        };
        // Never quote the secret in an error: serde_json's messages would.
        let stored: StoredSecret =
            serde_json::from_slice(&secret).map_err(|_| StoreError::Malformed {
                registry: registry.to_owned(),
            })?;
        Ok(Some(Credentials {
            username: stored.username,
            password: Secret::new(stored.password),
        }))
    }

    fn set(&self, registry: &str, credentials: &Credentials) -> Result<(), StoreError> {
        let secret = serde_json::to_vec(&StoredSecret {
            username: credentials.username.clone(),
            password: credentials.password.expose().to_owned(),
        })
        .expect("two strings always serialise");
        self.entry(registry)?
            .set_secret(&secret)
            .map_err(|e| StoreError::from_keyring(registry, e))
    }

    fn delete(&self, registry: &str) -> Result<bool, StoreError> {
        match self.entry(registry)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(StoreError::from_keyring(registry, e)),
        }
    }
}

/// The platform's keyring-core store.
#[cfg(all(unix, not(target_os = "macos")))]
fn os_store() -> Result<Arc<keyring_core::CredentialStore>, keyring_core::Error> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

/// The platform's keyring-core store.
#[cfg(target_os = "macos")]
fn os_store() -> Result<Arc<keyring_core::CredentialStore>, keyring_core::Error> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

/// The platform's keyring-core store.
#[cfg(not(unix))]
fn os_store() -> Result<Arc<keyring_core::CredentialStore>, keyring_core::Error> {
    Err(keyring_core::Error::NotSupportedByStore(
        "nixpush knows no keyring on this platform".to_owned(),
    ))
}

/// The OS keyring, connected to afresh for each call. Its [`get`](CredentialStore::get) is
/// bounded by a timeout (a push must not hang on it), and once a lookup has timed out the
/// process asks no more: the next image of an `--images` run would wait as long again.
/// `set` and `delete` bound only the connection: after it, `login` may be waiting for an
/// unlock prompt someone is answering.
pub struct OsKeyring {
    lookup_timeout: Duration,
    unresponsive: AtomicBool,
}

impl OsKeyring {
    pub const fn new(lookup_timeout: Duration) -> OsKeyring {
        OsKeyring {
            lookup_timeout,
            unresponsive: AtomicBool::new(false),
        }
    }

    /// The one instance a process uses, with [`LOOKUP_TIMEOUT`].
    pub fn shared() -> &'static OsKeyring {
        static SHARED: OsKeyring = OsKeyring::new(LOOKUP_TIMEOUT);
        &SHARED
    }
}

impl CredentialStore for OsKeyring {
    fn get(&self, registry: &str) -> Result<Option<Credentials>, StoreError> {
        if self.unresponsive.load(Ordering::Relaxed) {
            return Err(StoreError::TimedOut(self.lookup_timeout));
        }
        let registry = registry.to_owned();
        let found = within(self.lookup_timeout, move || {
            KeyringStore::connect()?.get(&registry)
        });
        if let Err(StoreError::TimedOut(_)) = found {
            self.unresponsive.store(true, Ordering::Relaxed);
        }
        found
    }

    fn set(&self, registry: &str, credentials: &Credentials) -> Result<(), StoreError> {
        within(self.lookup_timeout, KeyringStore::connect)?.set(registry, credentials)
    }

    fn delete(&self, registry: &str) -> Result<bool, StoreError> {
        within(self.lookup_timeout, KeyringStore::connect)?.delete(registry)
    }
}

/// Runs a blocking keyring call on a thread of its own and waits at most `timeout` for it. A
/// call that takes longer is left to finish (or hang) on its own; the process does not wait for
/// it when it exits. Usable from plain and async code alike (it blocks the caller like any
/// short system call, never longer than `timeout`).
pub fn within<T: Send + 'static>(
    timeout: Duration,
    call: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("keyring".to_owned())
        .spawn(move || {
            let _ = sender.send(call());
        })
        .map_err(|e| StoreError::Failed(Box::new(e)))?;
    receiver
        .recv_timeout(timeout)
        .unwrap_or(Err(StoreError::TimedOut(timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Credentials {
        Credentials {
            username: "alice".into(),
            password: Secret::new("hunter2"),
        }
    }

    #[test]
    fn set_get_delete_round_trip_per_registry() {
        let store = KeyringStore::in_memory();
        assert!(store.get("r.io").unwrap().is_none());
        store.set("r.io", &alice()).unwrap();
        assert_eq!(store.get("r.io").unwrap(), Some(alice()));
        assert!(store.get("r.io:5000").unwrap().is_none(), "hosts are keys");
        let bob = Credentials {
            username: "bob".into(),
            password: Secret::new("pw2"),
        };
        store.set("r.io", &bob).unwrap();
        assert_eq!(store.get("r.io").unwrap(), Some(bob), "a login replaces");
        assert!(store.delete("r.io").unwrap());
        assert!(store.get("r.io").unwrap().is_none());
        assert!(!store.delete("r.io").unwrap(), "nothing left to delete");
    }

    #[test]
    fn the_secret_is_json_under_the_nixpush_service() {
        let store = KeyringStore::in_memory();
        store.set("docker.io", &alice()).unwrap();
        let entry = keyring_core::Entry::new_in_store(&store.store, SERVICE, "docker.io").unwrap();
        let json: serde_json::Value = serde_json::from_slice(&entry.get_secret().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"username": "alice", "password": "hunter2"})
        );
    }

    #[test]
    fn a_foreign_entry_is_malformed_and_never_quoted() {
        let store = KeyringStore::in_memory();
        let entry = keyring_core::Entry::new_in_store(&store.store, SERVICE, "r.io").unwrap();
        entry.set_password("hunter2-not-json").unwrap();
        let e = store.get("r.io").unwrap_err();
        assert!(matches!(e, StoreError::Malformed { .. }), "{e:?}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        entry.set_secret(&[0xff, 0xfe]).unwrap();
        assert!(matches!(
            store.get("r.io"),
            Err(StoreError::Malformed { .. })
        ));
    }

    #[test]
    fn keyring_errors_are_sorted() {
        let store = KeyringStore::in_memory();
        store.set("r.io", &alice()).unwrap();
        let entry = store.entry("r.io").unwrap();
        let mock: &keyring_core::mock::Cred = entry.as_any().downcast_ref().unwrap();
        let boxed = |s: &str| -> keyring_core::error::PlatformError { s.to_owned().into() };
        mock.set_error(keyring_core::Error::NoStorageAccess(boxed("locked")));
        assert!(matches!(store.get("r.io"), Err(StoreError::Locked(_))));
        mock.set_error(keyring_core::Error::PlatformFailure(boxed("dbus")));
        assert!(matches!(store.get("r.io"), Err(StoreError::Failed(_))));
        mock.set_error(keyring_core::Error::NoDefaultStore);
        assert!(matches!(
            store.delete("r.io"),
            Err(StoreError::NoService(_))
        ));
        assert_eq!(store.get("r.io").unwrap(), Some(alice()), "errors pass");
    }

    #[test]
    fn no_service_says_so_and_which_keyring() {
        let e = StoreError::no_service(keyring_core::Error::PlatformFailure("no bus".into()));
        assert_eq!(
            e.to_string(),
            format!("no keyring service is available ({KEYRING_KIND})")
        );
    }

    #[test]
    fn secrets_never_show_in_errors() {
        let e = StoreError::from_keyring(
            "r.io",
            keyring_core::Error::BadEncoding(b"hunter2".to_vec()),
        );
        assert!(!format!("{e:?}").contains("104, 117"), "{e:?}");
    }

    #[test]
    fn within_gives_up_on_a_call_that_hangs() {
        let started = std::time::Instant::now();
        let r = within(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_secs(5));
            Ok(())
        });
        assert!(matches!(r, Err(StoreError::TimedOut(_))));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(within(Duration::from_secs(5), || Ok(7)).unwrap(), 7);
    }
}
