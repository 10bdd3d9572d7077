//! Hand-assembled opcode streams, one per technique, checked against what CPython's C
//! unpickler would do.

use super::*;

fn run(data: &[u8]) -> PickleAnalysis {
    analyze(data, &PickleLimits::default())
}

fn callables(a: &PickleAnalysis) -> Vec<String> {
    a.calls.iter().map(|c| c.callable.qualified()).collect()
}

/// `len` as a 4-byte little-endian BINUNICODE argument followed by the text.
fn binunicode(s: &str) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend((s.len() as u32).to_le_bytes());
    v.extend(s.as_bytes());
    v
}

#[test]
fn protocol0_global_reduce() {
    let a = run(b"cos\nsystem\n(S'echo pwned'\ntR.");
    assert_eq!(callables(&a), ["os.system"]);
    assert_eq!(a.calls[0].evidence, "os.system('echo pwned')");
    assert_eq!(a.calls[0].kind, CallKind::Reduce);
    assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
}

#[test]
fn python2_names_are_fixed_up_below_protocol_3() {
    let a = run(b"c__builtin__\neval\n(S'1'\ntR.");
    assert_eq!(callables(&a), ["builtins.eval"]);
}

#[test]
fn stack_global_operands_from_memo() {
    // PROTO 4, 'os' MEMOIZE, 'system' MEMOIZE, POP, POP, GET 0, GET 1, STACK_GLOBAL, ...
    let mut d = vec![0x80, 4];
    d.extend([0x8c, 2]);
    d.extend(b"os");
    d.push(0x94);
    d.extend([0x8c, 6]);
    d.extend(b"system");
    d.push(0x94);
    d.extend(b"00");
    d.extend([b'h', 0, b'h', 1, 0x93]);
    d.extend([0x8c, 4]);
    d.extend(b"echo");
    d.extend([0x85, b'R', b'.']);
    let a = run(&d);
    assert_eq!(callables(&a), ["os.system"]);
}

#[test]
fn stack_global_dotted_name() {
    let mut d = vec![0x80, 4];
    d.extend(binunicode("pathlib"));
    d.extend(binunicode("os.system"));
    d.push(0x93);
    d.extend(binunicode("echo pwned"));
    d.extend([0x85, b'R', b'.']);
    let a = run(&d);
    assert_eq!(callables(&a), ["pathlib.os.system"]);
}

#[test]
fn inst_and_obj_call_their_class() {
    let a = run(b"(S'echo'\nios\nsystem\n.");
    assert_eq!(callables(&a), ["os.system"]);
    assert_eq!(a.calls[0].kind, CallKind::Instantiate);
    let a = run(b"\x80\x02(cos\nsystem\nS'echo'\no.");
    assert_eq!(callables(&a), ["os.system"]);
}

#[test]
fn newobj_and_newobj_ex() {
    let a = run(b"\x80\x02csubprocess\nPopen\n(S'echo'\nt\x81.");
    assert_eq!(callables(&a), ["subprocess.Popen"]);
    assert_eq!(a.calls[0].kind, CallKind::NewObj);
    let a = run(b"\x80\x04csubprocess\nPopen\n)}\x92.");
    assert_eq!(callables(&a), ["subprocess.Popen"]);
    assert!(a.calls[0].no_args);
}

#[test]
fn getattr_chain_resolves_to_the_real_callable() {
    // getattr(__import__('os'), 'system')('echo')
    let d =
        b"\x80\x02cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR(S'echo'\ntR.";
    let a = run(d);
    assert_eq!(
        callables(&a),
        ["builtins.__import__", "builtins.getattr", "os.system"]
    );
}

#[test]
fn calls_whose_result_is_popped_still_count() {
    let a = run(b"\x80\x02cos\nsystem\n(S'echo'\ntR0N.");
    assert_eq!(callables(&a), ["os.system"]);
    assert!(a.anomalies.is_empty());
}

#[test]
fn ext_codes_are_recorded_and_callable() {
    let a = run(b"\x80\x02\x82\x01(S'echo'\ntR.");
    assert_eq!(a.extensions, vec![(2, 1)]);
    assert_eq!(a.calls[0].callable, Callable::Extension(1));
}

