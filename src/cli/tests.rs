//! The command line parsed as a user types it.

use super::*;
use nixpush::destination::Destination;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("nixpush").chain(args.iter().copied()))
}

#[test]
fn bare_form_and_push_subcommand_are_the_same() {
    let bare = parse(&[".#app", "r.io/a:v1", "--env", "A=1", "--", "--impure"]).unwrap();
    assert!(bare.command.is_none());
    assert_eq!(bare.push.installable.as_deref(), Some(".#app"));
    assert_eq!(bare.push.nix_args, ["--impure"]);
    let sub = parse(&["push", ".#app", "r.io/a:v1"]).unwrap();
    let Some(Command::Push(args)) = sub.command else {
        panic!("push subcommand not recognised")
    };
    assert_eq!(args.destination.as_deref(), Some("r.io/a:v1"));
}

#[test]
fn subcommand_names_are_subcommands_and_dot_slash_escapes_them() {
    let c = parse(&["login", "r.io"]).unwrap();
    assert!(matches!(c.command, Some(Command::Login(_))));
    let c = parse(&["./login", "r.io/a"]).unwrap();
    assert_eq!(c.push.installable.as_deref(), Some("./login"));
    let c = parse(&["./inspect", "r.io/a"]).unwrap();
    assert_eq!(c.push.installable.as_deref(), Some("./inspect"));
}

#[test]
fn login_and_logout_take_a_registry() {
    let login = |args: &[&str]| match parse(args).unwrap().command {
        Some(Command::Login(a)) => a.into_request(),
        other => panic!("login subcommand not recognised: {other:?}"),
    };
    let r = login(&["login", "index.docker.io", "-u", "me", "--password-stdin"]).unwrap();
    assert_eq!(r.registry, "docker.io");
    assert_eq!(r.username.as_deref(), Some("me"));
    assert!(r.password_stdin);
    assert!(login(&["login", "notahost"]).unwrap_err().is_usage());
    assert!(
        parse(&["login", "r.io", "--password-stdin"]).is_err(),
        "needs -u"
    );
    assert!(parse(&["login"]).is_err());
    let c = parse(&["logout", "r.io:5000"]).unwrap();
    assert!(matches!(c.command, Some(Command::Logout(a)) if a.registry == "r.io:5000"));
}

#[test]
fn inspect_takes_a_reference_and_checks_it_before_io() {
    let req = |args: &[&str]| match parse(args).unwrap().command {
        Some(Command::Inspect(a)) => a.into_request(),
        other => panic!("inspect subcommand not recognised: {other:?}"),
    };
    let ok = req(&[
        "inspect",
        "--json",
        "r.io/a:v1",
        "--platform",
        "linux/arm64/v8",
    ])
    .unwrap();
    assert_eq!(ok.reference.tag(), Some("v1"));
    assert_eq!(ok.platform.unwrap().to_string(), "linux/arm64/v8");
    assert!(matches!(
        req(&["inspect", "R.io/Bad"]),
        Err(UsageError::Reference(_))
    ));
    assert!(matches!(
        req(&["inspect", "r.io/a", "--platform", "arm64"]),
        Err(UsageError::InspectPlatform(_))
    ));
    assert!(matches!(
        req(&["inspect", "r.io/a", "--creds", "nopassword"]),
        Err(UsageError::Credentials(_))
    ));
    assert!(parse(&["inspect"]).is_err(), "REF is required");
    assert!(parse(&["inspect", "r.io/a", "--insecure", "--ca-cert", "x"]).is_err());
}

#[test]
fn missing_arguments_are_usage_errors() {
    assert!(parse(&[]).is_err());
    assert!(parse(&[".#app"]).is_err());
    assert!(parse(&[".#app", "r.io/a", "--max-layers", "0"]).is_err());
}

