//! Credentials given explicitly: `--creds`, `--username` with `--password-stdin`, or
//! `NIXPUSH_USERNAME`/`NIXPUSH_PASSWORD`. Standard input and the environment are read here, once.

use nixpush::registry::{Credentials, Secret};

use super::UsageError;

/// Credentials given on the command line or in the environment; two sources at once are an
/// error (which should win would be a guess).
pub(super) fn explicit_credentials(
    creds: Option<&str>,
    username: Option<&str>,
    password_stdin: bool,
) -> Result<Option<Credentials>, UsageError> {
    let env_user = std::env::var("NIXPUSH_USERNAME")
        .ok()
        .filter(|u| !u.is_empty());
    let env_pass = std::env::var("NIXPUSH_PASSWORD").ok();
    let given = [creds.is_some(), username.is_some(), env_user.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(UsageError::Credentials(
            "give credentials one way: --creds, --username with --password-stdin, or NIXPUSH_USERNAME/NIXPUSH_PASSWORD",
        ));
    }
    if creds.is_some() {
        return given_credentials(creds);
    }
    if let (Some(user), true) = (username, password_stdin) {
        let mut password = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut password).map_err(|_| {
            UsageError::Credentials("could not read the password from standard input")
        })?;
        let password = password.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            return Err(UsageError::Credentials(
                "--password-stdin read an empty password",
            ));
        }
        return Ok(Some(Credentials {
            username: user.to_owned(),
            password: Secret::new(password),
        }));
    }
    match (env_user, env_pass) {
        (Some(user), Some(pass)) if !pass.is_empty() => Ok(Some(Credentials {
            username: user,
            password: Secret::new(pass),
        })),
        (Some(_), _) => Err(UsageError::Credentials(
            "NIXPUSH_USERNAME is set but NIXPUSH_PASSWORD is empty",
        )),
        (None, _) => Ok(None),
    }
}

/// Credentials given as `USER:PASSWORD` in a flag, and only there: for a command with one
/// registry on each side (`copy`), where the environment's would be a guess at which side.
pub(super) fn given_credentials(creds: Option<&str>) -> Result<Option<Credentials>, UsageError> {
    let Some(c) = creds else {
        return Ok(None);
    };
    let (user, pass) =
        c.split_once(':')
            .filter(|(u, _)| !u.is_empty())
            .ok_or(UsageError::Credentials(
                "credentials are given as USER:PASSWORD",
            ))?;
    Ok(Some(Credentials {
        username: user.to_owned(),
        password: Secret::new(pass),
    }))
}