#[test]
fn build_on_a_global_is_an_attribute_overwrite() {
    let a = run(b"\x80\x02ctorch\nload\nN}S'x'\nNs\x86b.");
    assert!(a.has_anomaly(AnomalyKind::BuildOnGlobal));
}

#[test]
fn dunder_state_is_reported() {
    let a = run(b"\x80\x02ccollections\nOrderedDict\n)R}S'__reduce__'\nNsb.");
    assert!(a.has_anomaly(AnomalyKind::DunderState));
}

#[test]
fn frame_overrun_is_reported_but_analysis_goes_on() {
    // FRAME of 3 bytes, then BINUNICODE 'posix' (10 bytes) crossing it.
    let mut d = vec![0x80, 4, 0x95];
    d.extend(3u64.to_le_bytes());
    d.extend(binunicode("posix"));
    d.extend(binunicode("system"));
    d.push(0x93);
    d.extend(binunicode("echo"));
    d.extend([0x85, b'R', b'.']);
    let a = run(&d);
    assert!(a.has_anomaly(AnomalyKind::FrameViolation));
    assert_eq!(callables(&a), ["posix.system"]);
}

#[test]
fn concatenated_pickles_are_all_scanned() {
    let mut d = b"\x80\x02}q\x00.".to_vec();
    d.extend(b"\x80\x02cos\nsystem\n(S'echo'\ntR.");
    let a = run(&d);
    assert_eq!(a.pickles, 2);
    assert!(a.has_anomaly(AnomalyKind::Concatenated));
    assert_eq!(callables(&a), ["os.system"]);
}

#[test]
fn junk_after_stop_is_trailing_data() {
    let a = run(b"\x80\x02}.\xb9\x7f\x00\x01junk");
    assert!(a.has_anomaly(AnomalyKind::TrailingData));
    assert!(a.calls.is_empty());
}

#[test]
fn stream_breaking_after_a_call_reports_both() {
    let a = run(b"\x80\x02cos\nsystem\n(S'echo'\ntR\xff");
    assert_eq!(callables(&a), ["os.system"]);
    assert!(a.has_anomaly(AnomalyKind::Malformed));
    let a = run(b"\x80\x02cos\nsystem\n(S'echo'\ntR");
    assert!(a.has_anomaly(AnomalyKind::Truncated));
}

#[test]
fn mark_fence_makes_pops_below_a_mark_fail() {
    // REDUCE right after MARK would pop below the fence: CPython raises.
    let a = run(b"\x80\x02cos\nsystem\nS'x'\n(R.");
    assert!(a.has_anomaly(AnomalyKind::Malformed));
    assert!(a.calls.is_empty());
}

#[test]
fn pop_of_a_mark_pops_the_mark() {
    let a = run(b"\x80\x02N(0.");
    assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
}

#[test]
fn nested_pickle_loads_payload_is_extracted() {
    let inner = b"\x80\x02cos\nsystem\n(S'echo'\ntR.";
    let mut d = b"\x80\x03cpickle\nloads\nC".to_vec();
    d.push(inner.len() as u8);
    d.extend(inner);
    d.extend(b"\x85R.");
    let a = run(&d);
    assert_eq!(a.nested.len(), 1);
    assert_eq!(a.nested[0].loader, "pickle.loads");
    assert_eq!(a.nested[0].data, inner);
}

#[test]
fn nested_payload_through_base64_is_decoded() {
    use base64::Engine;
    let inner = b"\x80\x02cos\nsystem\n(S'echo'\ntR.";
    let b64 = base64::engine::general_purpose::STANDARD.encode(inner);
    let mut d = b"\x80\x03cpickle\nloads\ncbase64\nb64decode\n".to_vec();
    d.extend(binunicode(&b64));
    d.extend(b"\x85R\x85R.");
    let a = run(&d);
    assert_eq!(a.nested.len(), 1);
    assert_eq!(a.nested[0].data, inner);
}

