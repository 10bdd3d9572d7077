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
