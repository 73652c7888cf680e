//! Where an image goes: a registry reference (the main target), or a local target for trying
//! the image first: `oci:DIR[:TAG]` (an OCI image layout) or `docker-archive:PATH[:NAME[:TAG]]`
//! (`-` for standard output). The prefixes are skopeo's, so the same strings work in both tools.

use std::fmt;
use std::path::PathBuf;

use super::LocalTarget;
use crate::reference::{valid_tag, Reference, ReferenceError};

/// A checked destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Registry(Reference),
    Local(LocalTarget),
}

#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("{0:?}: {1}")]
    Local(String, &'static str),
}

impl Destination {
    pub fn parse(s: &str) -> Result<Self, DestinationError> {
        if let Some(rest) = s.strip_prefix("oci:") {
            // The tag is what follows the last ':' when it looks like one: DIR may hold ':'.
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((dir, tag)) if !dir.is_empty() && !tag.contains('/') => {
                    if !valid_tag(tag) {
                        return Err(DestinationError::Local(s.to_owned(), "not a valid tag"));
                    }
                    (dir, Some(tag.to_owned()))
                }
                _ => (rest, None),
            };
            if dir.is_empty() {
                return Err(DestinationError::Local(
                    s.to_owned(),
                    "expected oci:DIR[:TAG]",
                ));
            }
            return Ok(Destination::Local(LocalTarget::OciLayout {
                dir: PathBuf::from(dir),
                tag,
            }));
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            let (path, name) = match rest.split_once(':') {
                Some((p, n)) => (p, Some(n)),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(DestinationError::Local(
                    s.to_owned(),
                    "expected docker-archive:PATH[:NAME[:TAG]] (- for standard output)",
                ));
            }
            let name = match name {
                None => None,
                // Checked as a registry reference would be: what `docker load` will accept.
                Some(n) => match Reference::parse(n) {
                    Ok(r) if r.digest().is_none() => Some(n.to_owned()),
                    _ => {
                        return Err(DestinationError::Local(
                            s.to_owned(),
                            "the archive's image name must be NAME or NAME:TAG",
                        ))
                    }
                },
            };
            return Ok(Destination::Local(LocalTarget::DockerArchive {
                path: (path != "-").then(|| PathBuf::from(path)),
                name,
            }));
        }
        Ok(Destination::Registry(Reference::parse(s)?))
    }

    /// The registry reference, for a registry destination.
    pub fn registry(&self) -> Option<&Reference> {
        match self {
            Destination::Registry(r) => Some(r),
            Destination::Local(_) => None,
        }
    }

    /// Whether the image's bytes go to standard output (which then carries nothing else).
    pub fn is_stdout(&self) -> bool {
        matches!(
            self,
            Destination::Local(LocalTarget::DockerArchive { path: None, .. })
        )
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Registry(r) => write!(f, "{r}"),
            Destination::Local(LocalTarget::OciLayout { dir, tag }) => {
                write!(f, "oci:{}", dir.display())?;
                match tag {
                    Some(t) => write!(f, ":{t}"),
                    None => Ok(()),
                }
            }
            Destination::Local(LocalTarget::DockerArchive { path, name }) => {
                let path = path
                    .as_ref()
                    .map_or("-".to_owned(), |p| p.display().to_string());
                write!(f, "docker-archive:{path}")?;
                match name {
                    Some(n) => write!(f, ":{n}"),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(dir: &str, tag: Option<&str>) -> Destination {
        Destination::Local(LocalTarget::OciLayout {
            dir: dir.into(),
            tag: tag.map(str::to_owned),
        })
    }

    #[test]
    fn oci_layouts_with_and_without_tags() {
        assert_eq!(Destination::parse("oci:out").unwrap(), oci("out", None));
        assert_eq!(
            Destination::parse("oci:/tmp/x:v1.2").unwrap(),
            oci("/tmp/x", Some("v1.2"))
        );
        // A ':' inside the directory, with a '/' after it, is part of the directory.
        assert_eq!(Destination::parse("oci:a:b/c").unwrap(), oci("a:b/c", None));
        assert!(Destination::parse("oci:").is_err());
        assert!(Destination::parse("oci:dir:-bad").is_err());
        assert_eq!(
            Destination::parse("oci:/tmp/x:v1.2").unwrap().to_string(),
            "oci:/tmp/x:v1.2"
        );
    }

    #[test]
    fn docker_archives_to_stdout_or_a_file() {
        let d = Destination::parse("docker-archive:-").unwrap();
        assert!(d.is_stdout());
        assert_eq!(d.to_string(), "docker-archive:-");
        let d = Destination::parse("docker-archive:/tmp/a.tar:localhost/app:1").unwrap();
        assert_eq!(
            d,
            Destination::Local(LocalTarget::DockerArchive {
                path: Some("/tmp/a.tar".into()),
                name: Some("localhost/app:1".into()),
            })
        );
        assert!(!d.is_stdout());
        assert!(Destination::parse("docker-archive:").is_err());
        assert!(Destination::parse("docker-archive:-:Bad Name").is_err());
    }

    #[test]
    fn anything_else_is_a_registry_reference() {
        let d = Destination::parse("ghcr.io/org/app:1").unwrap();
        assert_eq!(d.registry().unwrap().repository(), "org/app");
        assert!(Destination::parse("ghcr.io/Org/app").is_err());
    }
}