#[test]
fn copyreg_reconstructor_reports_the_class_it_builds() {
    let a = run(b"\x80\x02ccopyreg\n_reconstructor\nc__main__\nNet\ncbuiltins\nobject\nN\x87R.");
    let names = callables(&a);
    assert!(names.contains(&"__main__.Net".to_string()), "{names:?}");
    let net = a
        .calls
        .iter()
        .find(|c| c.callable.qualified() == "__main__.Net")
        .unwrap();
    assert_eq!(net.kind, CallKind::Reconstruct);
    assert!(net.no_args);
}

#[test]
fn text_that_starts_with_an_opcode_byte_names_nothing() {
    let a = run(b"class Foo(Module):\n    pass\n");
    assert!(!a.names_anything());
}

#[test]
fn persistent_ids_of_torch_storages_are_parsed() {
    let d = b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ.";
    let a = run(d);
    assert_eq!(a.persistent.len(), 1);
    assert!(a.persistent[0].is_torch_storage);
    assert_eq!(a.persistent[0].storage_key.as_deref(), Some("0"));
    assert!(a.calls.is_empty());
}

#[test]
fn limits_stop_analysis_with_an_anomaly() {
    let limits = PickleLimits {
        max_opcodes: 10,
        ..PickleLimits::default()
    };
    let d = [b'N'; 100];
    let a = analyze(&d, &limits);
    assert!(a.has_anomaly(AnomalyKind::LimitReached));
}

#[test]
fn huge_declared_lengths_do_not_allocate() {
    let mut d = vec![0x80, 4, 0x8e];
    d.extend(u64::MAX.to_le_bytes());
    let a = run(&d);
    assert!(a.has_anomaly(AnomalyKind::Truncated));
}

#[test]
fn joblib_inline_object_array_is_scanned_as_a_nested_pickle() {
    // NumpyArrayWrapper with an object dtype: a second pickle follows BUILD inline.
    let mut d = b"\x80\x04cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(".to_vec();
    d.extend(binunicode("dtype"));
    d.extend(b"cnumpy\ndtype\n");
    d.extend(binunicode("O8"));
    d.extend(b"\x89\x88\x87R");
    d.extend(binunicode("shape"));
    d.extend(b"K\x01\x85");
    d.extend(b"ub");
    d.extend(b"\x80\x04cos\nsystem\n(S'echo'\ntR.");
    d.extend(b".");
    let a = run(&d);
    assert_eq!(a.inline_arrays.len(), 1);
    assert!(
        callables(&a).contains(&"os.system".to_string()),
        "{:?} {:?}",
        callables(&a),
        a.anomalies
    );
    assert_eq!(a.pickles, 1);
}

#[test]
fn protocol0_numbers_are_read_like_cpython() {
    // strtol base 0 / int(s, 0): hex, NUL-terminated, underscores; PUT uses base 10.
    let a = run(b"I0x10\nI7\x00junk\nL0x_1fL\nF1.5\x00x\np1_0\n0000cos\nsystem\n(S'echo'\ntR.");
    assert_eq!(callables(&a), ["os.system"], "{:?}", a.anomalies);
    assert!(!a.has_anomaly(AnomalyKind::Malformed));
}

#[test]
fn ext_codes_registered_by_the_stream_resolve_to_their_global() {
    // copyreg._inverted_registry[7] = ('os', 'system'); then EXT1 7 names os.system.
    let d = b"\x80\x02ccopyreg\n_inverted_registry\nK\x07X\x02\x00\x00\x00osX\x06\x00\x00\x00system\x86s0\x82\x07(S'echo'\ntR.";
    let a = run(d);
    assert!(
        callables(&a).contains(&"os.system".to_string()),
        "{:?}",
        callables(&a)
    );
    assert!(a.has_anomaly(AnomalyKind::BuildOnGlobal));
}

#[test]
fn stack_global_names_computed_by_pure_functions_are_evaluated() {
    // STACK_GLOBAL(_codecs.encode('bf', 'rot13'), _codecs.encode('flfgrz', 'rot13'))
    let mut d = b"\x80\x04c_codecs\nencode\n".to_vec();
    d.extend(binunicode("bf"));
    d.extend(binunicode("rot13"));
    d.extend(b"\x86Rc_codecs\nencode\n");
    d.extend(binunicode("flfgrz"));
    d.extend(binunicode("rot13"));
    d.extend(b"\x86R\x93");
    d.extend(binunicode("echo"));
    d.extend(b"\x85R.");
    let a = run(&d);
    assert!(
        callables(&a).contains(&"os.system".to_string()),
        "{:?}",
        callables(&a)
    );
    assert!(a.has_anomaly(AnomalyKind::ComputedName));
}

