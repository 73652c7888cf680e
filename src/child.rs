//! Programs nixpush starts (`nix`, `git`, credential helpers) end with it, even when nixpush is
//! killed outright (`kill -9`, an OOM kill, a cancelled CI job), when nothing of nixpush runs to
//! stop them: the kernel stops them (Linux's parent-death signal).

/// What a child runs between fork and exec to die with nixpush: give it to `pre_exec`.
#[cfg(target_os = "linux")]
pub fn die_with_parent() -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
    let parent = std::process::id() as libc::pid_t;
    move || {
        // SAFETY: prctl(2), getppid(2) and _exit(2) are async-signal-safe, as code between fork
        // and exec must be.
        unsafe {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // nixpush may have died between the fork and the prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
        }
        Ok(())
    }
}

/// Elsewhere there is no such signal: children are stopped when nixpush drops them.
#[cfg(not(target_os = "linux"))]
pub fn die_with_parent() -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
    || Ok(())
}
