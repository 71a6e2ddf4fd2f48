//! The `mercato` binary: parses the command line and hands it to `mercato_server`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = mercato_server::cli::Cli::from_args();
    match mercato_server::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole cause chain on one line, without a backtrace.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
