//! The image's exact closure as a software bill of materials: one package per store path of the
//! image (named and versioned as Nix splits a derivation name), its NAR hash as its checksum,
//! `DEPENDS_ON` from the store's references, and one package per layer taken whole from an
//! image archive (a `fromImage` base). Deterministic: no wall clock (the image's own `created`),
//! no destination, so the same image gives the same document, and the same artifact digest, on
//! any machine and any registry. SPDX 2.3 JSON (`spdx.rs`) or CycloneDX 1.5 JSON
//! (`cyclonedx.rs`).

mod cyclonedx;
mod nix_names;
mod spdx;

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::layer::{LayerContent, LayerSpec};
use crate::nix::Closure;

pub use nix_names::{nar_hash_hex, parse_drv_name};

/// Which document.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SbomFormat {
    #[default]
    Spdx,
    CycloneDx,
}

impl SbomFormat {
    /// The SBOM blob's media type, which is also the artifact type of its manifest.
    pub fn media_type(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "application/spdx+json",
            SbomFormat::CycloneDx => "application/vnd.cyclonedx+json",
        }
    }
}

/// What a package's checksum is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumOf {
    /// The store path's NAR serialisation (Nix's `narHash`).
    Nar,
    /// The layer's uncompressed tar (its diff_id).
    LayerTar,
}

/// One package of the bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// Unique within the document, from `[A-Za-z0-9.-]`.
    pub id: String,
    pub name: String,
    pub version: Option<String>,
    /// The store path (none for a layer of an image archive).
    pub store_path: Option<PathBuf>,
    /// Lowercase hex SHA-256 of what `checksum_of` says (empty: not known; no checksum is
    /// written then).
    pub sha256: String,
    pub checksum_of: ChecksumOf,
    /// Ids of the packages it refers to (never itself).
    pub depends_on: Vec<String>,
    /// An SPDX license expression, when Nix said one.
    pub license: Option<String>,
}

/// Everything a document is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillOfMaterials {
    /// The image's main package name (no destination in it).
    pub name: String,
    /// RFC 3339, UTC (`YYYY-MM-DDThh:mm:ssZ`): the image's `created`.
    pub created: String,
    pub packages: Vec<Package>,
    /// Ids of the image's top packages: those no other package of the image refers to.
    pub tops: Vec<String>,
}

impl BillOfMaterials {
    /// The bill of an image of `layers`, whose store paths are in `closure`; `license` (an SPDX
    /// expression from the installable's `meta.license`) goes to its top packages.
    pub fn of_image(
        layers: &[LayerSpec],
        closure: &Closure,
        created: &str,
        license: Option<&str>,
    ) -> Self {
        let mut paths: BTreeSet<PathBuf> = BTreeSet::new();
        let mut archive_layers: Vec<(String, Digest)> = Vec::new();
        for spec in layers {
            match &spec.content {
                LayerContent::ArchiveMember {
                    archive, diff_id, ..
                } => {
                    let name = archive
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    archive_layers.push((name, diff_id.clone()));
                }
                _ => paths.extend(spec.store_paths().iter().cloned()),
            }
        }
        let id_of = |p: &PathBuf| format!("SPDXRef-Package-{}", id_part(p));
        // Referred to by another path of the image (a path's reference to itself does not count).
        let referred: BTreeSet<&PathBuf> = paths
            .iter()
            .filter_map(|p| closure.get(p))
            .flat_map(|sp| sp.references.iter().filter(move |r| **r != sp.path))
            .filter(|r| paths.contains(*r))
            .collect();
        let tops: Vec<String> = paths
            .iter()
            .filter(|p| !referred.contains(p))
            .map(id_of)
            .collect();
        let top_set: BTreeSet<&String> = tops.iter().collect();
        let mut packages: Vec<Package> = paths
            .iter()
            .map(|p| {
                let base = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let full_name = base.split_once('-').map_or(base.as_str(), |(_, n)| n);
                let (name, version) = parse_drv_name(full_name);
                let info = closure.get(p);
                let id = id_of(p);
                let mut depends_on: Vec<String> = info
                    .map(|sp| {
                        sp.references
                            .iter()
                            .filter(|r| *r != p && paths.contains(*r))
                            .map(id_of)
                            .collect()
                    })
                    .unwrap_or_default();
                depends_on.sort();
                Package {
                    license: license.filter(|_| top_set.contains(&id)).map(str::to_owned),
                    id,
                    name,
                    version,
                    store_path: Some(p.clone()),
                    sha256: info
                        .and_then(|sp| nar_hash_hex(&sp.nar_hash))
                        .unwrap_or_default(),
                    checksum_of: ChecksumOf::Nar,
                    depends_on,
                }
            })
            .collect();
        for (i, (archive, diff_id)) in archive_layers.iter().enumerate() {
            let (name, version) = parse_drv_name(
                archive
                    .split_once('-')
                    .map_or(archive.as_str(), |(_, n)| n)
                    .trim_end_matches(".gz")
                    .trim_end_matches(".zst")
                    .trim_end_matches(".tar"),
            );
            packages.push(Package {
                id: format!("SPDXRef-Layer-{}", i + 1),
                name: format!("{name} layer {}", i + 1),
                version,
                store_path: None,
                sha256: diff_id.hex().to_owned(),
                checksum_of: ChecksumOf::LayerTar,
                depends_on: Vec::new(),
                license: None,
            });
        }
        let mut tops = tops;
        if tops.is_empty() {
            tops = packages.iter().map(|p| p.id.clone()).collect();
        }
        let name = tops
            .first()
            .and_then(|t| packages.iter().find(|p| &p.id == t))
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "image".to_owned());
        BillOfMaterials {
            name,
            created: utc_seconds(created),
            packages,
            tops,
        }
    }

    /// A digest of everything the document says (and of the nixpush that says it): the seed
    /// of its namespace and serial number, so two documents that differ never share them.
    pub fn fingerprint(&self) -> Digest {
        let mut text = format!(
            "{}\t{}\t{}\t{}\n",
            env!("CARGO_PKG_VERSION"),
            self.name,
            self.created,
            self.tops.join(",")
        );
        for p in &self.packages {
            let store_path = p.store_path.as_ref().map(|s| s.display().to_string());
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                p.id,
                p.name,
                p.version.as_deref().unwrap_or_default(),
                p.sha256,
                p.license.as_deref().unwrap_or_default(),
                store_path.unwrap_or_default(),
                p.depends_on.join(",")
            ));
        }
        Digest::of(text.as_bytes())
    }

    /// The document in `format`, as bytes.
    pub fn to_bytes(&self, format: SbomFormat) -> Vec<u8> {
        let value = match format {
            SbomFormat::Spdx => spdx::document(self),
            SbomFormat::CycloneDx => cyclonedx::document(self),
        };
        crate::image::canonical_json(&value)
    }
}

