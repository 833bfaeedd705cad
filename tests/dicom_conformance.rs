//! Every DICOM file of the pydicom-data wheel against pydicom with its pixel-data plugins
//! (references written by `tools/reference/dicom_reference.py`; `tools/test.sh` makes them and
//! runs this with `--ignored`). Where pydicom decodes a file, medground decodes its first frame
//! to the same values: equal for uncompressed and lossless syntaxes, within a lossy codec's
//! tolerance otherwise. Where pydicom refuses a file, medground refuses it with a named reason.

use std::path::PathBuf;

use medground::image::dicom;
use serde_json::Value;

/// Largest difference allowed between two decoders of a lossy syntax, as a share of the
/// value range (JPEG's IDCT and chroma upsampling and JPEG 2000's irreversible wavelet round
/// differently: 5 levels of 255 on color3d_jpeg_baseline.dcm), and of the mean difference.
const LOSSY_MAX: f64 = 0.03;
const LOSSY_MEAN: f64 = 0.002;

/// The references' folder and its index (one entry a file).
fn reference() -> (PathBuf, Vec<Value>) {
    let dir = PathBuf::from(std::env::var("MEDGROUND_DICOM_REF").expect(
        "MEDGROUND_DICOM_REF: the folder tools/reference/dicom_reference.py wrote (tools/test.sh sets it)",
    ));
    let index = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    (dir, index)
}

