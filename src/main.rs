//! The `scorekeeper` binary: parse the command line, start telemetry, dispatch, and turn
//! the result into an exit code (0 ok, 1 runtime failure, 2 bad configuration or usage).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = scorekeeper::cli::Cli::parse();
    scorekeeper::telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(scorekeeper::cli::execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}
