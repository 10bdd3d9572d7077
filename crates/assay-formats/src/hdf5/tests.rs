use super::*;

const V0: &[u8] = include_bytes!("testdata/v0.h5");
const V3: &[u8] = include_bytes!("testdata/v3.h5");
const USERBLOCK: &[u8] = include_bytes!("testdata/userblock.h5");
const DENSE: &[u8] = include_bytes!("testdata/dense.h5");
const CONTINUED: &[u8] = include_bytes!("testdata/continued.h5");
const CFG: &[u8] = br#"{"class_name": "Sequential", "config": {"name": "s"}}"#;

fn read(data: &[u8]) -> RootAttributes {
    root_attributes(data, &Hdf5Limits::default()).unwrap()
}

fn strings<'a>(r: &'a RootAttributes, name: &str) -> &'a [Vec<u8>] {
    match &r.attributes.iter().find(|a| a.name == name).unwrap().value {
        Value::Strings(s) => s,
        other => panic!("{name}: {other:?}"),
    }
}

fn check_common(r: &RootAttributes) {
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(strings(r, "model_config"), &[CFG.to_vec()]);
    assert_eq!(strings(r, "note"), &["h\u{e9}llo".as_bytes().to_vec()]);
    assert_eq!(strings(r, "fixed"), &[b"fixed-len".to_vec()]);
    assert_eq!(strings(r, "list"), &[b"a".to_vec(), b"bc".to_vec()]);
    let count = r.attributes.iter().find(|a| a.name == "count").unwrap();
    assert_eq!(
        count.value,
        Value::Other {
            class: 0,
            elements: 1
        }
    );
}

#[test]
fn superblock_v0_object_header_v1() {
    let r = read(V0);
    assert_eq!(
        (r.base, r.superblock_version, r.object_header_version),
        (0, 0, 1)
    );
    check_common(&r);
}

#[test]
fn superblock_v3_object_header_v2() {
    let r = read(V3);
    assert_eq!((r.superblock_version, r.object_header_version), (3, 2));
    check_common(&r);
}

#[test]
fn user_block() {
    assert_eq!(signature_offset(USERBLOCK), Some(512));
    let r = read(USERBLOCK);
    assert_eq!(r.base, 512);
    check_common(&r);
}

#[test]
fn dense_storage_with_btree_and_huge_objects() {
    let r = read(DENSE);
    assert!(r.dense);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.attributes.len(), 62);
    for i in [0, 29, 30, 59] {
        assert_eq!(
            strings(&r, &format!("a{i:03}")),
            &[format!("value {i}").into_bytes()]
        );
    }
    assert!(strings(&r, "model_config")[0].starts_with(CFG));
    assert_eq!(strings(&r, "big_fixed")[0].len(), 6000);
}

#[test]
fn continuation_chunks() {
    let r = read(CONTINUED);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.attributes.len(), 41);
    assert_eq!(strings(&r, "model_config"), &[CFG.to_vec()]);
}

#[test]
fn not_hdf5() {
    assert_eq!(signature_offset(b"PK\x03\x04"), None);
    assert_eq!(
        root_attributes(b"hello", &Hdf5Limits::default()),
        Err(Hdf5Error::NoSignature)
    );
}

#[test]
fn limits_are_findings() {
    let tight = Hdf5Limits {
        max_value: 100,
        ..Hdf5Limits::default()
    };
    let r = root_attributes(DENSE, &tight).unwrap();
    // The name of a huge attribute is inside the object that was not read.
    assert!(
        r.problems.iter().any(|p| p.reason.contains("too large")),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.name.as_deref() == Some("model_config")),
        "{:?}",
        r.problems
    );
}

/// Every truncation and every single-byte corruption of the sample files must return
/// (an error or problems), never panic or hang.
#[test]
fn damaged_files_never_panic() {
    for data in [V0, V3, DENSE, CONTINUED] {
        for n in (0..data.len()).step_by(97) {
            let _ = root_attributes(&data[..n], &Hdf5Limits::default());
        }
        let mut d = data.to_vec();
        for i in (0..d.len().min(8192)).step_by(3) {
            let old = d[i];
            for v in [0x00, 0xff, old ^ 0x80, old.wrapping_add(1)] {
                d[i] = v;
                let _ = root_attributes(&d, &Hdf5Limits::default());
            }
            d[i] = old;
        }
    }
}
