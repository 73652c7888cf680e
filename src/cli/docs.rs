//! Shell completions and the man page, generated from the clap definitions in `cli`, so they
//! never drift from `--help`.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> std::io::Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "nixpush", out);
    Ok(())
}

/// Writes the man page, nixpush(1), in roff.
pub fn man_page(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_man_page_name_the_flags() {
        let mut bash = Vec::new();
        completions(clap_complete::Shell::Bash, &mut bash).unwrap();
        let bash = String::from_utf8(bash).unwrap();
        for flag in ["--platform", "--digest-file", "--annotation", "inspect"] {
            assert!(bash.contains(flag), "bash completion lacks {flag}");
        }
        let mut man = Vec::new();
        man_page(&mut man).unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(man.starts_with(".ie"), "{}", &man[..40.min(man.len())]);
        assert!(man.contains(".TH nixpush 1"), "no title header");
        assert!(man.contains("platform"));
    }
}
