use super::*;
use proto::*;

fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|i| i.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

fn saved_model(nodes: Vec<NodeDef>, functions: Vec<FunctionDef>) -> SavedModel {
    SavedModel {
        saved_model_schema_version: 1,
        meta_graphs: vec![MetaGraphDef {
            meta_info_def: Some(MetaInfoDef {
                tags: vec![b"serve".to_vec()],
                tensorflow_version: b"2.21.0".to_vec(),
            }),
            graph_def: Some(GraphDef {
                node: nodes,
                library: Some(FunctionDefLibrary {
                    function: functions,
                }),
            }),
            ..Default::default()
        }],
    }
}

fn function(name: &str, nodes: Vec<NodeDef>) -> FunctionDef {
    FunctionDef {
        signature: Some(OpDef { name: name.into() }),
        node_def: nodes,
        ..Default::default()
    }
}

#[test]
fn sniffs_each_kind() {
    let sm = saved_model(vec![node("x", "Placeholder", &[])], vec![]).encode_to_vec();
    assert_eq!(sniff(&sm), Some(TfKind::SavedModel));
    let g = GraphDef {
        node: vec![node("x", "Placeholder", &[]), node("y", "Identity", &["x"])],
        library: None,
    }
    .encode_to_vec();
    assert_eq!(sniff(&g), Some(TfKind::GraphDef));
    let k = SavedMetadata {
        nodes: vec![KerasObject {
            node_id: 1,
            node_path: b"root.layer-0".to_vec(),
            identifier: b"_tf_keras_layer".to_vec(),
            metadata: br#"{"class_name": "Dense"}"#.to_vec(),
        }],
    }
    .encode_to_vec();
    assert_eq!(sniff(&k), Some(TfKind::KerasMetadata));
    // Not TensorFlow: other protobufs, text, zeros.
    let not_keras = SavedMetadata {
        nodes: vec![KerasObject {
            identifier: b"something".to_vec(),
            ..Default::default()
        }],
    }
    .encode_to_vec();
    assert_eq!(sniff(&not_keras), None);
    assert_eq!(sniff(b"hello world\n"), None);
    assert_eq!(sniff(&[0u8; 32]), None);
    let bad_op = GraphDef {
        node: vec![node("x", "not an op!", &[])],
        library: None,
    }
    .encode_to_vec();
    assert_eq!(sniff(&bad_op), None);
}

#[test]
fn decodes_graphs_functions_and_attributes() {
    let mut read = node("ReadFile", "ReadFile", &["path:output:0"]);
    read.attr.push(AttrEntry {
        key: b"T".to_vec(),
        value: Some(AttrValue {
            func: Some(NameAttrList {
                name: b"inner".into(),
                attr: vec![],
            }),
            ..Default::default()
        }),
    });
    let mut path = node("path", "Const", &[]);
    path.attr.push(AttrEntry {
        key: b"value".to_vec(),
        value: Some(AttrValue {
            tensor: Some(TensorProto {
                dtype: 7,
                string_val: vec![b"/etc/passwd".to_vec()],
            }),
            ..Default::default()
        }),
    });
    let sm = saved_model(
        vec![node("call", "StatefulPartitionedCall", &[])],
        vec![function("serve", vec![path, read])],
    );
    let out = parse_saved_model(&sm.encode_to_vec(), &TfLimits::default()).unwrap();
    let lib = out.meta_graphs[0]
        .graph_def
        .as_ref()
        .unwrap()
        .library
        .as_ref()
        .unwrap();
    let f = &lib.function[0];
    assert_eq!(f.node_def[1].op, b"ReadFile");
    let v = f.node_def[0].attr[0].value.as_ref().unwrap();
    assert_eq!(v.tensor.as_ref().unwrap().string_val[0], b"/etc/passwd");
    assert_eq!(
        f.node_def[1].attr[0]
            .value
            .as_ref()
            .unwrap()
            .func
            .as_ref()
            .unwrap()
            .name,
        b"inner"
    );
}

#[test]
fn limits_and_malformed_input_are_errors() {
    let nodes = (0..20)
        .map(|i| node(&format!("n{i}"), "NoOp", &[]))
        .collect();
    let bytes = saved_model(nodes, vec![]).encode_to_vec();
    let tight = TfLimits {
        max_nodes: 10,
        ..TfLimits::default()
    };
    assert!(matches!(
        parse_saved_model(&bytes, &tight),
        Err(TfError::Limit {
            what: "nodes",
            count: 20,
            limit: 10
        })
    ));
    assert!(matches!(
        parse_saved_model(&bytes[..bytes.len() - 1], &TfLimits::default()),
        Err(TfError::Wire(_))
    ));
    // AttrValue nesting through function attributes, deeper than the message limit.
    let mut v = AttrValue::default();
    for _ in 0..40 {
        v = AttrValue {
            func: Some(NameAttrList {
                name: b"f".to_vec(),
                attr: vec![AttrEntry {
                    key: b"k".to_vec(),
                    value: Some(v),
                }],
            }),
            ..Default::default()
        };
    }
    let mut n = node("deep", "NoOp", &[]);
    n.attr.push(AttrEntry {
        key: b"a".to_vec(),
        value: Some(v),
    });
    let deep = saved_model(vec![n], vec![]).encode_to_vec();
    assert!(matches!(
        parse_saved_model(&deep, &TfLimits::default()),
        Err(TfError::Wire(SurveyError::TooDeep(..)))
    ));
}

#[test]
fn registry_and_inputs() {
    for op in [
        "Const",
        "ReadFile",
        "WriteFile",
        "SaveV2",
        "StatefulPartitionedCall",
        "EagerPyFunc",
    ] {
        assert!(is_registered_op(op), "{op}");
    }
    assert!(!is_registered_op("Exec"));
    assert!(!is_registered_op("# 1910 ops registered"));
    assert_eq!(input_node("^save/Const"), "save/Const");
    assert_eq!(input_node("x:1"), "x");
    assert_eq!(input_node("StringJoin:output:0"), "StringJoin");
}
