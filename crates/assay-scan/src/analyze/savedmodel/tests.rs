use super::*;
use assay_formats::protobuf::Message;
use assay_formats::savedmodel::proto::*;
use assay_report::Finding;

fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|i| i.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

fn with_attr(mut n: NodeDef, key: &str, v: AttrValue) -> NodeDef {
    n.attr.push(AttrEntry {
        key: key.into(),
        value: Some(v),
    });
    n
}

fn string_const(name: &str, value: &[u8]) -> NodeDef {
    with_attr(
        node(name, "Const", &[]),
        "value",
        AttrValue {
            tensor: Some(TensorProto {
                dtype: 7,
                string_val: vec![value.to_vec()],
            }),
            ..Default::default()
        },
    )
}

fn s_attr(s: &str) -> AttrValue {
    AttrValue {
        s: Some(s.into()),
        ..Default::default()
    }
}

fn call(name: &str, f: &str) -> NodeDef {
    with_attr(
        node(name, "StatefulPartitionedCall", &[]),
        "f",
        AttrValue {
            func: Some(NameAttrList {
                name: f.into(),
                attr: vec![],
            }),
            ..Default::default()
        },
    )
}

fn function(name: &str, nodes: Vec<NodeDef>) -> FunctionDef {
    FunctionDef {
        signature: Some(OpDef { name: name.into() }),
        node_def: nodes,
        ..Default::default()
    }
}

/// A SavedModel shaped like tf.saved_model.save output: a saver whose save and restore
/// calls run `__inference__traced_save` / `_restore`, plus a serving function.
fn saved_model(serve: Vec<NodeDef>, extra_main: Vec<NodeDef>) -> MetaGraphDef {
    let mut main = vec![
        node("saver_filename", "Placeholder", &[]),
        call("StatefulPartitionedCall_1", "__inference__traced_save_45"),
        call(
            "StatefulPartitionedCall_2",
            "__inference__traced_restore_80",
        ),
        call("serve_call", "__inference_serve_10"),
    ];
    main.extend(extra_main);
    MetaGraphDef {
        graph_def: Some(GraphDef {
            node: main,
            library: Some(FunctionDefLibrary {
                function: vec![
                    function(
                        "__inference__traced_save_45",
                        vec![
                            string_const("Const", b"_temp/part"),
                            node(
                                "StringJoin",
                                "StringJoin",
                                &["file_prefix", "Const:output:0"],
                            ),
                            node("SaveV2", "SaveV2", &["StringJoin:output:0"]),
                            node(
                                "MergeV2Checkpoints",
                                "MergeV2Checkpoints",
                                &["StringJoin:output:0"],
                            ),
                        ],
                    ),
                    function(
                        "__inference__traced_restore_80",
                        vec![node("RestoreV2", "RestoreV2", &["file_prefix"])],
                    ),
                    function("__inference_serve_10", serve),
                ],
            }),
        }),
        saver_def: Some(SaverDef {
            filename_tensor_name: b"saver_filename:0".to_vec(),
            save_tensor_name: b"StatefulPartitionedCall_1:0".to_vec(),
            restore_op_name: b"StatefulPartitionedCall_2".to_vec(),
        }),
        ..Default::default()
    }
}

fn scan_model(mg: MetaGraphDef) -> Vec<Finding> {
    let sm = SavedModel {
        saved_model_schema_version: 1,
        meta_graphs: vec![mg],
    };
    let bytes = sm.encode_to_vec();
    assert_eq!(
        assay_formats::sniff::sniff(&bytes),
        assay_formats::sniff::Sniffed::TensorFlow(TfKind::SavedModel)
    );
    let limits = crate::limits::Limits::default();
    let mut ctx = FileScan::new("saved_model.pb".into(), &limits);
    scan(&mut ctx, TfKind::SavedModel, &bytes, &Loc::top(), 0);
    ctx.findings
}

fn rules(f: &[Finding]) -> Vec<(&str, Severity)> {
    f.iter().map(|f| (f.rule.as_str(), f.severity)).collect()
}

