//! The `nixpush` binary: parse arguments, run the library, print the pushed reference on stdout
//! and everything for humans on stderr, and map failures to exit codes (2: usage, found before
//! any I/O; 1: everything else; 130: interrupted, with nothing tagged).

mod cli;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cli::json::json_document;
use cli::progress::{ProgressBars, ProgressLines, WarningLog};
use cli::{Cli, Command, UsageError};
use nixpush::progress::{Reporter, Silent};
use nixpush::push::{push_mirrors, push_sharing, PushError, SharedLayers};
use nixpush::request::PushRequest;
use nixpush::stop::Stop;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        None => cli.push,
        Some(Command::Push(args)) => *args,
        Some(Command::Inspect(args)) => return inspect(args),
        Some(Command::Completions(args)) => {
            return print_generated(|out| cli::docs::completions(args.shell, out))
        }
        Some(Command::Man) => return print_generated(cli::docs::man_page),
        Some(Command::Key(args)) => return key_result(cli::keys::key_command(args)),
        Some(Command::Verify(args)) => return cli::verify_args::run(args),
        Some(Command::Copy(args)) => return cli::copy_args::run(args),
        Some(Command::Rebase(args)) => return cli::rebase_args::run(args),
        Some(Command::Login(args)) => {
            return keyring_command(
                args.into_request()
                    .and_then(|r| nixpush::credentials::login(&r)),
            )
        }
        Some(Command::Logout(args)) => {
            return keyring_command(nixpush::credentials::logout(&args.registry))
        }
    };
    let output = Output {
        dry_run: args.dry_run,
        json: args.json,
        digest_file: args.digest_file.clone(),
    };
    let (quiet, verbose) = (args.quiet, args.verbose);
    let sign = args.sign.clone();
    let requests = match &args.images {
        Some(file) => cli::images_file::requests_from_file(file, &args),
        None => args.into_request().map(|r| vec![r]),
    };
    let mut requests = match requests {
        Ok(r) => r,
        Err(e) => return usage_error(&e),
    };
    // The key is read (its passphrase asked for) before anything is built or sent.
    match sign.signer() {
        Ok(signer) => requests.iter_mut().for_each(|r| r.signer = signer.clone()),
        Err(e) => return key_result(Err(e)),
    }
    let reporter: Arc<dyn Reporter> = if quiet {
        Arc::new(Silent)
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Arc::new(ProgressBars::new(verbose))
    } else {
        Arc::new(ProgressLines::new(verbose))
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return failure(&anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let outcome = runtime.block_on(async {
        let stop = Stop::default();
        let log = Arc::new(WarningLog::new(reporter));
        let mut pushing = Box::pin(run(&requests, log, &output, &stop));
        let outcome = tokio::select! {
            r = &mut pushing => Some(r),
            _ = tokio::signal::ctrl_c() => {
                // The uploads in flight end their streams and cancel their sessions: dropped in
                // the middle of a body, their sessions could not be cancelled. Briefly. A push
                // that completes meanwhile (its tags were being written) is reported as such.
                stop.stop();
                match tokio::time::timeout(WIND_DOWN, &mut pushing).await {
                    Ok(Ok(())) => Some(Ok(())),
                    _ => None,
                }
            }
        };
        // Dropped now, so the sessions of a push still running go to the list cancelled below.
        drop(pushing);
        // Upload sessions a failed or interrupted push left open are cancelled (briefly).
        nixpush::registry::cancel_abandoned_uploads().await;
        outcome
    });
    // Not waiting long for blocking work still running: local writers remove their temporary
    // files within it; a credential helper that does not answer dies with nixpush.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(RunError::Push(e))) if e.is_usage() => {
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

/// How long an interrupted push is given to end its uploads cleanly.
const WIND_DOWN: std::time::Duration = std::time::Duration::from_secs(3);

/// What goes to stdout (and `--digest-file`).
struct Output {
    dry_run: bool,
    json: bool,
    digest_file: Option<PathBuf>,
}

/// Why the run failed: the push, or writing what it pushed.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("the image was pushed, but not to every mirror: {0}")]
    Mirrors(String),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error("the image was pushed, but its reference could not be written to {}", path.display())]
    DigestFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Pushes each image in turn (sharing layers between them), printing each pinned reference on
/// stdout as soon as it is pushed (or, with `--json`, one document at the end); with
/// `--dry-run`, prints each plan instead.
async fn run(
    requests: &[PushRequest],
    log: Arc<WarningLog>,
    output: &Output,
    stop: &Stop,
) -> Result<(), RunError> {
    let reporter: Arc<dyn Reporter> = log.clone();
    let mut shared = SharedLayers::default();
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        if output.dry_run {
            let text = nixpush::push::dry_run(request, reporter.clone()).await?;
            print_line(&text);
            continue;
        }
        let mut outcome = push_sharing(request, reporter.clone(), &mut shared, stop).await?;
        // An archive written to stdout leaves no room for anything else there.
        if !output.json && !outcome.to_stdout {
            print_line(&outcome.reference);
        }
        // The mirrors once the push's own reference is out: an interrupted mirror leaves it.
        outcome.mirrors = push_mirrors(request, &outcome, reporter.clone(), stop).await;
        if !output.json {
            for mirror in &outcome.mirrors {
                if let Ok(reference) = &mirror.result {
                    print_line(reference);
                }
            }
        }
        outcomes.push(outcome);
    }
    if output.json {
        print_line(&json_document(&outcomes, &log.warnings()));
    }
    if let Some(path) = &output.digest_file {
        let text: String = outcomes
            .iter()
            .map(|o| format!("{}\n", o.reference))
            .collect();
        std::fs::write(path, text).map_err(|source| RunError::DigestFile {
            path: path.clone(),
            source,
        })?;
    }
    // Every mirror was tried; the run fails if one did not get the image.
    let failed: Vec<String> = outcomes
        .iter()
        .flat_map(|o| &o.mirrors)
        .filter_map(|m| {
            m.result
                .as_ref()
                .err()
                .map(|e| format!("{}: {e}", m.destination))
        })
        .collect();
    if !failed.is_empty() {
        return Err(RunError::Mirrors(failed.join("; ")));
    }
    Ok(())
}