#[test]
fn request_checks_reference_and_flags_before_io() {
    let req = |args: &[&str]| parse(args).unwrap().push.into_request();
    assert!(matches!(
        req(&[".#a", "R.io/Bad"]),
        Err(UsageError::Reference(_))
    ));
    assert!(matches!(
        req(&[".#a", "r.io/a", "--env", "x"]),
        Err(UsageError::Config(_))
    ));
    assert!(matches!(
        req(&[".#a", "r.io/a", "--created", "yesterday"]),
        Err(UsageError::Created(_))
    ));
    let ok = req(&[
        ".#a",
        "r.io/a",
        "--expose",
        "80",
        "--created",
        "2024-05-01T12:00:00Z",
    ])
    .unwrap();
    assert_eq!(ok.config.expose, ["80/tcp"]);
    assert_eq!(ok.created.as_deref(), Some("2024-05-01T12:00:00Z"));
    assert_eq!(ok.destination.registry().unwrap().tag(), None);
}

#[test]
fn platforms_make_a_multi_arch_request_whose_one_argument_is_the_destination() {
    let req = |args: &[&str]| parse(args).unwrap().push.into_request();
    let r = req(&[
        "--platform",
        "linux/amd64=.#a",
        "--platform",
        "linux/arm64/v8=.#b",
        "r.io/x:1",
    ])
    .unwrap();
    assert_eq!(r.images.len(), 2);
    assert_eq!(r.images[1].installable, ".#b");
    assert_eq!(
        r.images[1].platform.as_ref().unwrap().to_string(),
        "linux/arm64/v8"
    );
    assert_eq!(r.destination.to_string(), "r.io/x:1");
    for bad in [
        "amd64=.#a",
        "linux/amd64",
        "linux/amd64=",
        "Linux/amd64=.#a",
    ] {
        assert!(
            matches!(
                req(&["--platform", bad, "r.io/x"]),
                Err(UsageError::Platform(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        req(&["--platform", "linux/amd64=.#a", ".#c", "r.io/x"]),
        Err(UsageError::PlatformAndInstallable)
    ));
    assert!(req(&["--platform", "linux/amd64=.#a", "oci:out"]).is_ok());
    assert!(matches!(
        req(&["--platform", "linux/amd64=.#a", "docker-archive:-"]),
        Err(UsageError::MultiArchArchive(..))
    ));
}

#[test]
fn local_targets_annotations_and_output_flags() {
    let req = |args: &[&str]| parse(args).unwrap().push.into_request();
    let r = req(&[".#a", "oci:out:v1", "--annotation", "a.b=c", "--json"]).unwrap();
    assert!(matches!(r.destination, Destination::Local(_)));
    assert_eq!(r.annotations["a.b"], "c");
    assert!(r.default_annotations);
    let r = req(&[".#a", "r.io/x", "--no-default-annotations"]).unwrap();
    assert!(!r.default_annotations && r.annotations.is_empty());
    assert!(matches!(
        req(&[".#a", "docker-archive:-", "--json"]),
        Err(UsageError::StdoutTwice(_))
    ));
    assert!(matches!(
        req(&[".#a", "oci:out", "--cache-from", "r.io/x"]),
        Err(UsageError::RegistryOnly(..))
    ));
    assert!(req(&[".#a", "r.io/x", "--annotation", "novalue"]).is_err());
    assert!(parse(&[".#a", "r.io/x", "--json", "--dry-run"]).is_err());
}

#[test]
fn durations_take_seconds_or_a_unit() {
    use super::push_args::parse_duration;
    use std::time::Duration;
    assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
    assert_eq!(parse_duration("0.1"), Ok(Duration::from_millis(100)));
    assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
    for bad in ["", "0", "-1", "5 parsecs", "2d", "1e9", "25h", "NaN"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    // Below the floor: every request would fail. Said in one line naming the floor.
    for short in ["0.0000001", "99ms", "0.09", "0ms", "0.0s"] {
        let e = parse_duration(short).unwrap_err();
        assert!(
            e.contains("at least 100ms") && !e.contains('\n'),
            "{short}: {e}"
        );
    }
    for flag in ["--stall-timeout", "--retry-for"] {
        let e = parse(&[".#a", "r.io/x", flag, "0.0000001"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("at least 100ms"), "{e}");
    }
    let args = parse(&[".#a", "r.io/x"]).unwrap().push;
    assert_eq!(args.retry_for, Duration::from_secs(90));
    assert_eq!(args.stall_timeout, Duration::from_secs(30));
}
