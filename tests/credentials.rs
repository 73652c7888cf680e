//! Where credentials come from, first answer wins: explicit (`--creds`, `--username` with
//! `--password-stdin`, `NIXPUSH_USERNAME`/`NIXPUSH_PASSWORD`), Docker's config (`auths` entries,
//! then a credential helper), podman's auth file. Each is shown pushing to a registry that requires
//! them over TLS (a private CA the test makes, trusted with `--ca-cert`), with the password
//! never printed; two explicit sources at once are a usage error.

use crate::common;

use std::os::unix::fs::PermissionsExt;

use common::*;

const USER: &str = "alice";
const PASSWORD: &str = "cr3d-Pa55word";

fn locked_registry() -> Registry {
    Registry::start_with(RegistryConfig {
        htpasswd: Some((USER.into(), PASSWORD.into())),
        tls: true,
        ..Default::default()
    })
}

/// Runs nixpush with extra environment and optional stdin; checks the push landed.
fn push_with(
    registry: &Registry,
    nixpush: &Nixpush,
    args: &[&str],
    env: &[(&str, String)],
    stdin: Option<&str>,
) -> Run {
    let image = format!("{}/creds/app:v1", registry.host());
    let ca = registry.certificate().display().to_string();
    let mut all = vec![fixture("demo", "app"), image, "--ca-cert".into(), ca];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let run = nixpush.run_with(&all, env, stdin);
    assert!(
        !run.stderr.contains(PASSWORD) && !run.stdout.contains(PASSWORD),
        "{}",
        run.stderr
    );
    run
}

fn assert_pushed(registry: &Registry, run: &Run) {
    run.assert_ok();
    assert_eq!(
        registry.manifest_status("creds/app", "v1", Some((USER, PASSWORD))),
        200
    );
}

#[test]
fn environment_variables() {
    let registry = locked_registry();
    let env = [
        ("NIXPUSH_USERNAME", USER.to_owned()),
        ("NIXPUSH_PASSWORD", PASSWORD.to_owned()),
    ];
    let run = push_with(&registry, &Nixpush::new(), &[], &env, None);
    assert_pushed(&registry, &run);
}

#[test]
fn a_wrong_password_over_tls_is_one_clear_line_and_exit_1() {
    let registry = locked_registry();
    let wrong = "not-the-cr3d-Pa55word";
    let env = [
        ("NIXPUSH_USERNAME", USER.to_owned()),
        ("NIXPUSH_PASSWORD", wrong.to_owned()),
    ];
    let run = push_with(&registry, &Nixpush::new(), &[], &env, None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains("credentials were rejected") && line.contains(USER),
        "{line}"
    );
    assert!(!run.stderr.contains(wrong));
    assert_eq!(registry.uploads_started(), 0);
    assert_eq!(
        registry.manifest_status("creds/app", "v1", Some((USER, PASSWORD))),
        404
    );
}

#[test]
fn docker_config_auths() {
    let registry = locked_registry();
    let nixpush = Nixpush::new();
    nixpush.login(&registry.host(), USER, PASSWORD);
    let run = push_with(&registry, &nixpush, &[], &[], None);
    assert_pushed(&registry, &run);
}