fn print_line(text: &str) {
    // A closed stdout (`| head`) is not a failure of the push.
    let _ = writeln!(std::io::stdout(), "{}", text.trim_end());
}

/// `nixpush inspect`: the description on stdout (text, or JSON with `--json`).
fn inspect(args: cli::InspectArgs) -> ExitCode {
    let (json, verbose) = (args.json, args.verbose);
    let request = match args.into_request() {
        Ok(r) => r,
        Err(e) => return usage_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return failure(&anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let reporter: Arc<dyn Reporter> = Arc::new(ProgressLines::new(verbose));
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = nixpush::inspect::inspect(&request, reporter) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(inspection)) if inspection.sbom.is_some() => {
            // The document as the registry holds it, byte for byte.
            let sbom = inspection.sbom.unwrap_or_default();
            print_generated(|out| out.write_all(&sbom))
        }
        Some(Ok(inspection)) => {
            print_line(&if json {
                inspection.to_json()
            } else {
                inspection.to_text()
            });
            ExitCode::SUCCESS
        }
        Some(Err(e)) => failure(&anyhow::Error::new(e)),
        None => ExitCode::from(130),
    }
}

/// Prints a generated document (completions, man page) on stdout.
fn print_generated(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure(&anyhow::Error::new(e).context("cannot write to standard output")),
    }
}

/// `nixpush login` / `logout`: their message on stderr (nothing goes to stdout).
fn keyring_command(result: Result<String, nixpush::credentials::LoginError>) -> ExitCode {
    match result {
        Ok(message) => {
            eprintln!("nixpush: {message}");
            ExitCode::SUCCESS
        }
        Err(e) if e.is_usage() => {
            eprintln!("nixpush: error: {e}");
            ExitCode::from(2)
        }
        Err(e) => failure(&anyhow::Error::new(e)),
    }
}

/// A key that cannot be read or written is bad input: exit code 2, nothing done.
fn key_result(result: Result<String, nixpush::signing::KeyError>) -> ExitCode {
    match result {
        Ok(message) => {
            eprintln!("nixpush: {message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nixpush: error: {e}");
            ExitCode::from(2)
        }
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
