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

#[cfg(test)]
mod tests {
    use super::*;

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
}
