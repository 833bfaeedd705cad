//! The `medground` command line.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A panic is a bug; still, say so briefly and exit like any other failure.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("medground: internal error: {info}");
    }));
    let args = cli::Cli::parse();
    match std::panic::catch_unwind(|| cli::run(args)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("medground: {e}");
            ExitCode::from(2)
        }
        Err(_) => ExitCode::from(2),
    }
}
