//! The root filesystem around a plain package, as one generated layer, so ordinary programs
//! work in its image: `/etc/passwd` and `/etc/group` (root, nobody, and the `--user` when it
//! names one), `/tmp` (mode 1777), and the top-level directories of each `--contents` store path
//! linked into `/` the way dockerTools' `contents` (a `symlinkJoin`) does: a name only one
//! package has becomes a symlink into that package; a directory several packages (or nixpush's
//! own `/etc`) share becomes a real directory, merged one level further down. The first package
//! wins a conflict between files; a package's own `/etc/passwd` wins over the generated one.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::layer::RootEntry;

/// uid and gid given to a `--user` that names a user nixpush has to invent.
const INVENTED_ID: u32 = 1000;
const NOBODY_ID: u32 = 65534;

#[derive(Debug, thiserror::Error)]
#[error("cannot read {} to link it into the image", path.display())]
pub struct RootFsError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The entries of the generated layer, parents before children.
pub fn root_entries(
    contents: &[PathBuf],
    user: Option<&str>,
) -> Result<Vec<RootEntry>, RootFsError> {
    let (passwd, group) = passwd_and_group(user);
    let mut generated: BTreeMap<String, RootEntry> = BTreeMap::new();
    for entry in [
        RootEntry::Directory {
            path: "etc".into(),
            mode: 0o755,
        },
        RootEntry::File {
            path: "etc/passwd".into(),
            mode: 0o644,
            content: passwd.into_bytes(),
        },
        RootEntry::File {
            path: "etc/group".into(),
            mode: 0o644,
            content: group.into_bytes(),
        },
        RootEntry::Directory {
            path: "tmp".into(),
            mode: 0o1777,
        },
    ] {
        generated.insert(entry.path().to_owned(), entry);
    }
    let mut out = Vec::new();
    merge("", contents, &mut generated, &mut out)?;
    out.extend(generated.into_values());
    out.sort_by(|a, b| a.path().split('/').cmp(b.path().split('/')));
    Ok(out)
}

/// Links the entries of `sources` (directories) at `rel`; removes from `generated` what the
/// packages provide themselves.
fn merge(
    rel: &str,
    sources: &[PathBuf],
    generated: &mut BTreeMap<String, RootEntry>,
    out: &mut Vec<RootEntry>,
) -> Result<(), RootFsError> {
    let mut names: BTreeSet<OsString> = BTreeSet::new();
    for dir in sources {
        let read = std::fs::read_dir(dir).map_err(|source| RootFsError {
            path: dir.clone(),
            source,
        })?;
        for entry in read {
            let entry = entry.map_err(|source| RootFsError {
                path: dir.clone(),
                source,
            })?;
            names.insert(entry.file_name());
        }
    }
    for name in names {
        let name_str = String::from_utf8_lossy(name.as_bytes()).into_owned();
        let child = if rel.is_empty() {
            name_str
        } else {
            format!("{rel}/{name_str}")
        };
        let holders: Vec<PathBuf> = sources
            .iter()
            .map(|s| s.join(&name))
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .collect();
        let all_dirs = holders.iter().all(|p| p.is_dir());
        let generated_below = generated
            .keys()
            .any(|k| k.starts_with(&format!("{child}/")));
        if all_dirs && (holders.len() > 1 || generated_below) {
            generated.remove(&child);
            out.push(RootEntry::Directory {
                path: child.clone(),
                mode: 0o755,
            });
            merge(&child, &holders, generated, out)?;
        } else {
            // One package's name, or a conflict the first package wins: a link into it.
            generated.retain(|k, _| k != &child && !k.starts_with(&format!("{child}/")));
            out.push(RootEntry::Symlink {
                path: child,
                target: holders[0].to_string_lossy().into_owned(),
            });
        }
    }
    Ok(())
}

