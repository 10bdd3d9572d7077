//! `read_as_unpickled` over the caller's analyses reads exactly what `read_as` reads, and
//! unpickles nothing itself; without an analysis for the bytes it reads, it unpickles
//! them once (fixtures/tensor/view and fixtures/tensor/pickled/view, made by torch,
//! numpy and joblib).

use assay_formats::pickle::{self, AnalysedStream, PickleAnalysis, PickleLimits};
use assay_formats::zip::{self, ZipLimits};
use assay_tensor::{
    MemberAnalysis, ReadError, ReadLimits, TensorFile, TensorFormat, Unpickled, read_as,
    read_as_unpickled,
};
use std::io::Write;
use std::path::Path;

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(rel),
    )
    .unwrap()
}

/// Everything a reader produced, bytes included, as comparable text.
fn summary(file: &TensorFile) -> String {
    let mut s = format!("{:?} {:?} {:?}\n", file.format, file.aliases, file.problems);
    for t in &file.tensors {
        s += &format!(
            "T {} {} {:?} {:?} {:?} {:?} {:?} {:?}\n",
            t.name,
            t.dtype.name(),
            t.endian,
            t.shape,
            t.strides,
            t.range,
            t.member,
            AnalysedStream::of(t.data.as_slice())
        );
    }
    for u in &file.unclaimed {
        s += &format!(
            "U {:?} {:?} {} {} {:?}\n",
            u.range,
            u.member,
            u.what,
            u.trailing,
            AnalysedStream::of(u.data.as_slice())
        );
    }
    s
}

/// Reads `data` with `known`, recording what the reader unpickled itself.
fn read_known<'a>(
    format: TensorFormat,
    data: &'a [u8],
    known: &Unpickled,
) -> (Result<TensorFile<'a>, ReadError>, Vec<AnalysedStream>) {
    pickle::trace_analyses(true);
    let r = read_as_unpickled(format, data, &ReadLimits::default(), None, known);
    (r, pickle::trace_analyses(false))
}

fn same(a: &Result<TensorFile, ReadError>, b: &Result<TensorFile, ReadError>) {
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(summary(a), summary(b)),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!(
            "one read failed: {:?} / {:?}",
            a.as_ref().err(),
            b.as_ref().err()
        ),
    }
}

fn analyse(bytes: &[u8]) -> PickleAnalysis {
    pickle::analyze(bytes, &PickleLimits::default())
}

/// The analysis of each `data.pkl` member of a zip, as the scanner records it.
fn data_pkls(data: &[u8]) -> Vec<MemberAnalysis> {
    let ar = zip::parse(data, &ZipLimits::default()).unwrap();
    ar.entries
        .iter()
        .filter(|e| e.name.ends_with("/data.pkl"))
        .map(|e| {
            let mut body = Vec::new();
            zip::extract_to(data, e, &mut body, u64::MAX).unwrap();
            MemberAnalysis {
                name: e.name.clone(),
                local_offset: e.local_offset,
                analysis: analyse(&body),
            }
        })
        .collect()
}

/// A zip of `entries` (name, bytes, deflated?), as a minimal writer lays it out.
fn zip_of(entries: &[(String, Vec<u8>, bool)]) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data, deflate) in entries {
        let body = if *deflate {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            data.clone()
        };
        let method: u16 = if *deflate { 8 } else { 0 };
        let crc = zip::crc32(data);
        let offset = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            for x in [20u16, 0, method, 0, 0] {
                v.extend(x.to_le_bytes());
            }
            for x in [crc, body.len() as u32, data.len() as u32] {
                v.extend(x.to_le_bytes());
            }
            v.extend((name.len() as u16).to_le_bytes());
            v.extend(0u16.to_le_bytes());
        };
        out.extend(b"PK\x03\x04");
        common(&mut out);
        out.extend(name.as_bytes());
        out.extend(&body);
        central.extend(b"PK\x01\x02\x14\x00");
        common(&mut central);
        central.extend([0u8; 10]); // comment length, disk, internal and external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    out.extend(&central);
    out.extend(b"PK\x05\x06\x00\x00\x00\x00");
    let n = entries.len() as u16;
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// The members of a zip, re-packed with every member deflated.
fn deflated(data: &[u8]) -> Vec<u8> {
    let ar = zip::parse(data, &ZipLimits::default()).unwrap();
    let entries: Vec<(String, Vec<u8>, bool)> = ar
        .entries
        .iter()
        .map(|e| {
            let mut body = Vec::new();
            zip::extract_to(data, e, &mut body, u64::MAX).unwrap();
            (e.name.clone(), body, true)
        })
        .collect();
    zip_of(&entries)
}

