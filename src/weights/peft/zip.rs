//! A PEFT adapter folder as one zip file: what the page downloads and keeps, and what
//! `import-peft` and `useAdapterFiles` read back (a folder zipped by hand works too: the two
//! files are found by name in any subfolder, stored or deflated).

use std::io::{Cursor, Read, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::{CONFIG, WEIGHTS_FILE};
use crate::error::{Error, Result};

/// Most bytes either file may unpack to (a 256M model's rank-64 adapter is about 60 MB).
const MAX_FILE: u64 = 1 << 30;

/// `adapter_config.json` and `adapter_model.safetensors` in a zip, stored (the weights do not
/// compress) and dated 1980 (the same adapter gives the same bytes).
pub fn zip(config: &[u8], weights: &[u8]) -> Result<Vec<u8>> {
    let err = |e: zip::result::ZipError| Error::Weights(format!("zip: {e}"));
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(weights.len() as u64 >= u32::MAX as u64);
    for (name, bytes) in [(CONFIG, config), (WEIGHTS_FILE, weights)] {
        w.start_file(name, options).map_err(err)?;
        w.write_all(bytes)
            .map_err(|e| Error::Weights(format!("zip: {e}")))?;
    }
    Ok(w.finish().map_err(err)?.into_inner())
}

/// The two files of a zipped PEFT adapter folder: (config, weights).
pub fn unzip(bytes: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let bad = |what: String| Error::Weights(format!("adapter zip: {what}"));
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(e.to_string()))?;
    let mut found = [None, None];
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        let name = file.name().map_err(|e| bad(e.to_string()))?;
        let name = name.rsplit('/').next().unwrap_or_default().to_string();
        let Some(slot) = [CONFIG, WEIGHTS_FILE].iter().position(|n| *n == name) else {
            continue;
        };
        if file.size() > MAX_FILE {
            return Err(bad(format!("{name} unpacks to {} bytes", file.size())));
        }
        let mut out = Vec::with_capacity(file.size() as usize);
        file.by_ref()
            .take(MAX_FILE + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("{name}: {e}")))?;
        found[slot] = Some(out);
    }
    match found {
        [Some(c), Some(w)] => Ok((c, w)),
        [c, _] => Err(bad(format!(
            "no {} in it",
            if c.is_none() { CONFIG } else { WEIGHTS_FILE }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zipped_adapter_reads_back_and_a_bad_zip_is_refused() {
        let weights: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let z = zip(b"{\"r\": 4}", &weights).unwrap();
        assert_eq!(z, zip(b"{\"r\": 4}", &weights).unwrap(), "not reproducible");
        let (c, w) = unzip(&z).unwrap();
        assert_eq!((c.as_slice(), w), (b"{\"r\": 4}".as_slice(), weights));
        assert!(unzip(b"PK\x03\x04 not a zip").is_err());
        let mut half = ZipWriter::new(Cursor::new(Vec::new()));
        half.start_file("x/adapter_config.json", SimpleFileOptions::default())
            .unwrap();
        half.write_all(b"{}").unwrap();
        let half = half.finish().unwrap().into_inner();
        let err = unzip(&half).unwrap_err().to_string();
        assert!(err.contains(WEIGHTS_FILE), "{err}");
    }
}