#[test]
fn plain_saved_model_is_clean() {
    let f = scan_model(saved_model(
        vec![
            node("x", "Placeholder", &[]),
            node("MatMul", "MatMul", &["x", "x"]),
        ],
        vec![],
    ));
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn file_ops_with_constant_paths() {
    let f = scan_model(saved_model(
        vec![
            string_const("p", b"/etc/passwd"),
            node("ReadFile", "ReadFile", &["p:output:0"]),
            string_const("w", b"/tmp/x"),
            node("WriteFile", "WriteFile", &["w:output:0", "p:output:0"]),
            string_const("g", b"gs://bucket/x"),
            node("ReadFile_1", "ReadFile", &["g:output:0"]),
        ],
        vec![],
    ));
    let r = rules(&f);
    assert!(r.contains(&("TFS003", Severity::Critical)), "{f:?}");
    assert!(r.contains(&("TFS004", Severity::High)));
    assert!(r.contains(&("TFS005", Severity::Critical)));
    let read = f.iter().find(|f| f.rule == "TFS004").unwrap();
    assert!(read.message.contains("(2 nodes)"), "{}", read.message);
    assert!(read.evidence.as_deref().unwrap().contains("/etc/passwd"));
}

#[test]
fn checkpoint_ops_outside_the_saver() {
    // Fed by an argument: medium. Fed by an absolute constant: critical.
    let f = scan_model(saved_model(
        vec![node("SaveV2", "SaveV2", &["path"])],
        vec![],
    ));
    assert_eq!(rules(&f), vec![("TFS007", Severity::Medium)]);
    let f = scan_model(saved_model(
        vec![
            string_const("dir", b"/home/user/.config/x"),
            node("j", "StringJoin", &["dir:output:0"]),
            node("SaveV2", "SaveV2", &["j:output:0"]),
        ],
        vec![],
    ));
    assert_eq!(rules(&f), vec![("TFS003", Severity::Critical)]);
    // A restore with a traversal path in the main graph.
    let f = scan_model(saved_model(
        vec![],
        vec![
            string_const("c", b"../../secrets/ckpt"),
            node("r", "RestoreV2", &["c"]),
        ],
    ));
    assert_eq!(rules(&f), vec![("TFS004", Severity::High)]);
}

#[test]
fn asset_paths_are_not_reported() {
    let mut mg = saved_model(
        vec![],
        vec![
            string_const("vocab_path", b"/build/machine/vocab.txt"),
            node(
                "init",
                "InitializeTableFromTextFileV2",
                &["table", "vocab_path"],
            ),
        ],
    );
    // Without the asset record the absolute path is a finding …
    assert_eq!(
        rules(&scan_model(mg.clone())),
        vec![("TFS004", Severity::High)]
    );
    // … with it (TF1's collection form), the loader replaces it.
    let asset = AssetFileDef {
        tensor_info: Some(TensorInfo {
            name: b"vocab_path:0".to_vec(),
        }),
        filename: b"vocab.txt".to_vec(),
    };
    mg.collection_def.push(CollectionEntry {
        key: b"saved_model_assets".to_vec(),
        value: Some(CollectionDef {
            any_list: Some(AnyList {
                value: vec![Any {
                    type_url: b"type.googleapis.com/tensorflow.AssetFileDef".to_vec(),
                    value: asset.encode_to_vec(),
                }],
            }),
        }),
    });
    assert!(scan_model(mg).is_empty());
}

#[test]
fn python_network_custom_and_attributes() {
    let debug = with_attr(
        node("dbg", "DebugIdentityV2", &["x"]),
        "debug_urls",
        AttrValue {
            list: Some(ListValue {
                s: vec![b"grpc://10.0.0.1:6064".to_vec()],
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let f = scan_model(saved_model(
        vec![
            node("x", "Placeholder", &[]),
            node("py", "EagerPyFunc", &["x"]),
            node("ds", "DataServiceDatasetV4", &["x"]),
            node("exec", "MyCompanyExec", &["x"]),
            with_attr(
                node("print", "PrintV2", &["x"]),
                "output_stream",
                s_attr("file:///tmp/log"),
            ),
            with_attr(
                node("print_ok", "PrintV2", &["x"]),
                "output_stream",
                s_attr("stderr"),
            ),
            with_attr(
                node("proto", "DecodeProtoV2", &["x"]),
                "descriptor_source",
                s_attr("/tmp/desc.pb"),
            ),
            with_attr(
                node("proto_ok", "DecodeProtoV2", &["x"]),
                "descriptor_source",
                s_attr("local://"),
            ),
            debug,
        ],
        vec![],
    ));
    let r = rules(&f);
    for want in [
        ("TFS002", Severity::Critical),
        ("TFS005", Severity::Critical),
        ("TFS006", Severity::Medium),
        ("TFS003", Severity::Critical),
        ("TFS004", Severity::High),
    ] {
        assert!(r.contains(&want), "{want:?} not in {r:?}");
    }
    // Each of PrintV2 and DecodeProtoV2 is reported once (the harmless twin is not).
    assert_eq!(
        f.iter()
            .filter(|f| f.message.starts_with("PrintV2"))
            .count(),
        1
    );
    assert_eq!(
        f.iter()
            .filter(|f| f.message.starts_with("DecodeProtoV2"))
            .count(),
        1
    );
    assert_eq!(f.iter().filter(|f| f.rule == "TFS005").count(), 2);
}

#[test]
fn embedded_graphs_are_decoded() {
    let inner = GraphDef {
        node: vec![
            string_const("p", b"/etc/shadow"),
            node("r", "ReadFile", &["p"]),
        ],
        library: None,
    };
    let f = scan_model(saved_model(
        vec![
            string_const("g", &inner.encode_to_vec()),
            node("d", "DatasetFromGraph", &["g:output:0"]),
        ],
        vec![],
    ));
    let r = rules(&f);
    assert!(r.contains(&("TFS008", Severity::High)), "{r:?}");
    let read = f
        .iter()
        .find(|f| f.rule == "TFS004")
        .expect("inner ReadFile");
    assert!(read.evidence.as_deref().unwrap().contains("/etc/shadow"));
}

#[test]
fn malformed_is_a_finding() {
    let limits = crate::limits::Limits::default();
    let mut ctx = FileScan::new("saved_model.pb".into(), &limits);
    // SavedModel { meta_graphs { graph_def { node { name: <varint> } } } }
    let bytes = [0x08, 0x01, 0x12, 0x06, 0x12, 0x04, 0x0a, 0x02, 0x08, 0x07];
    scan(&mut ctx, TfKind::SavedModel, &bytes, &Loc::top(), 0);
    assert_eq!(rules(&ctx.findings), vec![("TFS001", Severity::High)]);
    assert!(ctx.incomplete);
}
