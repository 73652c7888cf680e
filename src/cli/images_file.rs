//! `--images FILE`: several images pushed in one run, described in TOML, one `[[image]]` table
//! each. Every table becomes the same checked `PushRequest` a command line would, with the run's
//! global flags (compression, jobs, cache, registry options) applied to all.
//!
//! ```toml
//! [[image]]
//! installable = ".#app"
//! destination = "ghcr.io/org/app:1.2"
//! tags = ["1", "latest"]            # more tags for the same image
//! entrypoint = "bin/app"            # or ["bin/app", "--serve"]
//! cmd = ["--port", "80"]
//! env = { GREETING = "hello" }
//! labels = { "org.opencontainers.image.source" = "https://example.org/app" }
//! expose = ["80/tcp"]
//! user = "app"
//! workdir = "/"
//! contents = [".#busybox"]
//! nix_args = ["--impure"]
//! annotations = { "org.example.team" = "web" }   # beside the run's --annotation
//!
//! [[image]]                         # multi-arch: platforms instead of installable
//! destination = "ghcr.io/org/worker:1.2"
//! platforms = { "linux/amd64" = ".#packages.x86_64-linux.worker", "linux/arm64" = ".#packages.aarch64-linux.worker" }
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::cli::{PushArgs, UsageError};
use nixpush::request::PushRequest;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImagesFile {
    image: Vec<Image>,
}

/// A command: one program path, or the program and its arguments.
#[derive(Deserialize)]
#[serde(untagged)]
enum Command {
    Word(String),
    List(Vec<String>),
}

impl Command {
    /// The flag's form: one word, or a JSON array.
    fn as_flag(&self) -> String {
        match self {
            Command::Word(w) => w.clone(),
            Command::List(l) => serde_json::to_string(l).expect("strings serialise"),
        }
    }
}

/// `{ K = "V" }` or `["K=V"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Pairs {
    Table(BTreeMap<String, String>),
    List(Vec<String>),
}

