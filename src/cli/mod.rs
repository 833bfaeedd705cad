//! Subcommands. Each returns a library error, which `main` prints before exiting with code 2.

mod bench;
mod calibrate;
mod data;
mod eval;
mod export;
mod ground;
mod init;
mod ood;
mod probe;
mod train;

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
    /// Fine-tune: stage 1 (alignment of the tiny base) or stage 2 (PFMVG: LoRA + connector).
    Train(train::TrainArgs),
    /// Per-category table (N, mIoU, Acc@0.3/0.5/0.7, malformed) of a model on a dataset.
    Eval(eval::EvalArgs),
    /// Fit the map from answer probability to the chance of a hit (IoU >= 0.5) on validation
    /// data and store it in the bundle (calibration.json): `ground`, the page and the npm package
    /// then report that chance as the confidence.
    Calibrate(calibrate::CalibrateArgs),
    /// A run's last checkpoint -> browser bundle (LoRA merged) and PEFT adapter.
    Export(export::ExportArgs),
    /// Merge an HF PEFT LoRA adapter into a base bundle (or keep it beside the base: --name).
    ImportPeft(export::ImportArgs),
    /// Write a bundle of the tiny preset with random weights (for tests and as a start).
    Init(init::InitArgs),
    /// Per finding, how well a stage-1 run's vision tower localises it (its dense probe on test
    /// films of its own corpus, upright when it trained on upright films): the ceiling of stage
    /// 2, which keeps the tower frozen.
    Probe(probe::ProbeArgs),
    /// Training samples/s, grounding latency and peak memory (native side of docs/BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Train a tiny-preset tokenizer from the project's phrase corpus. The shipped models are
    /// tied to the committed assets/tokenizer.json; the corpus has grown since, so this gives
    /// another vocabulary: --out has no default so that it never overwrites the shipped file.
    Tokenizer {
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Ground(args) => ground::run(args),
        Command::Init(args) => init::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Train(args) => train::run_cmd(args),
        Command::Eval(args) => eval::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Export(args) => export::export(args),
        Command::ImportPeft(args) => export::import(args),
        Command::Tokenizer { out } => init::tokenizer(&out),
    }
}
