//! Structured logs with `tracing`, on standard error: text or JSON lines, filtered by
//! `--log-level`. Every request's lines carry its request id (the `request` span of
//! `crm_http`). Nothing secret is logged: tokens, passwords and database URLs never reach a
//! log call.

use tracing_subscriber::EnvFilter;

use crate::BoxError;
use crate::cli::{LogArgs, LogFormat};

/// Installs the global subscriber. Call once, first thing.
///
/// # Errors
/// An invalid filter, or a subscriber already installed.
pub fn init(args: &LogArgs) -> Result<(), BoxError> {
    let filter = EnvFilter::try_new(&args.log_level)
        .map_err(|e| format!("invalid --log-level {:?}: {e}", args.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    }
}
