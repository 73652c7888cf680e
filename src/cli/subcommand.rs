//! What the registry subcommands (`copy`, `rebase`, `verify`) share around the library call: the
//! one-line error with its exit code, the signing key from the same flags a push takes, the
//! runtime with progress on stderr, and what is printed of an image written.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use nixpush::progress::Reporter;
use nixpush::signing::Signer;

use super::progress::ProgressLines;

/// Prints `message` as nixpush's one error line and gives exit code `code`.
pub(super) fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("nixpush: error: {message}");
    ExitCode::from(code)
}

/// The signer `--sign-key` and `--sign-passphrase-file` name, if any; an unusable key is a usage
/// error (exit 2), said before anything moves.
pub(super) fn signer(
    key: Option<PathBuf>,
    passphrase_file: Option<PathBuf>,
) -> Result<Option<Arc<Signer>>, ExitCode> {
    let sign = super::sign_args::SignArgs {
        sign_key: key,
        sign_passphrase_file: passphrase_file,
        provenance: false,
    };
    sign.signer().map_err(|e| fail(2, &e.to_string()))
}

/// What a subcommand that wrote an image prints: `doc` with `--json`, else the pinned
/// reference alone.
pub(super) fn print_written(json: bool, reference: &str, doc: serde_json::Value) -> ExitCode {
    if json {
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        println!("{reference}");
    }
    ExitCode::SUCCESS
}

/// Runs the library's `work` on a runtime of its own with progress lines on stderr; its error
/// is one line, exit code 1.
pub(super) fn run_library<T, E: std::fmt::Display, F>(
    verbose: bool,
    work: impl FnOnce(Arc<dyn Reporter>) -> F,
) -> Result<T, ExitCode>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(1, &format!("cannot start the async runtime: {e}")))?;
    let reporter: Arc<dyn Reporter> = Arc::new(ProgressLines::new(verbose));
    runtime
        .block_on(work(reporter))
        .map_err(|e| fail(1, &e.to_string()))
}
