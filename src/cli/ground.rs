//! `ground`: one image, one or more phrases (the film encoded once), a JSON line each.

use std::path::PathBuf;

use clap::Args as ClapArgs;
use medground::image::{Picture, decode_with_info};
use medground::weights::Bundle;
use medground::{Error, Grounder, Result};

use super::DEMO_MODEL;
use super::init::read;

#[derive(ClapArgs)]
pub struct Args {
    /// PNG, JPEG or DICOM file.
    #[arg(long)]
    image: PathBuf,
    /// What to find, e.g. "small left pleural effusion"; repeat it to ask several phrases of
    /// the film, which is then read once (one JSON line a phrase, in order).
    #[arg(long, required = true)]
    phrase: Vec<String>,
    /// Model bundle folder (or an HF Idefics3 checkpoint folder).
    #[arg(long, default_value = DEMO_MODEL)]
    model: PathBuf,
    /// cpu, wgpu, vulkan or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: String,
    /// One of the bundle's adapters (`import-peft --name`) instead of its base weights.
    #[arg(long)]
    adapter: Option<String>,
    /// Also write the image with the (first phrase's) box drawn on it.
    #[arg(long)]
    overlay: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<()> {
    let bytes = read(&args.image)?;
    let at = |e| Error::Other(format!("{}: {e}", args.image.display()));
    let (picture, info) = decode_with_info(&bytes).map_err(at)?;
    if let Some(info) = info.filter(|i| i.frames > 1) {
        eprintln!(
            "note: {} holds {} frames; the first was read",
            args.image.display(),
            info.frames
        );
    }
    let device = medground::device::parse(&args.device)?;
    let mut grounder = Grounder::from_owned(Bundle::read_dir(&args.model)?, &device)?;
    if let Some(name) = &args.adapter {
        grounder.use_adapter(Some(name))?;
    }
    let film = grounder.encode(&picture)?;
    let mut first = None;
    for (i, phrase) in args.phrase.iter().enumerate() {
        let mut answer = grounder.ground_encoded(&film, phrase)?;
        if i == 0 {
            answer.ms += film.ms; // the first answer pays for reading the film
        }
        println!(
            "{}",
            serde_json::to_string(&answer).expect("answer serialises")
        );
        first.get_or_insert(answer.box_px);
    }
    if let (Some(path), Some(box_px)) = (&args.overlay, first) {
        overlay(&picture, box_px)
            .save(path)
            .map_err(|e| Error::Other(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

/// The picture in colour with the box outlined in red.
pub fn overlay(picture: &Picture, b: [f32; 4]) -> image::RgbImage {
    let luma = picture.luma();
    let (w, h) = (picture.width, picture.height);
    let mut img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = medground::image::to_byte(luma[(y * w + x) as usize]);
        image::Rgb([v, v, v])
    });
    let t = (w.max(h) / 200).max(2) as i64;
    let [x1, y1, x2, y2] = b.map(|v| v.round() as i64);
    let (x2, y2) = (x2.min(w as i64 - 1), y2.min(h as i64 - 1));
    for y in y1..=y2 {
        for x in x1..=x2 {
            let edge = x - x1 < t || x2 - x < t || y - y1 < t || y2 - y < t;
            if edge && x >= 0 && y >= 0 {
                img.put_pixel(x as u32, y as u32, image::Rgb([255, 40, 40]));
            }
        }
    }
    img
}
