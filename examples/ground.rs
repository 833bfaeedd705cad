//! medground as a library: load a bundle, read a film (PNG, JPEG or DICOM), encode it once and
//! ground each phrase in it, printing the box in the film's pixels with its confidence.
//!
//! ```text
//! cargo run --release --example ground -- tests/fixtures/chest_rg1.dcm "the heart" "right lung"
//! cargo run --release --example ground -- --model DIR film.png "small left pleural effusion"
//! ```

use std::path::Path;
use std::process::ExitCode;

use medground::weights::Bundle;
use medground::{Error, Grounder, Result};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(mut args: Vec<String>) -> Result<()> {
    let model = match args.iter().position(|a| a == "--model") {
        Some(i) if i + 1 < args.len() => args.drain(i..=i + 1).nth(1).expect("two drained"),
        Some(_) => return Err(Error::Other("--model needs a folder".into())),
        None => "assets/demo".into(),
    };
    let [image, phrases @ ..] = args.as_slice() else {
        return Err(Error::Other(
            "usage: ground [--model DIR] IMAGE PHRASE [PHRASE...]".into(),
        ));
    };
    if phrases.is_empty() {
        return Err(Error::Other("give at least one phrase".into()));
    }
    // The bundle: config, tokenizer and weights, their checksums checked against the manifest.
    let bundle = Bundle::read_dir(Path::new(&model))?;
    let grounder = Grounder::from_owned(bundle, &medground::device::parse("cpu")?)?;
    let bytes = std::fs::read(image).map_err(|e| Error::io(Path::new(image), e))?;
    let film = medground::image::decode(&bytes)?;
    // The vision tower and the out-of-distribution score run once for the film...
    let encoded = grounder.encode(&film)?;
    // ...and each phrase only decodes its answer.
    for phrase in phrases {
        let a = grounder.ground_encoded(&encoded, phrase)?;
        let [x1, y1, x2, y2] = a.box_px;
        let confidence = match a.confidence {
            Some(c) => format!("confidence {c:.2}"),
            None => "no confidence: not a chest film the model knows".into(),
        };
        println!("{phrase}: [{x1:.0}, {y1:.0}, {x2:.0}, {y2:.0}] ({confidence})");
    }
    Ok(())
}