#[test]
fn a_fake_joblib_wrapper_does_not_hide_opcodes_from_plain_pickle_load() {
    // A NumpyArrayWrapper claiming 10 bytes of array data that are really opcodes.
    let mut d = b"\x80\x04cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(".to_vec();
    d.extend(binunicode("dtype"));
    d.extend(b"cnumpy\ndtype\n");
    d.extend(binunicode("u1"));
    d.extend(b"\x89\x88\x87R");
    d.extend(binunicode("shape"));
    d.extend(b"K\x1a\x85ub");
    // 26 bytes: os.system('echo') as opcodes
    d.extend(b"0cos\nsystem\n(S'echo'\ntR0");
    d.extend(b"N.");
    let a = run(&d);
    assert!(
        callables(&a).contains(&"os.system".to_string()),
        "{:?}",
        callables(&a)
    );
}

#[test]
fn legacy_torch_module_persistent_ids_are_the_class() {
    let d = b"\x80\x02(X\x06\x00\x00\x00modulectorch.nn.modules.linear\nLinear\nX\x01\x00\x00\x00fX\x01\x00\x00\x00stQ)\x81.";
    let a = run(d);
    assert_eq!(callables(&a), ["torch.nn.modules.linear.Linear"]);
}

// ---- Bounded work on hostile streams (hangs and allocation blow-ups found while fuzzing;
// each input is assembled here from its opcodes) ----

/// `LONG_BINPUT` with a 4-byte memo index.
fn put4(i: u32) -> Vec<u8> {
    let mut v = vec![b'r'];
    v.extend(i.to_le_bytes());
    v
}

/// `LONG_BINGET` with a 4-byte memo index.
fn get4(i: u32) -> Vec<u8> {
    let mut v = vec![b'j'];
    v.extend(i.to_le_bytes());
    v
}

#[test]
fn shared_nested_tuples_in_call_arguments_are_walked_in_bounded_time() {
    // print(((((None,)*200,)*200,)*200,)*200), the tuples shared through the memo:
    // collecting the call's string arguments visited 200^4 values (a 3 KB hang).
    let n = 200;
    let mut d = b"\x80\x02cbuiltins\nprint\n(".to_vec();
    d.extend(b"N".repeat(n));
    d.push(b't');
    d.extend(put4(1));
    d.push(b'0');
    for level in 2..=3 {
        d.push(b'(');
        for _ in 0..n {
            d.extend(get4(level - 1));
        }
        d.push(b't');
        d.extend(put4(level));
        d.push(b'0');
    }
    d.push(b'(');
    for _ in 0..n {
        d.extend(get4(3));
    }
    d.extend(b"t\x85R.");
    let a = run(&d);
    assert_eq!(callables(&a), ["builtins.print"]);
    assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
}

#[test]
fn one_argument_tuple_shared_by_many_calls_is_not_copied_per_call() {
    // A 10,000-item tuple handed to 10,000 calls: every call copied it (100M values,
    // 2.4 GB, from a 150 KB stream).
    let (n, k) = (10_000, 10_000);
    let mut d = b"\x80\x02(".to_vec();
    d.extend(b"N".repeat(n));
    d.push(b't');
    d.extend(put4(1));
    d.extend(b"0cbuiltins\nprint\n");
    d.extend(put4(2));
    d.push(b'0');
    for _ in 0..k {
        d.extend(get4(2));
        d.extend(get4(1));
        d.extend(b"R0");
    }
    d.extend(b"N.");
    let a = run(&d);
    assert_eq!(a.calls.len(), k);
    assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
}