/// `<hash>-<name>` of `/nix/store/<hash>-<name>`, in the characters an SPDX id may hold.
fn id_part(path: &std::path::Path) -> String {
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `created` as SPDX wants it, `YYYY-MM-DDThh:mm:ssZ`: fractions dropped, an offset applied.
fn utc_seconds(created: &str) -> String {
    let parsed = (|| {
        let date = created.get(..10)?;
        let time = created.get(11..19)?;
        let rest = created.get(19..)?;
        let rest = match rest.strip_prefix('.') {
            Some(f) => f.trim_start_matches(|c: char| c.is_ascii_digit()),
            None => rest,
        };
        let offset_minutes: i64 = match rest {
            "Z" | "z" | "" => 0,
            o => {
                let sign = if o.starts_with('-') { -1 } else { 1 };
                let h: i64 = o.get(1..3)?.parse().ok()?;
                let m: i64 = o.get(4..6)?.parse().ok()?;
                sign * (h * 60 + m)
            }
        };
        let y: i64 = date.get(..4)?.parse().ok()?;
        let mo: i64 = date.get(5..7)?.parse().ok()?;
        let d: i64 = date.get(8..10)?.parse().ok()?;
        let hh: i64 = time.get(..2)?.parse().ok()?;
        let mm: i64 = time.get(3..5)?.parse().ok()?;
        let ss: i64 = time.get(6..8)?.parse().ok()?;
        let seconds =
            days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss - offset_minutes * 60;
        Some(seconds)
    })();
    let Some(seconds) = parsed else {
        return "1970-01-01T00:00:01Z".to_owned();
    };
    let (days, rem) = (seconds.div_euclid(86400), seconds.rem_euclid(86400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_is_utc_seconds() {
        assert_eq!(utc_seconds("1970-01-01T00:00:01Z"), "1970-01-01T00:00:01Z");
        assert_eq!(
            utc_seconds("2001-02-03T04:05:06+00:00"),
            "2001-02-03T04:05:06Z"
        );
        assert_eq!(
            utc_seconds("2024-05-01T12:00:00.123456Z"),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(
            utc_seconds("2024-03-01T01:30:00+02:00"),
            "2024-02-29T23:30:00Z"
        );
    }

    #[test]
    fn a_closure_becomes_packages_with_dependencies_and_tops() {
        use crate::layer::{Compression, LayerKey, Owner, NIX_DIRS_MODE};
        use crate::nix::StorePath;
        let app = PathBuf::from("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app-1.2");
        let glibc = PathBuf::from("/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-glibc-2.39-52");
        let mut closure = Closure::default();
        for (path, refs) in [(&app, vec![glibc.clone(), app.clone()]), (&glibc, vec![])] {
            closure.paths.insert(
                path.clone(),
                StorePath {
                    path: path.clone(),
                    nar_hash: "sha256-2dV0bWMFf455ss/gqPV2XR1X8ROk+XOpoN5fatZ2a/M=".into(),
                    nar_size: 1,
                    references: refs,
                },
            );
        }
        let layers: Vec<LayerSpec> = [&glibc, &app]
            .iter()
            .map(|p| LayerSpec {
                content: LayerContent::StorePaths {
                    paths: vec![(*p).clone()],
                    owner: Owner::default(),
                    nix_dirs_mode: NIX_DIRS_MODE,
                    source: Default::default(),
                },
                key: LayerKey::of_entries(&[], Compression::None),
                nar_size: 1,
            })
            .collect();
        let bom = BillOfMaterials::of_image(&layers, &closure, "1970-01-01T00:00:01Z", Some("MIT"));
        assert_eq!(bom.packages.len(), 2);
        let a = bom.packages.iter().find(|p| p.name == "app").unwrap();
        assert_eq!(a.version.as_deref(), Some("1.2"));
        assert_eq!(a.license.as_deref(), Some("MIT"));
        // Its reference to itself is no dependency.
        assert_eq!(
            a.depends_on,
            ["SPDXRef-Package-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-glibc-2.39-52"]
        );
        assert_eq!(
            a.sha256,
            "d9d5746d63057f8e79b2cfe0a8f5765d1d57f113a4f973a9a0de5f6ad6766bf3"
        );
        let g = bom.packages.iter().find(|p| p.name == "glibc").unwrap();
        assert_eq!(g.version.as_deref(), Some("2.39-52"));
        assert_eq!(g.license, None);
        assert_eq!(
            bom.tops,
            ["SPDXRef-Package-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app-1.2"]
        );
        assert_eq!(bom.name, "app");
    }
}
