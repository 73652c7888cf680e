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
use nixpush::push::{push_sharing, PushError, PushRequest, SharedLayers};

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
    let requests = match &args.images {
        Some(file) => nixpush::images_file::requests_from_file(file, &args),
        None => args.into_request().map(|r| vec![r]),
    };
    let requests = match requests {
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
            r = run(&requests, reporter, dry_run) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
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

/// Pushes each image in turn (sharing layers between them), printing each pinned reference on
/// stdout as soon as it is pushed; with `--dry-run`, prints each plan instead.
async fn run(
    requests: &[PushRequest],
    reporter: Arc<dyn Reporter>,
    dry_run: bool,
) -> Result<(), PushError> {
    let mut shared = SharedLayers::default();
    for request in requests {
        let text = if dry_run {
            nixpush::push::dry_run(request, reporter.clone()).await?
        } else {
            push_sharing(request, reporter.clone(), &mut shared)
                .await?
                .pinned
        };
        // A closed stdout (`| head`) is not a failure of the push.
        let _ = writeln!(std::io::stdout(), "{}", text.trim_end());
    }
    Ok(())
}

fn usage_error(e: &UsageError) -> ExitCode {
    eprintln!("nixpush: error: {e}");
    ExitCode::from(2)
}

fn failure(e: &anyhow::Error) -> ExitCode {
    eprintln!("nixpush: error: {e:#}");
    ExitCode::FAILURE
}