#[test]
fn a_payload_handed_to_a_loader_many_times_is_copied_within_a_budget() {
    // pickle.loads(b) a hundred times over one 10 KB bytes object: every call copied it.
    let limits = PickleLimits {
        max_decoded: 16 << 10,
        ..PickleLimits::default()
    };
    let payload = [b"\x80\x02N.".as_slice(), &[b'x'; 10_000]].concat();
    let mut d = b"\x80\x02B".to_vec();
    d.extend((payload.len() as u32).to_le_bytes());
    d.extend(&payload);
    d.extend(put4(1));
    d.extend(b"0cpickle\nloads\n");
    d.extend(put4(2));
    d.extend(b"0N");
    for _ in 0..100 {
        d.extend(get4(2));
        d.extend(get4(1));
        d.extend(b"\x85R0");
    }
    d.push(b'.');
    let a = analyze(&d, &limits);
    // The stream's own size plus 16 KB holds two copies; the third stops the analysis.
    assert_eq!(a.nested.len(), 2);
    assert!(
        a.has_anomaly(AnomalyKind::LimitReached),
        "{:?}",
        a.anomalies
    );
}

#[test]
fn a_decompression_bomb_handed_to_a_loader_many_times_stops_at_the_budget() {
    // pickle.loads(zlib.decompress(bomb)) fifty times: each call inflated the bomb to the
    // per-payload limit and kept the result (a 62 KB stream took 2 GB and > 10 s).
    use std::io::Write;
    let limits = PickleLimits {
        max_decoded: 1 << 20,
        ..PickleLimits::default()
    };
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&vec![0u8; 1 << 20]).unwrap();
    let bomb = z.finish().unwrap();
    let mut d = b"\x80\x02B".to_vec();
    d.extend((bomb.len() as u32).to_le_bytes());
    d.extend(&bomb);
    d.extend(put4(1));
    d.extend(b"0czlib\ndecompress\n");
    d.extend(put4(2));
    d.extend(b"0cpickle\nloads\n");
    d.extend(put4(3));
    d.extend(b"0N");
    for _ in 0..50 {
        d.extend(get4(3));
        d.extend(get4(2));
        d.extend(get4(1));
        d.extend(b"\x85R\x85R0");
    }
    d.push(b'.');
    let a = analyze(&d, &limits);
    assert_eq!(a.nested.len(), 1);
    assert_eq!(a.nested[0].data.len(), 1 << 20);
    assert!(
        a.has_anomaly(AnomalyKind::LimitReached),
        "{:?}",
        a.anomalies
    );
}

#[test]
fn build_state_pairs_are_checked_once_not_at_every_build() {
    // A dict of 1,500 pairs ending in '__reduce__', in a state tuple of 1,500 references
    // to it, applied by 1,500 BUILDs: every BUILD walked every pair of every reference
    // (3.4 billion steps from a 19 KB stream).
    let (n, m, k) = (1500, 1500, 1500);
    let mut d = b"\x80\x02}(".to_vec();
    d.extend(b"NN".repeat(m - 1));
    d.extend(binunicode("__reduce__"));
    d.push(b'N');
    d.push(b'u');
    d.extend(put4(1));
    d.extend(b"0(");
    for _ in 0..n {
        d.extend(get4(1));
    }
    d.push(b't');
    d.extend(put4(2));
    d.extend(b"0N");
    for _ in 0..k {
        d.extend(get4(2));
        d.push(b'b');
    }
    d.push(b'.');
    let a = run(&d);
    let dunder: Vec<&Anomaly> = a
        .anomalies
        .iter()
        .filter(|x| x.kind == AnomalyKind::DunderState)
        .collect();
    assert_eq!(dunder.len(), 1, "{dunder:?}");
    assert!(dunder[0].detail.contains("__reduce__"), "{dunder:?}");
}

/// Arrays written by numpy/joblib (fixtures/tensor/pickled/generate_pickled.py): each
/// numeric array is described with its dtype, shape, order, byte range and key path.
#[test]
fn numpy_arrays_of_real_joblib_and_pickle_files() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tensor/pickled/view");
    for f in ["arrays.joblib", "arrays_p4.pkl"] {
        let d = std::fs::read(dir.join(f)).unwrap();
        let a = analyze(&d, &PickleLimits::default());
        let mut got: Vec<(String, String, Vec<u64>, bool)> = a
            .numpy_arrays
            .iter()
            .map(|x| {
                assert!(x.data.0 + x.data.1 <= d.len() as u64);
                (
                    x.name.clone().unwrap(),
                    x.dtype.clone(),
                    x.shape.clone(),
                    x.fortran_order,
                )
            })
            .collect();
        got.sort();
        let want = [
            ("be", ">f8", vec![4], false),
            ("f", "<f8", vec![2, 3], true),
            ("h", "<f2", vec![5], false),
            ("nested.k", "<i4", vec![2, 2], false),
            ("u", "|u1", vec![6], false),
            ("w", "<f4", vec![3, 4], false),
        ];
        let want: Vec<(String, String, Vec<u64>, bool)> = want
            .into_iter()
            .map(|(n, t, s, o)| (n.to_string(), t.to_string(), s, o))
            .collect();
        assert_eq!(got, want, "{f}");
    }
}