impl Pairs {
    fn as_flags(&self) -> Vec<String> {
        match self {
            Pairs::Table(t) => t.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            Pairs::List(l) => l.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    installable: Option<String>,
    /// `OS/ARCH[/VARIANT]` -> installable: a multi-arch image (instead of `installable`).
    platforms: Option<BTreeMap<String, String>>,
    destination: String,
    annotations: Option<Pairs>,
    entrypoint: Option<Command>,
    cmd: Option<Command>,
    env: Option<Pairs>,
    labels: Option<Pairs>,
    #[serde(default)]
    expose: Vec<String>,
    user: Option<String>,
    workdir: Option<String>,
    #[serde(default)]
    contents: Vec<String>,
    #[serde(default)]
    nix_args: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    /// Attach an SBOM to this image (as `--sbom`; `--sbom` for the run sets it for every one).
    #[serde(default)]
    sbom: bool,
    /// A registry image to put this image on (as `--base`, which it replaces).
    base: Option<String>,
    /// More repositories to put this image in (as `--mirror`, added to the run's).
    #[serde(default)]
    mirrors: Vec<String>,
}

/// The checked requests of every image in `path`; `global` holds the run's other flags.
pub fn requests_from_file(path: &Path, global: &PushArgs) -> Result<Vec<PushRequest>, UsageError> {
    let bad = |reason: String| UsageError::ImagesFile {
        path: path.to_owned(),
        reason,
    };
    for (given, flag) in [
        (global.entrypoint.is_some(), "--entrypoint"),
        (global.cmd.is_some(), "--cmd"),
        (!global.env.is_empty(), "--env"),
        (global.workdir.is_some(), "--workdir"),
        (global.user.is_some(), "--user"),
        (!global.expose.is_empty(), "--expose"),
        (!global.label.is_empty(), "--label"),
        (!global.contents.is_empty(), "--contents"),
        (!global.nix_args.is_empty(), "nix arguments after --"),
        (!global.tags.is_empty(), "--tag"),
    ] {
        if given {
            return Err(UsageError::FlagWithImages(flag));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let file: ImagesFile = toml::from_str(&text).map_err(|e| bad(e.message().to_owned()))?;
    if file.image.is_empty() {
        return Err(bad("no [[image]] table".to_owned()));
    }
    file.image
        .into_iter()
        .map(|image| {
            let mut args = global.clone();
            args.images = None;
            args.in_images_file = true;
            match (image.installable, image.platforms) {
                (Some(installable), None) => {
                    args.installable = Some(installable);
                    args.destination = Some(image.destination);
                }
                (None, Some(platforms)) if !platforms.is_empty() => {
                    // As on the command line: the one positional argument is the destination.
                    args.installable = Some(image.destination);
                    args.destination = None;
                    args.platforms = platforms
                        .iter()
                        .map(|(platform, installable)| format!("{platform}={installable}"))
                        .collect();
                }
                _ => {
                    return Err(bad(format!(
                        "the image for {} needs either `installable` or `platforms`, not both",
                        image.destination
                    )))
                }
            }
            if let Some(a) = &image.annotations {
                args.annotations.extend(a.as_flags());
            }
            args.nix_args = image.nix_args;
            args.entrypoint = image.entrypoint.as_ref().map(Command::as_flag);
            args.cmd = image.cmd.as_ref().map(Command::as_flag);
            args.env = image.env.as_ref().map(Pairs::as_flags).unwrap_or_default();
            args.label = image
                .labels
                .as_ref()
                .map(Pairs::as_flags)
                .unwrap_or_default();
            args.expose = image.expose;
            args.user = image.user;
            args.workdir = image.workdir;
            args.contents = image.contents;
            args.tags = image.tags;
            args.sbom |= image.sbom;
            args.base = image.base.or(args.base);
            args.mirrors.extend(image.mirrors);
            args.into_request()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn global(extra: &[&str]) -> PushArgs {
        let mut argv = vec!["nixpush", "--images", "f.toml"];
        argv.extend(extra);
        Cli::try_parse_from(argv).unwrap().push
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn each_table_becomes_a_checked_request_with_the_global_flags() {
        let f = file(
            r#"
            [[image]]
            installable = ".#a"
            destination = "r.io/a:1"
            entrypoint = ["bin/a", "--x"]
            env = { B = "2", A = "1" }
            expose = ["80"]

            [[image]]
            installable = ".#b"
            destination = "r.io/b"
            cmd = "serve"
            labels = ["k=v"]
            "#,
        );
        let reqs = requests_from_file(f.path(), &global(&["--jobs", "3"])).unwrap();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].config.entrypoint, ["bin/a", "--x"]);
        assert_eq!(
            reqs[0].config.env,
            [("A".into(), "1".into()), ("B".into(), "2".into())]
        );
        assert_eq!(reqs[0].config.expose, ["80/tcp"]);
        assert_eq!(reqs[1].config.cmd, ["serve"]);
        assert_eq!(reqs[1].destination.registry().unwrap().repository(), "b");
        assert!(reqs.iter().all(|r| r.jobs == 3));
    }

    #[test]
    fn sbom_is_asked_per_image_or_for_all() {
        let f = file(
            r#"
            [[image]]
            installable = ".#a"
            destination = "r.io/a:1"
            sbom = true

            [[image]]
            installable = ".#b"
            destination = "r.io/b"
            "#,
        );
        let reqs = requests_from_file(f.path(), &global(&[])).unwrap();
        assert_eq!(reqs[0].sbom, Some(nixpush::sbom::SbomFormat::Spdx));
        assert_eq!(reqs[1].sbom, None);
        let all = requests_from_file(f.path(), &global(&["--sbom", "--sbom-format", "cyclonedx"]))
            .unwrap();
        assert!(all
            .iter()
            .all(|r| r.sbom == Some(nixpush::sbom::SbomFormat::CycloneDx)));
    }

    #[test]
    fn base_and_mirrors_are_given_per_image() {
        let f = file(
            r#"
            [[image]]
            installable = ".#a"
            destination = "r.io/a:1"
            base = "r.io/base@sha256:0000000000000000000000000000000000000000000000000000000000000000"
            mirrors = ["m.io/a"]

            [[image]]
            installable = ".#b"
            destination = "r.io/b"
            "#,
        );
        let reqs = requests_from_file(f.path(), &global(&["--base", "r.io/debian:12"])).unwrap();
        let base = |i: usize| reqs[i].base.as_ref().map(ToString::to_string);
        assert_eq!(
            base(0).as_deref(),
            Some(
                "r.io/base@sha256:0000000000000000000000000000000000000000000000000000000000000000"
            )
        );
        assert_eq!(base(1).as_deref(), Some("r.io/debian:12"));
        let mirrors = |i: usize| {
            reqs[i]
                .mirrors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(mirrors(0), ["m.io/a"]);
        assert!(mirrors(1).is_empty());
        let to_oci = file(
            r#"
            [[image]]
            installable = ".#a"
            destination = "oci:/tmp/x"
            base = "r.io/base:1"
            "#,
        );
        let error = requests_from_file(to_oci.path(), &global(&[])).unwrap_err();
        assert!(error.to_string().contains("--base"), "{error}");
    }

    #[test]
    fn bad_files_and_conflicting_flags_are_usage_errors() {
        let unknown =
            file("[[image]]\ninstallable = \".#a\"\ndestination = \"r.io/a\"\ncolour = \"red\"\n");
        assert!(matches!(
            requests_from_file(unknown.path(), &global(&[])),
            Err(UsageError::ImagesFile { .. })
        ));
        let bad_ref = file("[[image]]\ninstallable = \".#a\"\ndestination = \"R.io/A\"\n");
        assert!(matches!(
            requests_from_file(bad_ref.path(), &global(&[])),
            Err(UsageError::Reference(_))
        ));
        let empty = file("");
        assert!(requests_from_file(empty.path(), &global(&[])).is_err());
        let ok = file("[[image]]\ninstallable = \".#a\"\ndestination = \"r.io/a\"\n");
        assert!(matches!(
            requests_from_file(ok.path(), &global(&["--env", "A=1"])),
            Err(UsageError::FlagWithImages("--env"))
        ));
    }

    #[test]
    fn platforms_make_a_multi_arch_image_and_annotations_join_the_global_ones() {
        let f = file(
            r#"
            [[image]]
            destination = "r.io/m:1"
            platforms = { "linux/amd64" = ".#x", "linux/arm64" = ".#y" }
            annotations = { "team" = "web" }
            "#,
        );
        let reqs = requests_from_file(f.path(), &global(&["--annotation", "org=acme"])).unwrap();
        let r = &reqs[0];
        assert_eq!(r.destination.to_string(), "r.io/m:1");
        let platforms: Vec<(String, &str)> = r
            .images
            .iter()
            .map(|i| {
                (
                    i.platform.as_ref().unwrap().to_string(),
                    i.installable.as_str(),
                )
            })
            .collect();
        assert_eq!(
            platforms,
            [("linux/amd64".into(), ".#x"), ("linux/arm64".into(), ".#y")]
        );
        assert_eq!(r.annotations["team"], "web");
        assert_eq!(r.annotations["org"], "acme");
        for both_or_neither in [
            "[[image]]\ninstallable = \".#a\"\nplatforms = { \"linux/amd64\" = \".#a\" }\ndestination = \"r.io/a\"\n",
            "[[image]]\ndestination = \"r.io/a\"\n",
        ] {
            let f = file(both_or_neither);
            assert!(matches!(
                requests_from_file(f.path(), &global(&[])),
                Err(UsageError::ImagesFile { .. })
            ));
        }
    }
}
