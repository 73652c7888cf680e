//! The pushed image runs: podman (runc, the settings in fixtures/containers.conf) pulls it from the
//! registry and runs the demo's entrypoint, which prints a known line using only the closure.

use crate::common;

use common::*;

#[test]
fn podman_runs_the_pushed_demo_image() {
    require("podman");
    require("runc");
    let registry = Registry::start();
    let nixpush = Nixpush::new();
    let image = format!("{}/demo/app:run", registry.host());
    let pinned = nixpush
        .run(&[
            &fixture("demo", "app"),
            &image,
            "--entrypoint",
            "bin/app",
            "--env",
            "GREETING=hi",
        ])
        .assert_ok()
        .to_owned();

    let config = skopeo_inspect(&image, "--config");
    let entrypoint = config["config"]["Entrypoint"][0].as_str().unwrap();
    assert!(
        entrypoint.starts_with("/nix/store/") && entrypoint.ends_with("-app/bin/app"),
        "relative entrypoint resolved inside the top store path: {entrypoint}"
    );
    assert_eq!(config["config"]["Env"][0], "GREETING=hi");

    assert_eq!(podman_run(&pinned, &[], &[]), "hello from nixpush\n");
}

#[test]
fn contents_and_user_give_a_shell_a_user_and_a_writable_tmp() {
    require("podman");
    let registry = Registry::start();
    let image = format!("{}/demo/user:v1", registry.host());
    let pinned = Nixpush::new()
        .run(&[
            &fixture("demo", "app"),
            &image,
            "--contents",
            &fixture("demo", "busybox"),
            "--user",
            "app",
            "--entrypoint",
            "/bin/sh",
            "--cmd",
            r#"["-c","id -un; id -u; echo written > /tmp/probe && cat /tmp/probe"]"#,
        ])
        .assert_ok()
        .to_owned();
    assert_eq!(podman_run(&pinned, &[], &[]), "app\n1000\nwritten\n");
}
