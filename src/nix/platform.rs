//! The OCI platform (`os`, `architecture`, `variant`) of a Nix `system` string. An image's
//! platform comes from what its store paths were built for, never from the machine pushing it.

use super::NixError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Maps a Nix system double (`x86_64-linux`) to GOARCH-style names, as dockerTools does.
    pub fn from_nix_system(system: &str) -> Result<Self, NixError> {
        let (cpu, os) = system.split_once('-').ok_or_else(|| NixError::NotLinux {
            system: system.to_owned(),
        })?;
        if os != "linux" {
            return Err(NixError::NotLinux {
                system: system.to_owned(),
            });
        }
        let (architecture, variant) = match cpu {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "i686" | "i586" | "i486" | "i386" => ("386", None),
            "armv7l" | "armv7a" => ("arm", Some("v7")),
            "armv6l" => ("arm", Some("v6")),
            "armv5tel" => ("arm", Some("v5")),
            "riscv64" => ("riscv64", None),
            "powerpc64le" => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "s390x" => ("s390x", None),
            "mips64el" => ("mips64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Ok(Platform {
            os: "linux".to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        })
    }
}

/// A platform as a user names it, `OS/ARCH[/VARIANT]` (`--platform linux/arm64`): a variant left
/// out matches any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl PlatformSpec {
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(ok) {
            return None;
        }
        Some(PlatformSpec {
            os: parts[0].to_owned(),
            architecture: parts[1].to_owned(),
            variant: parts.get(2).map(|v| (*v).to_owned()),
        })
    }

    /// The spec naming exactly `platform`.
    pub fn of(platform: &Platform) -> Self {
        PlatformSpec {
            os: platform.os.clone(),
            architecture: platform.architecture.clone(),
            variant: platform.variant.clone(),
        }
    }

    /// The Nix system double of this platform (`linux/arm64` -> `aarch64-linux`), as
    /// [`Platform::from_nix_system`] maps them back; `None` for one it does not map.
    pub fn nix_system(&self) -> Option<String> {
        if self.os != "linux" {
            return None;
        }
        let cpu = match (self.architecture.as_str(), self.variant.as_deref()) {
            ("amd64", _) => "x86_64",
            ("arm64", _) => "aarch64",
            ("386", _) => "i686",
            ("arm", None | Some("v7")) => "armv7l",
            ("arm", Some("v6")) => "armv6l",
            ("arm", Some("v5")) => "armv5tel",
            ("riscv64", _) => "riscv64",
            ("ppc64le", _) => "powerpc64le",
            ("ppc64", _) => "powerpc64",
            ("s390x", _) => "s390x",
            ("mips64le", _) => "mips64el",
            ("loong64", _) => "loongarch64",
            _ => return None,
        };
        Some(format!("{cpu}-linux"))
    }

    pub fn matches(&self, platform: &Platform) -> bool {
        self.os == platform.os
            && self.architecture == platform.architecture
            && (self.variant.is_none() || self.variant == platform.variant)
    }
}

impl std::fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_platform_names_the_nix_system_that_maps_back_to_it() {
        for system in [
            "x86_64-linux",
            "aarch64-linux",
            "armv7l-linux",
            "armv6l-linux",
            "i686-linux",
            "riscv64-linux",
            "powerpc64le-linux",
            "s390x-linux",
        ] {
            let platform = Platform::from_nix_system(system).unwrap();
            assert_eq!(
                PlatformSpec::of(&platform).nix_system().as_deref(),
                Some(system)
            );
        }
        let arm64 = PlatformSpec::parse("linux/arm64").unwrap();
        assert_eq!(arm64.nix_system().as_deref(), Some("aarch64-linux"));
        assert_eq!(
            PlatformSpec::parse("windows/amd64").unwrap().nix_system(),
            None
        );
    }

    #[test]
    fn maps_common_systems() {
        let p = Platform::from_nix_system("x86_64-linux").unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant),
            ("linux", "amd64", None)
        );
        let p = Platform::from_nix_system("aarch64-linux").unwrap();
        assert_eq!(
            (p.architecture.as_str(), p.variant.as_deref()),
            ("arm64", Some("v8"))
        );
        let p = Platform::from_nix_system("armv7l-linux").unwrap();
        assert_eq!(
            (p.architecture.as_str(), p.variant.as_deref()),
            ("arm", Some("v7"))
        );
    }

    #[test]
    fn refuses_non_linux_systems() {
        assert!(Platform::from_nix_system("aarch64-darwin").is_err());
        assert!(Platform::from_nix_system("builtin").is_err());
    }

    #[test]
    fn platform_specs_parse_and_match_with_an_optional_variant() {
        let arm = Platform::from_nix_system("aarch64-linux").unwrap();
        let spec = PlatformSpec::parse("linux/arm64").unwrap();
        assert!(spec.matches(&arm));
        assert!(PlatformSpec::parse("linux/arm64/v8").unwrap().matches(&arm));
        assert!(!PlatformSpec::parse("linux/arm64/v9").unwrap().matches(&arm));
        assert!(!PlatformSpec::parse("linux/amd64").unwrap().matches(&arm));
        assert_eq!(PlatformSpec::of(&arm).to_string(), "linux/arm64/v8");
        for bad in [
            "linux",
            "linux/",
            "Linux/amd64",
            "linux/amd64/v1/x",
            "/amd64",
        ] {
            assert!(PlatformSpec::parse(bad).is_none(), "{bad}");
        }
    }
}