/// At most `MAX_NUMPY_ARRAYS` arrays are described per stream; the rest stay undescribed
/// (the scanner counts them as unread array data).
#[test]
fn numpy_arrays_are_bounded_in_number() {
    let mut d = b"\x80\x04cnumpy.core.multiarray\n_reconstruct\np0\ncnumpy\nndarray\np1\n".to_vec();
    d.extend(b"cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87Rp2\n]");
    for _ in 0..MAX_NUMPY_ARRAYS + 3 {
        d.extend(b"g0\ng1\nK\x00\x85C\x01b\x87R(K\x01K\x01\x85g2\n\x89C\x04\x00\x00\x80?tba");
    }
    d.push(b'.');
    let a = run(&d);
    assert_eq!(a.numpy_arrays.len(), MAX_NUMPY_ARRAYS, "{:?}", a.anomalies);
    assert_eq!(a.numpy_arrays[0].dtype, "|f4");
    assert_eq!(a.numpy_arrays[0].name.as_deref(), Some("0"));
    let (start, len) = a.numpy_arrays[0].data;
    assert_eq!(&d[start as usize..(start + len) as usize], b"\x00\x00\x80?");
}

/// Each part of a stream's analysis is what analysing that pickle alone finds: a reader
/// of one pickle of the stream (the fourth of a legacy `torch.save` file) can take it
/// from the stream's analysis.
#[test]
fn parts_match_pickles_analysed_alone() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/tensor/view/torch_legacy.pt"
    );
    let data = std::fs::read(path).unwrap();
    let whole = run(&data);
    // magic, protocol version, system info, the object, the storage key list
    assert_eq!(whole.parts.len(), 5, "{:?}", whole.parts);
    let mut pos = 0usize;
    for p in &whole.parts {
        let (alone, end) = analyze_one(&data, pos, &PickleLimits::default());
        assert_eq!((p.start, p.end), (pos as u64, end as u64));
        assert_eq!(alone.parts.len(), 1);
        let storages = &whole.torch_storages[p.torch_storages.clone()];
        assert_eq!(storages, alone.torch_storages.as_slice());
        let tensors: Vec<TorchTensorRef> = whole.torch_tensors[p.torch_tensors.clone()]
            .iter()
            .map(|t| TorchTensorRef {
                storage: t.storage - p.torch_storages.start,
                ..t.clone()
            })
            .collect();
        assert_eq!(tensors, alone.torch_tensors);
        pos = end;
    }
    assert!(!whole.parts[3].torch_tensors.is_empty());
    // Concatenated pickles that are not torch's: consecutive parts all the same.
    let two = run(b"\x80\x02K\x01.\x80\x02K\x02.");
    assert_eq!(two.parts.len(), 2);
    assert_eq!((two.parts[0].start, two.parts[0].end), (0, 5));
    assert_eq!((two.parts[1].start, two.parts[1].end), (5, 10));
}

/// The test hook records each analysis by the bytes it starts from.
#[test]
fn trace_records_each_analysis() {
    let data = b"\x80\x02K\x01.\x80\x02K\x02.";
    trace_analyses(true);
    run(data);
    analyze_one(data, 5, &PickleLimits::default());
    run(data);
    let rec = trace_analyses(false);
    assert_eq!(
        rec,
        [
            AnalysedStream::of(data),
            AnalysedStream::of(&data[5..]),
            AnalysedStream::of(data)
        ]
    );
    run(data);
    assert!(trace_analyses(false).is_empty(), "recording stopped");
}
