//! `probe RUN_DIR`: how well a stage-1 run's vision tower localises each finding (`train::probe`).

use std::path::PathBuf;

use clap::Args;
use medground::Result;

#[derive(Args)]
pub struct ProbeArgs {
    /// A stage-1 training run folder (its config.toml and last checkpoint).
    run: PathBuf,
    /// Held-out synthetic test films to read.
    #[arg(long, default_value_t = 192)]
    films: usize,
}

pub fn run(args: ProbeArgs) -> Result<()> {
    let (step, rows) = medground::train::probe::report(&args.run, args.films)?;
    println!(
        "dense probe of {} at step {step} on {} test films",
        args.run.display(),
        args.films
    );
    println!(
        "| category | N | peak in box | probe-box mIoU | centre error px |\n|---|---:|---:|---:|---:|"
    );
    for r in rows {
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.1} |",
            r.category, r.n, r.peak_in_box, r.miou, r.centre_error
        );
    }
    Ok(())
}
