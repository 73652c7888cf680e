//! Base images made without nixpush: a static busybox with `/bin/sh` and a release file, built
//! into an OCI layout with umoci and put in a registry with skopeo, the way a team's own base
//! image reaches a registry.

use std::path::Path;
use std::process::Command;

use super::bed::{require, run_ok};
use super::clients::skopeo_ok;

/// Makes a busybox base image whose `/etc/base-release` says `release`, with `Env`
/// `PATH=/bin` and `BASE_RELEASE=<release>`, `Cmd` `/bin/sh`, `WorkingDir` `/srv`, a label, and
/// `architecture` `arch`, and copies it to `image` (`host/repo:tag`). Returns its layout dir's
/// parent (kept alive by the caller).
pub fn busybox_base(image: &str, release: &str, arch: &str) -> tempfile::TempDir {
    require("umoci");
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let umoci = |args: &[&str]| {
        run_ok(Command::new("umoci").args(args), "umoci");
    };
    let tagged = format!("{}:base", layout.display());
    umoci(&["init", "--layout", layout.to_str().unwrap()]);
    umoci(&["new", "--image", &tagged]);
    let bundle = dir.path().join("bundle");
    umoci(&["unpack", "--image", &tagged, bundle.to_str().unwrap()]);
    let rootfs = bundle.join("rootfs");
    for sub in ["bin", "etc", "srv", "tmp"] {
        std::fs::create_dir_all(rootfs.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "echo", "ls"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    std::fs::write(rootfs.join("etc/base-release"), format!("{release}\n")).unwrap();
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nbaseuser:x:4242:4242::/srv:/bin/sh\n",
    )
    .unwrap();
    umoci(&["repack", "--image", &tagged, bundle.to_str().unwrap()]);
    umoci(&[
        "config",
        "--image",
        &tagged,
        "--config.env",
        "PATH=/bin",
        "--config.env",
        &format!("BASE_RELEASE={release}"),
        "--config.cmd",
        "/bin/sh",
        "--config.workingdir",
        "/srv",
        "--config.label",
        "base.vendor=busybox",
        "--architecture",
        arch,
    ]);
    to_registry(&layout, "base", image);
    dir
}

/// Copies the image tagged `tag` in the OCI layout `layout` to the registry image `image`.
pub fn to_registry(layout: &Path, tag: &str, image: &str) {
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", layout.display()),
        &format!("docker://{image}"),
    ]);
}
