//! The loaders on small MS-CXR-format fixtures (v1.1.0 CSV, v1.0.0 JSON) and the generic JSONL:
//! good rows become records, malformed ones are reported with file and row.

use std::path::{Path, PathBuf};

use medground::data::load::load;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mscxr")
}

fn problems(loaded: &medground::data::record::Loaded) -> Vec<(usize, String)> {
    loaded
        .problems
        .iter()
        .map(|p| (p.row, p.message.clone()))
        .collect()
}

#[test]
fn mscxr_v1_1_csv() {
    let l = load(
        &dir().join("MS_CXR_Local_Alignment_v1.1.0.csv"),
        Some(&dir()),
    )
    .unwrap();
    assert_eq!(l.records.len(), 3);
    let r = &l.records[0];
    assert_eq!(
        (r.phrase.as_str(), r.category.as_str(), r.width, r.height),
        ("small left pleural effusion", "Pleural Effusion", 64, 48)
    );
    assert_eq!(
        (r.box_px.x1, r.box_px.y1, r.box_px.x2, r.box_px.y2),
        (30.0, 20.0, 50.0, 40.0)
    );
    // The DICOM path resolves to the MIMIC-CXR-JPG twin; the picture decodes.
    assert_eq!(r.picture().unwrap().width, 64);
    assert_eq!(r.split.as_deref(), Some("test"));
    let p = problems(&l);
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p[0].0 == 5 && p[0].1.contains("missing image"), "{p:?}");
    assert!(
        p[1].0 == 6 && p[1].1.contains("outside the 64x48 image"),
        "{p:?}"
    );
    assert!(
        p[2].0 == 7 && p[2].1.contains("unknown category \"Fracture\""),
        "{p:?}"
    );
    assert!(l.problems[0].to_string().starts_with(&format!(
        "{}:5:",
        dir().join("MS_CXR_Local_Alignment_v1.1.0.csv").display()
    )));
}

#[test]
fn mscxr_v1_0_json() {
    let l = load(
        &dir().join("MS_CXR_Local_Alignment_v1.0.0.json"),
        Some(&dir()),
    )
    .unwrap();
    assert_eq!(l.records.len(), 2);
    assert_eq!(l.records[1].phrase, "right apical pneumothorax");
    assert_eq!(l.records[1].box_px.x2, 14.0);
    let p = problems(&l);
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(p[0].0 == 3 && p[0].1.contains("missing image"));
    assert!(p[1].0 == 4 && p[1].1.contains("outside"));
    assert!(p[2].0 == 5 && p[2].1.contains("unknown category id 9"));
}

#[test]
fn generic_jsonl() {
    let l = load(&dir().join("records.jsonl"), None).unwrap();
    assert_eq!(l.records.len(), 2);
    // Sizes come from the image files themselves.
    assert_eq!((l.records[1].width, l.records[1].height), (40, 48));
    let p = problems(&l);
    assert_eq!(
        p.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![3, 4, 5, 6],
        "{p:?}"
    );
    assert!(p[0].1.contains("missing image"));
    assert!(p[1].1.contains("outside the 40x48 image"));
    assert!(p[2].1.contains("not a record"));
    assert!(p[3].1.contains("unknown category"));
}

#[test]
fn unknown_extension_is_an_error() {
    assert!(load(Path::new("data.txt"), None).is_err());
}
