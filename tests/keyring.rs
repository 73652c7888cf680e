//! `nixpush login` / `logout` and the OS keyring as a credential source, end to end: with a real
//! gnome-keyring on a private D-Bus session (login, push, logout, push refused), on a machine
//! with no keyring service at all (login says what to use instead; a push falls through to the
//! next source), and with a D-Bus that never answers (a push waits at most 5 s for it).

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const USER: &str = "alice";
const PASSWORD: &str = "k3yr1ng-Pa55word";

fn locked_registry() -> Registry {
    Registry::start_with(RegistryConfig {
        htpasswd: Some((USER.into(), PASSWORD.into())),
        ..Default::default()
    })
}

/// Runs nixpush with `env` (a D-Bus session or its absence) and `stdin`; the password must not
/// show in what it prints.
fn run(nixpush: &Nixpush, args: &[&str], env: &[(&str, String)], stdin: Option<&str>) -> Run {
    let run = nixpush.run_with(args, env, stdin);
    assert!(
        !run.stderr.contains(PASSWORD) && !run.stdout.contains(PASSWORD),
        "{}",
        run.stderr
    );
    run
}

fn push(registry: &Registry, nixpush: &Nixpush, env: &[(&str, String)]) -> Run {
    let image = format!("{}/keyring/app:v1", registry.host());
    run(nixpush, &[&fixture("demo", "app"), &image], env, None)
}

/// The environment of a machine with no session bus: nothing listens where D-Bus would be.
fn no_session_bus(runtime_dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent".to_owned(),
        ),
        ("XDG_RUNTIME_DIR", runtime_dir.display().to_string()),
    ]
}

#[test]
fn login_without_a_keyring_service_says_what_to_use_instead() {
    let runtime_dir = tempfile::tempdir().unwrap();
    let env = no_session_bus(runtime_dir.path());
    let nixpush = Nixpush::new();
    let run = run(
        &nixpush,
        &["login", "127.0.0.1:5000", "-u", USER, "--password-stdin"],
        &env,
        Some(PASSWORD),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.starts_with(
            "nixpush: error: no keyring service is available (Secret Service over D-Bus)"
        ),
        "{line}"
    );
    for alternative in [
        "NIXPUSH_USERNAME/NIXPUSH_PASSWORD",
        "--password-stdin",
        "docker login",
    ] {
        assert!(line.contains(alternative), "{line}");
    }
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let run = self::run(&nixpush, &["logout", "127.0.0.1:5000"], &env, None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.error_line().contains("no keyring service"),
        "{}",
        run.stderr
    );
}

#[test]
fn login_refuses_a_bad_registry_or_a_password_it_cannot_ask_for() {
    let nixpush = Nixpush::new();
    let run = self::run(&nixpush, &["login", "myregistry", "-u", USER], &[], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error_line().contains("not a registry host"),
        "{}",
        run.stderr
    );
    // Standard input is not a terminal here: no prompt, a pointer to --password-stdin.
    let run = self::run(
        &nixpush,
        &["login", "127.0.0.1:5000", "-u", USER],
        &[],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error_line().contains("--password-stdin"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_push_without_a_keyring_service_falls_through_to_docker_config() {
    let registry = locked_registry();
    let runtime_dir = tempfile::tempdir().unwrap();
    let nixpush = Nixpush::new();
    nixpush.login(&registry.host(), USER, PASSWORD);
    let run = push(&registry, &nixpush, &no_session_bus(runtime_dir.path()));
    run.assert_ok();
    assert!(!run.stderr.contains("keyring"), "{}", run.stderr);
}

#[test]
fn a_push_waits_at_most_five_seconds_for_a_keyring_that_never_answers() {
    let registry = locked_registry();
    let dir = tempfile::tempdir().unwrap();
    // A session bus that accepts connections and never says a word.
    let socket = dir.path().join("bus");
    let _bus = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let env = [
        (
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", socket.display()),
        ),
        ("XDG_RUNTIME_DIR", dir.path().display().to_string()),
    ];
    let nixpush = Nixpush::new();
    nixpush.login(&registry.host(), USER, PASSWORD);
    let started = Instant::now();
    let run = push(&registry, &nixpush, &env);
    run.assert_ok();
    assert!(
        run.stderr
            .contains("ignoring the keyring: the keyring did not answer within 5 s"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// A private D-Bus session with gnome-keyring's Secret Service, unlocked, its files in a
/// temporary home; ended when dropped.
struct KeyringSession {
    child: Child,
    address: String,
    _home: tempfile::TempDir,
}

impl KeyringSession {
    fn start() -> KeyringSession {
        require("dbus-run-session");
        require("gnome-keyring-daemon");
        let home = tempfile::tempdir().unwrap();
        let runtime_dir = home.path().join("run");
        std::fs::create_dir(&runtime_dir).unwrap();
        // The session lasts as long as `cat` reads its standard input, which this test holds.
        let mut child = Command::new("dbus-run-session")
            .args([
                "--",
                "sh",
                "-c",
                "printf unlock-pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null \
                 && echo \"$DBUS_SESSION_BUS_ADDRESS\" && exec cat >/dev/null",
            ])
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run dbus-run-session");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        assert!(
            address.starts_with("unix:"),
            "no D-Bus session with gnome-keyring started: {address:?}"
        );
        KeyringSession {
            child,
            address,
            _home: home,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![("DBUS_SESSION_BUS_ADDRESS", self.address.clone())]
    }
}

impl Drop for KeyringSession {
    fn drop(&mut self) {
        // Closing `cat`'s input ends the session: dbus-run-session stops its bus, and
        // gnome-keyring-daemon leaves with it.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

#[test]
fn login_push_logout_with_gnome_keyring() {
    let registry = locked_registry();
    let session = KeyringSession::start();
    let env = session.env();
    let nixpush = Nixpush::new();
    let host = registry.host();

    let run = push(&registry, &nixpush, &env);
    assert_eq!(run.code, 1, "nothing stored yet: {}", run.stderr);

    let login = run_login(&nixpush, &host, &env);
    login.assert_ok();
    assert!(login.stdout.is_empty(), "{}", login.stdout);
    assert!(
        login.stderr.contains(&format!("for {host} in the keyring")),
        "{}",
        login.stderr
    );

    push(&registry, &nixpush, &env).assert_ok();
    assert_eq!(
        registry.manifest_status("keyring/app", "v1", Some((USER, PASSWORD))),
        200
    );

    // Explicit credentials still win over the keyring's.
    let wrong = [
        ("NIXPUSH_USERNAME", USER.to_owned()),
        ("NIXPUSH_PASSWORD", "wrong-password".to_owned()),
    ];
    let run = push(&registry, &nixpush, &[env.clone(), wrong.to_vec()].concat());
    assert_eq!(run.code, 1, "{}", run.stderr);

    let logout = self::run(&nixpush, &["logout", &host], &env, None);
    logout.assert_ok();
    assert!(
        logout.stderr.contains("removed the credentials"),
        "{}",
        logout.stderr
    );
    let run = push(&registry, &nixpush, &env);
    assert_refused(&run, 1, &["requires credentials"]);
    let again = self::run(&nixpush, &["logout", &host], &env, None);
    again.assert_ok();
    assert!(again.stderr.contains("not logged in"), "{}", again.stderr);
}

fn run_login(nixpush: &Nixpush, host: &str, env: &[(&str, String)]) -> Run {
    run(
        nixpush,
        &["login", host, "--username", USER, "--password-stdin"],
        env,
        Some(&format!("{PASSWORD}\n")),
    )
}
