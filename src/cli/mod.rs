//! Subcommands. Each returns a library error, which `main` prints before exiting with code 2.

mod data;
mod ground;
mod init;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use medground::Result;

/// Where the shipped demo bundle lives.
pub const DEMO_MODEL: &str = "assets/demo";

#[derive(Parser)]
#[command(
    name = "medground",
    version,
    about = "Find what a clinical phrase points at in a medical image"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ground one phrase in one image (PNG, JPEG or DICOM); prints one JSON line.
    Ground(ground::Args),
    /// Synthetic corpus, dataset statistics and previews.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Write a bundle of the tiny preset with random weights (for tests and as a start).
    Init(init::InitArgs),
    /// Train the tiny preset's tokenizer from the project's phrase corpus.
    Tokenizer {
        #[arg(long, default_value = "assets/tokenizer.json")]
        out: PathBuf,
    },
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Ground(args) => ground::run(args),
        Command::Init(args) => init::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Tokenizer { out } => init::tokenizer(&out),
    }
}
