//! Programs nixpush starts (`nix`, `git`, credential helpers) end with it, even when nixpush is
//! killed outright (`kill -9`, an OOM kill, a cancelled CI job), when nothing of nixpush runs to
//! stop them: the kernel stops them (Linux's parent-death signal).

/// Makes the program `command` starts die with nixpush (for a `tokio` command, pass
/// `as_std_mut()`).
#[cfg(target_os = "linux")]
pub fn dies_with_us(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and calls only prctl(2), getppid(2) and
    // _exit(2), which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // nixpush may have died between the fork and the prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Elsewhere there is no such signal: children are stopped when nixpush drops them.
#[cfg(not(target_os = "linux"))]
pub fn dies_with_us(_command: &mut std::process::Command) {}