#[test]
fn torch_zip_with_its_data_pkl_analysis_is_read_without_unpickling() {
    let stored = fixture("tensor/view/torch_zip.pt");
    for data in [stored.clone(), deflated(&stored)] {
        let members = data_pkls(&data);
        assert_eq!(members.len(), 1);
        let known = Unpickled {
            whole: None,
            members: &members,
        };
        let (got, unpickled) = read_known(TensorFormat::PytorchZip, &data, &known);
        assert_eq!(unpickled, [], "the reader unpickled data.pkl again");
        let own = read_as(
            TensorFormat::PytorchZip,
            &data,
            &ReadLimits::default(),
            None,
        );
        same(&got, &own);
        assert!(got.unwrap().tensors.len() > 1);
    }
}

#[test]
fn torch_zip_without_an_analysis_of_that_member_unpickles_it_once() {
    let data = fixture("tensor/view/torch_zip.pt");
    let mut members = data_pkls(&data);
    // Another member of the same name (a different local header) is not this one.
    members[0].local_offset += 1;
    let known = Unpickled {
        whole: None,
        members: &members,
    };
    let (got, unpickled) = read_known(TensorFormat::PytorchZip, &data, &known);
    assert_eq!(unpickled.len(), 1, "{unpickled:?}");
    same(
        &got,
        &read_as(
            TensorFormat::PytorchZip,
            &data,
            &ReadLimits::default(),
            None,
        ),
    );
}

#[test]
fn legacy_checkpoint_is_read_from_the_whole_streams_analysis() {
    let data = fixture("tensor/view/torch_legacy.pt");
    let whole = analyse(&data);
    let known = Unpickled {
        whole: Some(&whole),
        members: &[],
    };
    let (got, unpickled) = read_known(TensorFormat::PytorchLegacy, &data, &known);
    assert_eq!(unpickled, []);
    let own = read_as(
        TensorFormat::PytorchLegacy,
        &data,
        &ReadLimits::default(),
        None,
    );
    same(&got, &own);
    assert!(got.unwrap().tensors.len() > 1);

    // Broken or cut short anywhere: the same error either way.
    let main_start = whole.parts[3].start as usize;
    let mut cuts = vec![
        main_start - 1,
        main_start + 3,
        whole.parts[3].end as usize + 2,
    ];
    cuts.push(data.len() - 1);
    for cut in cuts {
        let short = &data[..cut];
        let whole = analyse(short);
        let known = Unpickled {
            whole: Some(&whole),
            members: &[],
        };
        let (got, unpickled) = read_known(TensorFormat::PytorchLegacy, short, &known);
        assert_eq!(unpickled, []);
        same(
            &got,
            &read_as(
                TensorFormat::PytorchLegacy,
                short,
                &ReadLimits::default(),
                None,
            ),
        );
    }
}

#[test]
fn pickled_arrays_are_read_from_the_streams_analysis() {
    for f in ["arrays_p4.pkl", "arrays.joblib"] {
        let data = fixture(&format!("tensor/pickled/view/{f}"));
        let whole = analyse(&data);
        let known = Unpickled {
            whole: Some(&whole),
            members: &[],
        };
        let (got, unpickled) = read_known(TensorFormat::PickleNumpy, &data, &known);
        assert_eq!(unpickled, [], "{f}");
        assert!(!got.as_ref().unwrap().tensors.is_empty(), "{f}");
        same(
            &got,
            &read_as(
                TensorFormat::PickleNumpy,
                &data,
                &ReadLimits::default(),
                None,
            ),
        );
        // Without one, the reader unpickles the stream itself, once.
        let (_, unpickled) = read_known(TensorFormat::PickleNumpy, &data, &Unpickled::default());
        assert_eq!(unpickled, [AnalysedStream::of(&data)], "{f}");
    }
}