/// `/etc/passwd` and `/etc/group`: root and nobody, plus the user `--user` names.
fn passwd_and_group(user: Option<&str>) -> (String, String) {
    let mut passwd = format!(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:{NOBODY_ID}:{NOBODY_ID}:nobody:/var/empty:/bin/sh\n"
    );
    let mut group = format!("root:x:0:\nnobody:x:{NOBODY_ID}:\n");
    let Some(user) = user else {
        return (passwd, group);
    };
    let (name, group_name) = user.split_once(':').unwrap_or((user, ""));
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if name.is_empty() || numeric(name) || name == "root" || name == "nobody" {
        return (passwd, group);
    }
    let gid = if numeric(group_name) {
        group_name.parse().unwrap_or(INVENTED_ID)
    } else {
        let group_name = if group_name.is_empty() {
            name
        } else {
            group_name
        };
        if group_name != "root" && group_name != "nobody" {
            group.push_str(&format!("{group_name}:x:{INVENTED_ID}:\n"));
        }
        match group_name {
            "root" => 0,
            "nobody" => NOBODY_ID,
            _ => INVENTED_ID,
        }
    };
    passwd.push_str(&format!(
        "{name}:x:{INVENTED_ID}:{gid}:{name}:/var/empty:/bin/sh\n"
    ));
    (passwd, group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn pkg(files: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in files {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f.as_bytes()).unwrap();
        }
        d
    }

    fn paths(entries: &[RootEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                RootEntry::Directory { path, .. } => format!("{path}/"),
                RootEntry::File { path, .. } => path.clone(),
                RootEntry::Symlink { path, target } => format!("{path} -> {target}"),
            })
            .collect()
    }

    fn has_path(entries: &[RootEntry], path: &Path) -> bool {
        entries.iter().any(|e| Path::new(e.path()) == path)
    }

    #[test]
    fn base_files_alone() {
        let e = root_entries(&[], None).unwrap();
        assert_eq!(paths(&e), ["etc/", "etc/group", "etc/passwd", "tmp/"]);
        let tmp = e.iter().find(|e| e.path() == "tmp").unwrap();
        assert_eq!(
            tmp,
            &RootEntry::Directory {
                path: "tmp".into(),
                mode: 0o1777
            }
        );
    }

    #[test]
    fn contents_link_unique_names_and_merge_shared_directories() {
        let a = pkg(&["bin/a", "etc/ssl/cert.pem", "share/doc/a"]);
        let b = pkg(&["bin/b", "lib/libb.so"]);
        let (ap, bp) = (a.path().display(), b.path().display());
        let e = root_entries(&[a.path().into(), b.path().into()], None).unwrap();
        assert_eq!(
            paths(&e),
            [
                "bin/".to_owned(),
                format!("bin/a -> {ap}/bin/a"),
                format!("bin/b -> {bp}/bin/b"),
                "etc/".to_owned(),
                "etc/group".to_owned(),
                "etc/passwd".to_owned(),
                format!("etc/ssl -> {ap}/etc/ssl"),
                format!("lib -> {bp}/lib"),
                format!("share -> {ap}/share"),
                "tmp/".to_owned(),
            ]
        );
    }

    #[test]
    fn a_package_passwd_wins_over_the_generated_one() {
        let a = pkg(&["etc/passwd"]);
        let e = root_entries(&[a.path().into()], Some("app")).unwrap();
        let passwd = e.iter().find(|e| e.path() == "etc/passwd").unwrap();
        assert!(matches!(passwd, RootEntry::Symlink { .. }), "{passwd:?}");
        assert!(has_path(&e, Path::new("etc/group")));
    }

    #[test]
    fn users_named_by_user_get_entries() {
        let (p, g) = passwd_and_group(Some("app"));
        assert!(
            p.ends_with("app:x:1000:1000:app:/var/empty:/bin/sh\n"),
            "{p}"
        );
        assert!(g.ends_with("app:x:1000:\n"), "{g}");
        let (p, g) = passwd_and_group(Some("app:staff"));
        assert!(
            p.contains("app:x:1000:1000:") && g.contains("staff:x:1000:"),
            "{p}{g}"
        );
        let (p, g) = passwd_and_group(Some("app:100"));
        assert!(
            p.contains("app:x:1000:100:") && !g.contains("app"),
            "{p}{g}"
        );
        for plain in [
            None,
            Some("1000"),
            Some("1000:1000"),
            Some("root"),
            Some("nobody:nobody"),
        ] {
            assert_eq!(passwd_and_group(plain), passwd_and_group(None), "{plain:?}");
        }
    }
}
