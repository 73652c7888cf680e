//! A plain package's image: its closure in layers by popularity, and one generated layer (the
//! root filesystem, with links to the `--contents` tops), last.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{
    plain_layers, root_entries, ImagePlan, RootFsError, DEFAULT_CREATED, DEFAULT_MAX_LAYERS,
};
use crate::image::RunConfig;
use crate::layer::{Compression, LayerContent, LayerKey, LayerSpec, Owner, RootEntry};
use crate::nix::{Closure, Platform};

/// What the user's flags decide of a plain package's image.
#[derive(Clone, Copy, Debug, Default)]
pub struct PackageLayout<'a> {
    /// The user the generated `/etc/passwd` and `/etc/group` name (`--user`).
    pub user: Option<&'a str>,
    /// `--max-layers`, the generated layer included; else [`DEFAULT_MAX_LAYERS`].
    pub max_layers: Option<usize>,
    /// `--created`; else [`DEFAULT_CREATED`].
    pub created: Option<&'a str>,
    pub compression: Compression,
    /// On a base image (`--base`): the base has its own `/etc` and `/tmp`, so there is no
    /// generated layer.
    pub on_base: bool,
}

/// A plain package: the store paths its image holds and what it runs.
pub struct Package<'a> {
    pub closure: &'a Closure,
    /// The installable's outputs: the most popular paths, each in a layer of its own if it can.
    pub outputs: &'a [PathBuf],
    /// The `--contents` installables' top paths, linked into `/`.
    pub contents_tops: &'a [PathBuf],
    pub platform: Platform,
    pub config: RunConfig,
}

/// The image of a plain package: its closure in layers by popularity, and one generated layer
/// (the root filesystem, with links to the `--contents` tops).
pub fn package_plan(
    package: Package<'_>,
    layout: &PackageLayout<'_>,
) -> Result<ImagePlan, RootFsError> {
    let entries = match layout.on_base {
        false => root_entries(package.contents_tops, layout.user)?,
        // `--contents` is refused with `--base`: its links would hide the base's directories.
        true => Vec::new(),
    };
    // One layer is the generated root filesystem; the store paths share the rest.
    let mut layers = plain_layers(
        package.closure,
        package.outputs,
        layout
            .max_layers
            .unwrap_or(DEFAULT_MAX_LAYERS)
            .saturating_sub(1)
            .max(1),
        &Owner::default(),
        layout.compression,
    );
    if !entries.is_empty() {
        layers.push(LayerSpec {
            key: LayerKey::of_entries(&entries, layout.compression),
            nar_size: entries
                .iter()
                .map(|e| match e {
                    RootEntry::File { content, .. } => content.len() as u64,
                    _ => 0,
                })
                .sum(),
            content: LayerContent::Generated { entries },
        });
    }
    Ok(ImagePlan {
        layers,
        platform: package.platform,
        created: layout.created.unwrap_or(DEFAULT_CREATED).to_owned(),
        config: serde_json::to_value(package.config).expect("a run config serialises"),
        compression: layout.compression,
        annotations: BTreeMap::new(),
        config_bytes: Default::default(),
        base: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(closure: &Closure, outputs: &[PathBuf]) -> ImagePlan {
        let package = Package {
            closure,
            outputs,
            contents_tops: &[],
            platform: Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: None,
            },
            config: RunConfig::default(),
        };
        let layout = PackageLayout {
            max_layers: Some(3),
            ..Default::default()
        };
        package_plan(package, &layout).unwrap()
    }

    #[test]
    fn the_generated_root_filesystem_is_the_last_layer_and_counts_against_the_limit() {
        let closure = Closure::from_edges(&[
            ("app", &["lib", "zlib"]),
            ("lib", &["libc"]),
            ("zlib", &["libc"]),
            ("libc", &[]),
        ]);
        let app = PathBuf::from(format!("/nix/store/{}-app", "x".repeat(32)));
        let plan = package(&closure, &[app]);
        assert_eq!(plan.layers.len(), 3);
        assert!(matches!(
            plan.layers.last().unwrap().content,
            LayerContent::Generated { .. }
        ));
        assert!(plan.layers[..2]
            .iter()
            .all(|l| !matches!(l.content, LayerContent::Generated { .. })));
    }

    #[test]
    fn created_is_dockertools_default_when_not_given() {
        let closure = Closure::from_edges(&[("app", &[])]);
        let app = PathBuf::from(format!("/nix/store/{}-app", "x".repeat(32)));
        assert_eq!(package(&closure, &[app]).created, "1970-01-01T00:00:01Z");
    }
}