#[test]
fn username_and_password_from_stdin() {
    let registry = locked_registry();
    let run = push_with(
        &registry,
        &Nixpush::new(),
        &["--username", USER, "--password-stdin"],
        &[],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_pushed(&registry, &run);
}

#[test]
fn creds_flag() {
    let registry = locked_registry();
    let creds = format!("{USER}:{PASSWORD}");
    let run = push_with(&registry, &Nixpush::new(), &["--creds", &creds], &[], None);
    run.assert_ok();
}

#[test]
fn two_explicit_sources_are_a_usage_error() {
    let registry = locked_registry();
    let env = [
        ("NIXPUSH_USERNAME", USER.to_owned()),
        ("NIXPUSH_PASSWORD", PASSWORD.to_owned()),
    ];
    let run = push_with(
        &registry,
        &Nixpush::new(),
        &["--creds", "bob:x"],
        &env,
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.error_line().contains("one way"), "{}", run.error_line());
}

#[test]
fn a_docker_credential_helper() {
    let registry = locked_registry();
    let nixpush = Nixpush::new();
    // A helper that knows this registry only, as docker-credential-* helpers do.
    let bin = nixpush.docker_config.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-nixpushtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n[ \"$server\" = \"{}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n",
            registry.host()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        nixpush.docker_config.path().join("config.json"),
        format!(
            r#"{{"auths":{{}},"credHelpers":{{"{}":"nixpushtest"}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = push_with(&registry, &nixpush, &[], &[("PATH", path.clone())], None);
    assert_pushed(&registry, &run);

    // The same helper as the store for every registry knows nothing of another one.
    std::fs::write(
        nixpush.docker_config.path().join("config.json"),
        r#"{"credsStore":"nixpushtest"}"#,
    )
    .unwrap();
    let other = locked_registry();
    let run = push_with(&other, &nixpush, &[], &[("PATH", path)], None);
    assert_eq!(run.code, 1);
    assert!(
        run.error_line().contains("requires credentials"),
        "{}",
        run.error_line()
    );
}

/// Installs `script` as `docker-credential-stuck`, the credential store of every registry in
/// nixpush's Docker config; returns the `PATH` that finds it.
fn stuck_helper(nixpush: &Nixpush, script: &str) -> String {
    let bin = nixpush.docker_config.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-stuck");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        nixpush.docker_config.path().join("config.json"),
        r#"{"credsStore":"stuck"}"#,
    )
    .unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

#[test]
fn a_credential_helper_that_hangs_is_stopped_and_named_in_one_line() {
    let registry = locked_registry();
    let nixpush = Nixpush::new();
    // A helper stuck on something (a prompt no one sees, a keychain that never answers), and
    // a script that starts another program, as helpers wrapping a cloud CLI do: both must go.
    let pid_file = nixpush.docker_config.path().join("helper.pid");
    let child_file = nixpush.docker_config.path().join("child.pid");
    let path = stuck_helper(
        &nixpush,
        &format!(
            "#!/bin/sh\necho $$ > {}\nsleep 600 &\necho $! > {}\nwait\n",
            pid_file.display(),
            child_file.display()
        ),
    );
    let started = std::time::Instant::now();
    let run = push_with(
        &registry,
        &nixpush,
        &[],
        &[
            ("PATH", path),
            ("NIXPUSH_CREDENTIAL_HELPER_TIMEOUT", "2".to_owned()),
        ],
        None,
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.error_line();
    assert!(
        line.contains("docker-credential-stuck") && line.contains("did not answer within 2 s"),
        "{line}"
    );
    assert_eq!(
        run.stderr.lines().filter(|l| l.contains("error")).count(),
        1
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(registry.uploads_started(), 0);
    // The helper was stopped, and what it started too, not left running.
    assert_process_ends(&pid_file);
    assert_process_ends(&child_file);
}

#[test]
fn ctrl_c_while_a_credential_helper_hangs_ends_the_push_and_the_helper() {
    let registry = locked_registry();
    let nixpush = Nixpush::new();
    let pid_file = nixpush.docker_config.path().join("helper.pid");
    let path = stuck_helper(
        &nixpush,
        &format!(
            "#!/bin/sh\necho $$ > {}\nexec sleep 600\n",
            pid_file.display()
        ),
    );
    let image = format!("{}/creds/app:v1", registry.host());
    let ca = registry.certificate().display().to_string();
    let child = nixpush
        .command(&[&fixture("demo", "app"), &image, "--ca-cert", &ca])
        .env("PATH", path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !pid_file.exists() {
        assert!(std::time::Instant::now() < deadline, "the helper never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let interrupted = std::time::Instant::now();
    let run = Run::from_output(child.wait_with_output().unwrap());
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(
        interrupted.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        interrupted.elapsed()
    );
    assert_process_ends(&pid_file);
}

#[test]
fn a_podman_auth_file() {
    let registry = locked_registry();
    let nixpush = Nixpush::new();
    let auth_file = nixpush.docker_config.path().join("auth.json");
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    std::fs::write(
        &auth_file,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let run = push_with(
        &registry,
        &nixpush,
        &[],
        &[("REGISTRY_AUTH_FILE", auth_file.display().to_string())],
        None,
    );
    assert_pushed(&registry, &run);
}
