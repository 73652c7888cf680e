//! The `nixpush` binary: parse arguments, run the library, print the pushed reference on stdout
//! and everything for humans on stderr, and map failures to exit codes (2: usage, found before
//! any I/O; 1: everything else; 130: interrupted, with nothing tagged).

mod report;
mod terminal_report;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use nixpush::cli::{Cli, Command, UsageError};
use nixpush::progress::{Reporter, Silent};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        None => cli.push,
        Some(Command::Push(args)) => *args,
        Some(other) => {
            let name = other.reserved_name().unwrap_or("?");
            return usage_error(&UsageError::Reserved(name));
        }
    };
    let (quiet, dry_run) = (args.quiet, args.dry_run);
    let request = match args.into_request() {
        Ok(r) => r,
        Err(e) => return usage_error(&e),
    };
    let reporter: Arc<dyn Reporter> = if quiet {
        Arc::new(Silent)
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Arc::new(terminal_report::TerminalReporter::new())
    } else {
        Arc::new(report::StderrReporter::new())
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return failure(&anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = run(&request, reporter, dry_run) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(text)) => {
            // A closed stdout (`| head`) is not a failure of the push.
            let _ = writeln!(std::io::stdout(), "{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Some(Err(e)) if e.is_usage() => {
            eprintln!("nixpush: error: {e}");
            ExitCode::from(2)
        }
        Some(Err(e)) => failure(&anyhow::Error::new(e)),
        None => {
            // The tag is written last, in one request: it is either unchanged or names the
            // complete image, never a partial one.
            eprintln!("nixpush: interrupted; the tag was not moved to a partial image");
            ExitCode::from(130)
        }
    }
}

/// The push (its pinned reference) or, with `--dry-run`, the plan: what goes to stdout.
async fn run(
    request: &nixpush::push::PushRequest,
    reporter: Arc<dyn Reporter>,
    dry_run: bool,
) -> Result<String, nixpush::push::PushError> {
    if dry_run {
        nixpush::push::dry_run(request, reporter).await
    } else {
        Ok(nixpush::push::push(request, reporter).await?.pinned)
    }
}

fn usage_error(e: &UsageError) -> ExitCode {
    eprintln!("nixpush: error: {e}");
    ExitCode::from(2)
}

fn failure(e: &anyhow::Error) -> ExitCode {
    eprintln!("nixpush: error: {e:#}");
    ExitCode::FAILURE
}
