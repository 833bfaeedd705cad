//! `data synth | stats | preview`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use medground::data::preview::{COLORS, Tile, sheet};
use medground::data::record::{JsonlRow, Record};
use medground::data::stats::Stats;
use medground::data::synth::{Split, Synth};
use medground::data::{open, phrases::CATEGORIES};
use medground::{Error, Result};
use rayon::prelude::*;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Render synthetic films: PNG images and a JSONL of phrase/box pairs.
    Synth {
        #[arg(long)]
        n: usize,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "train")]
        split: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Side of the square films, pixels.
        #[arg(long, default_value_t = 224)]
        size: usize,
        /// Upright films, read as a reader reads them (the corpus `synth:N:split:seed:upright`).
        #[arg(long)]
        upright: bool,
    },
    /// Per-category counts, box size and position histograms (text, and a PNG with --out).
    Stats {
        #[command(flatten)]
        set: DatasetArgs,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A contact sheet of films with their boxes and phrases.
    Preview {
        #[command(flatten)]
        set: DatasetArgs,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 32)]
        n: usize,
        /// Another dataset (e.g. the real film's boxes, tests/fixtures/chest_rg1_boxes.jsonl)
        /// whose first film, with all its boxes, leads the sheet for comparison.
        #[arg(long)]
        beside: Option<String>,
    },
}

#[derive(Args)]
pub struct DatasetArgs {
    /// A .jsonl, an MS-CXR .csv (v1.1.0) or .json (v1.0.0), or
    /// synth:N[:train|val|test[:seed]][:upright] (anatomy:... for the anatomy phrases).
    pub dataset: String,
    /// Root the dataset's image paths are relative to (MS-CXR: the MIMIC-CXR folder).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Fail on any unusable row instead of reporting and skipping it.
    #[arg(long)]
    pub strict: bool,
}

impl DatasetArgs {
    /// Loads the records, reporting unusable rows on stderr (fatal with --strict).
    pub fn records(&self, size: usize) -> Result<Vec<Record>> {
        let loaded = open(&self.dataset, self.images.as_deref(), size)?;
        for p in loaded.problems.iter().take(20) {
            eprintln!("skipped {p}");
        }
        if loaded.problems.len() > 20 {
            eprintln!("... and {} more rows skipped", loaded.problems.len() - 20);
        }
        if self.strict && !loaded.problems.is_empty() {
            return Err(Error::Other(format!(
                "{} unusable rows (--strict)",
                loaded.problems.len()
            )));
        }
        if loaded.records.is_empty() {
            return Err(Error::Other(format!("{}: no usable records", self.dataset)));
        }
        Ok(loaded.records)
    }
}

pub fn split(name: &str) -> Result<Split> {
    match name {
        "train" => Ok(Split::Train),
        "val" => Ok(Split::Val),
        "test" => Ok(Split::Test),
        _ => Err(Error::Other(format!(
            "unknown split {name:?}: use train, val or test"
        ))),
    }
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Synth {
            n,
            out,
            split: name,
            seed,
            size,
            upright,
        } => {
            let generator = Synth::new(seed, split(&name)?, size).with_upright(upright);
            synth(n, &out, &generator, &name)
        }
        DataCommand::Stats { set, out } => {
            let stats = Stats::new(&set.records(224)?);
            print!("{}", stats.text());
            if let Some(out) = out {
                save(&stats.png(), &out)?;
            }
            Ok(())
        }
        DataCommand::Preview {
            set,
            out,
            n,
            beside,
        } => {
            let records = set.records(224)?;
            let take: Vec<&Record> = records.iter().take(n).collect();
            let pictures = take
                .iter()
                .map(|r| r.picture())
                .collect::<Result<Vec<_>>>()?;
            let mut tiles: Vec<Tile> = take
                .iter()
                .zip(&pictures)
                .map(|(r, p)| Tile {
                    picture: p,
                    boxes: vec![(r.box_px, COLORS[0], r.phrase.clone())],
                })
                .collect();
            let beside = match beside {
                Some(d) => DatasetArgs {
                    dataset: d,
                    images: None,
                    strict: set.strict,
                }
                .records(224)?,
                None => Vec::new(),
            };
            let lead = beside.first().map(|r| r.picture()).transpose()?;
            if let Some(picture) = &lead {
                let first = &beside[0];
                let boxes = beside
                    .iter()
                    .filter(|r| r.image.same(&first.image))
                    .enumerate()
                    .map(|(k, r)| (r.box_px, COLORS[k % COLORS.len()], String::new()))
                    .collect();
                tiles.insert(0, Tile { picture, boxes });
            }
            save(&sheet(&tiles, 8, 224), &out)
        }
    }
}

pub fn save(img: &image::RgbImage, path: &Path) -> Result<()> {
    img.save(path)
        .map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))
}

fn synth(n: usize, out: &Path, generator: &Synth, name: &str) -> Result<()> {
    let size = generator.size;
    let start = std::time::Instant::now();
    let images = out.join("images");
    std::fs::create_dir_all(&images).map_err(|e| Error::io(&images, e))?;
    let bar = medground::train::progress::Progress::new("data synth", n as u64, 0);
    let rows: Vec<Vec<JsonlRow>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let s = generator.sample(i as u64);
            bar.inc(1);
            let file = format!("images/{name}_{i:06}.png");
            let bytes = s.picture.to_bytes();
            image::GrayImage::from_raw(size as u32, size as u32, bytes)
                .expect("square film")
                .save(out.join(&file))
                .map_err(|e| Error::Other(format!("cannot write {file}: {e}")))?;
            Ok(s.findings
                .iter()
                .map(|f| JsonlRow {
                    image: file.clone(),
                    phrase: f.phrase.clone(),
                    box_xywh: [
                        f.box_px.x1,
                        f.box_px.y1,
                        f.box_px.x2 - f.box_px.x1,
                        f.box_px.y2 - f.box_px.y1,
                    ],
                    category: CATEGORIES[f.category].to_string(),
                    split: Some(name.to_string()),
                    width: Some(size as u32),
                    height: Some(size as u32),
                })
                .collect())
        })
        .collect::<Result<_>>()?;
    bar.finish();
    let path = out.join(format!("{name}.jsonl"));
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?);
    let mut pairs = 0;
    for row in rows.iter().flatten() {
        writeln!(
            file,
            "{}",
            serde_json::to_string(row).expect("row serialises")
        )
        .map_err(|e| Error::io(&path, e))?;
        pairs += 1;
    }
    file.flush().map_err(|e| Error::io(&path, e))?;
    eprintln!(
        "wrote {n} films, {pairs} phrase/box pairs to {} in {:.1} s",
        path.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