/// A reference's values (float64 little endian).
fn values(path: PathBuf) -> Vec<f64> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
#[ignore = "needs the pydicom references: tools/test.sh runs it"]
fn pydicom_data_conformance() {
    let (dir, index) = reference();
    assert!(index.len() >= 60, "{} files", index.len());
    let mut failures = vec![];
    let (mut equal, mut close, mut refused) = (0, 0, 0);
    for e in &index {
        let name = e["name"].as_str().unwrap();
        let bytes = std::fs::read(e["file"].as_str().unwrap()).unwrap();
        let ours = if medground::image::is_dicom(&bytes) {
            dicom::read(&bytes).map(|f| f.stored)
        } else {
            medground::image::decode(&bytes).map(|_| panic!("{name}: read without a header"))
        };
        if e["status"] == "refused" {
            match ours {
                Err(err) => {
                    let msg = err.to_string();
                    assert!(!msg.contains("malformed"), "{name}: {msg}");
                    println!("{name}: refused as pydicom does: {msg}");
                    refused += 1;
                }
                // Cut 8 bytes short, only the pixel sequence's closing delimiter is missing:
                // every frame is there, and medground reads the first as the intact file's.
                Ok(s) if name == "emri_small_jpeg_2k_lossless_too_short.dcm" => {
                    let whole = values(dir.join("emri_small_jpeg_2k_lossless.dcm.f64"));
                    assert_eq!(s.values, whole, "{name}");
                    println!("{name}: read, its first frame equal to the intact file's");
                }
                Ok(_) => failures.push(format!("{name}: pydicom refuses it, medground reads it")),
            }
            continue;
        }
        let stored = match ours {
            Ok(s) => s,
            Err(err) => {
                failures.push(format!("{name} ({}): {err}", e["syntax"]));
                continue;
            }
        };
        let want = values(dir.join(format!("{name}.f64")));
        let shape: Vec<u64> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let samples = if shape.len() == 3 { shape[2] } else { 1 };
        if (
            stored.height as u64,
            stored.width as u64,
            stored.samples as u64,
        ) != (shape[0], shape[1], samples)
        {
            failures.push(format!(
                "{name}: {}x{}x{} against pydicom's {shape:?}",
                stored.height, stored.width, stored.samples
            ));
            continue;
        }
        let diffs: Vec<f64> = stored
            .values
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .collect();
        let max = diffs.iter().copied().fold(0.0, f64::max);
        if max == 0.0 {
            equal += 1;
            continue;
        }
        let (lo, hi) = want
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let range = (hi - lo).max(1.0);
        let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
        let lossy = e["lossy"].as_bool().unwrap();
        let ybr = e["name"].as_str().unwrap().contains("ybr");
        println!(
            "{name} ({}): max |diff| {max} ({:.4} of the range), mean {mean:.4}",
            e["syntax"],
            max / range
        );
        if (lossy && max / range <= LOSSY_MAX && mean / range <= LOSSY_MEAN) || (ybr && max <= 1.0)
        {
            close += 1;
        } else {
            failures.push(format!("{name}: max |diff| {max}, mean {mean}"));
        }
    }
    println!("{equal} equal, {close} within tolerance, {refused} refused as pydicom does");
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The same chest film uncompressed and as JPEG 2000, lossless and lossy, read by the model.
#[test]
#[ignore = "needs the pydicom references: tools/test.sh runs it"]
fn compressed_chest_films_give_the_uncompressed_box() {
    let (_, index) = reference();
    let file = |n: &str| {
        let e = index.iter().find(|e| e["name"] == n).unwrap();
        std::fs::read(e["file"].as_str().unwrap()).unwrap()
    };
    let bundle = medground::weights::Bundle::read_dir(std::path::Path::new("assets/demo")).unwrap();
    let g = medground::Grounder::from_bundle(&bundle, &burn::prelude::Device::flex()).unwrap();
    let (uncompressed, _) = dicom::decode_with_info(&file("RG1_UNCR.dcm")).unwrap();
    for phrase in ["the heart", "right lung", "small left pleural effusion"] {
        let want = g.ground(&uncompressed, phrase).unwrap();
        for n in ["RG1_J2KR.dcm", "RG1_J2KI.dcm"] {
            let (p, info) = dicom::decode_with_info(&file(n)).unwrap();
            assert!(info.transfer_syntax.contains("JPEG 2000"), "{info:?}");
            let got = g.ground(&p, phrase).unwrap();
            assert_eq!(got.box_norm, want.box_norm, "{n}: {phrase}");
        }
    }
}

/// A small deterministic generator for the mutations.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Mutated copies of every small file of the set (bytes changed, runs zeroed, the end cut):
/// each is read or refused with an error, never a panic (RLE's dicom-rs decoder once indexed
/// past a damaged segment; RLE and JPEG-LS are now decoded by the crate's own codecs).
#[test]
#[ignore = "needs the pydicom references: tools/test.sh runs it"]
fn mutated_dicoms_are_read_or_refused_never_a_panic() {
    let (_, index) = reference();
    let mut state = 0x853C_49E6_748F_EA9B;
    let (mut tried, mut refused, mut panics) = (0, 0, vec![]);
    for e in &index {
        let bytes = std::fs::read(e["file"].as_str().unwrap()).unwrap();
        if bytes.len() > 300_000 {
            continue;
        }
        for round in 0..24 {
            let mut b = bytes.clone();
            // Mostly the pixel data (the file's second half), sometimes the header.
            let from = if round % 4 == 0 { 0 } else { b.len() / 2 };
            for _ in 0..1 + next(&mut state) % 8 {
                let i = from + next(&mut state) as usize % (b.len() - from);
                b[i] = next(&mut state) as u8;
            }
            if round % 3 == 0 {
                let i = from + next(&mut state) as usize % (b.len() - from);
                let end = (i + 1 + next(&mut state) as usize % 64).min(b.len());
                b[i..end].fill(0);
            }
            if round % 5 == 0 {
                b.truncate(b.len() - next(&mut state) as usize % (b.len() / 4 + 1));
            }
            tried += 1;
            match std::panic::catch_unwind(|| medground::image::decode(&b).map(|_| ())) {
                Ok(Ok(())) => {}
                Ok(Err(_)) => refused += 1,
                Err(_) => panics.push(format!("{} (round {round})", e["name"])),
            }
        }
    }
    println!(
        "{tried} mutated files: {refused} refused, {} read, {} panics",
        tried - refused - panics.len(),
        panics.len()
    );
    assert!(tried >= 1000, "{tried}");
    assert!(panics.is_empty(), "{panics:#?}");
}
