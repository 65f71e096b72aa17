//! Tracing setup: human-readable text by default, JSON lines with `--log-format json`.
//! The level comes from `RUST_LOG` (default `info`); HTTP and SQL libraries are kept at
//! `warn` so their debug output (which may carry URLs or statements) stays out of logs.

use tracing_subscriber::EnvFilter;

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Default filter when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str =
    "info,sqlx=warn,hyper=warn,hyper_util=warn,reqwest=warn,rustls=warn,h2=warn";

/// Installs the global subscriber (logs go to stderr). Safe to call once per process.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    // Err means a subscriber is installed already (tests); keep it.
    let _ = result;
}
