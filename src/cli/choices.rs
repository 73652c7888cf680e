//! The closed choices of `nixpush [push]` (`--upload`, `--format`, `--sbom-format`,
//! `--compression`) and what each means to the library.

use nixpush::layer::Compression;
use nixpush::request::UploadMode;

use super::UsageError;

/// `--upload`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UploadArg {
    Auto,
    Streaming,
    Monolithic,
}

impl From<UploadArg> for UploadMode {
    fn from(a: UploadArg) -> Self {
        match a {
            UploadArg::Auto => UploadMode::Auto,
            UploadArg::Streaming => UploadMode::Streaming,
            UploadArg::Monolithic => UploadMode::Monolithic,
        }
    }
}

/// `--sbom-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormatArg {
    Spdx,
    Cyclonedx,
}

impl From<SbomFormatArg> for nixpush::sbom::SbomFormat {
    fn from(a: SbomFormatArg) -> Self {
        match a {
            SbomFormatArg::Spdx => nixpush::sbom::SbomFormat::Spdx,
            SbomFormatArg::Cyclonedx => nixpush::sbom::SbomFormat::CycloneDx,
        }
    }
}

/// `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    Oci,
    Docker,
}

impl From<FormatArg> for nixpush::image::ManifestFormat {
    fn from(a: FormatArg) -> Self {
        match a {
            FormatArg::Oci => nixpush::image::ManifestFormat::Oci,
            FormatArg::Docker => nixpush::image::ManifestFormat::Docker,
        }
    }
}

/// `--compression`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
    /// zstd with every file in a frame of its own and a table of contents (partial pulls).
    #[value(name = "zstd:chunked")]
    ZstdChunked,
    None,
}

impl CompressionArg {
    /// `--compression` as given, or gzip when it is not.
    pub(super) fn given(arg: Option<Self>) -> Self {
        arg.unwrap_or(CompressionArg::Gzip)
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            CompressionArg::Gzip => "gzip",
            CompressionArg::Zstd => "zstd",
            CompressionArg::ZstdChunked => "zstd:chunked",
            CompressionArg::None => "none",
        }
    }

    /// `--compression NAME`, as given.
    pub(super) fn flag(self) -> &'static str {
        match self {
            CompressionArg::Gzip => "--compression gzip",
            CompressionArg::Zstd => "--compression zstd",
            CompressionArg::ZstdChunked => "--compression zstd:chunked",
            CompressionArg::None => "--compression none",
        }
    }

    pub(super) fn with_level(self, level: Option<u32>) -> Result<Compression, UsageError> {
        let check = |range: std::ops::RangeInclusive<u32>, default: u32| {
            let level = level.unwrap_or(default);
            if range.contains(&level) {
                Ok(level)
            } else {
                Err(UsageError::Level {
                    compression: self,
                    level,
                    range,
                })
            }
        };
        Ok(match self {
            CompressionArg::Gzip => Compression::Gzip {
                level: check(0..=9, nixpush::layer::DEFAULT_GZIP_LEVEL)?,
            },
            CompressionArg::Zstd => Compression::Zstd {
                level: check(1..=19, nixpush::layer::DEFAULT_ZSTD_LEVEL)?,
            },
            CompressionArg::ZstdChunked => Compression::ZstdChunked {
                level: check(1..=19, nixpush::layer::DEFAULT_ZSTD_LEVEL)?,
            },
            CompressionArg::None => match level {
                None => Compression::None,
                Some(level) => {
                    return Err(UsageError::Level {
                        compression: self,
                        level,
                        range: 0..=0,
                    })
                }
            },
        })
    }
}
