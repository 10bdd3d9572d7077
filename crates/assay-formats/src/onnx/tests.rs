use super::*;
use proto::*;

fn entry(k: &str, v: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    }
}

fn node(op: &str, domain: &str) -> NodeProto {
    NodeProto {
        name: format!("{op}_0").into_bytes(),
        op_type: op.into(),
        domain: domain.into(),
        ..Default::default()
    }
}

fn external_tensor(name: &str, location: &str) -> TensorProto {
    TensorProto {
        name: name.into(),
        data_location: Some(DATA_LOCATION_EXTERNAL),
        external_data: vec![entry("location", location), entry("offset", "0")],
        ..Default::default()
    }
}

fn graph(nodes: Vec<NodeProto>) -> GraphProto {
    GraphProto {
        node: nodes,
        name: b"g".to_vec(),
        ..Default::default()
    }
}

fn model(g: GraphProto) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Vec::new(),
            version: 17,
        }],
        producer_name: b"test".to_vec(),
        graph: Some(g),
        ..Default::default()
    }
}

#[test]
fn sniffs_models_and_not_other_data() {
    let bytes = model(graph(vec![node("Relu", "")])).encode_to_vec();
    assert!(sniff(&bytes));
    // Any field order is a model to the loaders.
    let mut reordered = ModelProto {
        ir_version: None,
        ..model(graph(vec![node("Relu", "")]))
    }
    .encode_to_vec();
    reordered.extend(
        ModelProto {
            ir_version: Some(8),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    assert!(sniff(&reordered));
    // No graph, an empty graph, trailing garbage, text, zeros.
    assert!(!sniff(
        &ModelProto {
            graph: None,
            ..model(graph(vec![]))
        }
        .encode_to_vec()
    ));
    assert!(!sniff(&model(graph(vec![])).encode_to_vec()));
    let mut junk = bytes.clone();
    junk.push(0xff);
    assert!(!sniff(&junk));
    assert!(!sniff(b"{\"not\": \"onnx\"}"));
    assert!(!sniff(&[0u8; 64]));
    assert!(!sniff(b""));
}

#[test]
fn walks_every_graph_function_and_tensor() {
    let mut if_node = node("If", "");
    if_node.attribute.push(AttributeProto {
        name: b"then_branch".to_vec(),
        g: Some(graph(vec![NodeProto {
            attribute: vec![AttributeProto {
                name: b"value".to_vec(),
                t: Some(external_tensor("hidden", "../../x")),
                ..Default::default()
            }],
            ..node("Constant", "")
        }])),
        graphs: vec![graph(vec![node("Exec", "com.evil")])],
        ..Default::default()
    });
    let mut g = graph(vec![if_node, node("Relu", ""), node("Relu", "")]);
    g.initializer.push(external_tensor("w", "w.bin"));
    g.sparse_initializer.push(SparseTensorProto {
        values: Some(external_tensor("sv", "/abs")),
        indices: None,
    });
    let mut m = model(g);
    m.functions.push(FunctionProto {
        name: b"F".to_vec(),
        domain: b"local".to_vec(),
        node: vec![node("Secret", "com.hidden")],
        ..Default::default()
    });
    m.training_info.push(TrainingInfoProto {
        algorithm: Some(graph(vec![node("Train", "com.train")])),
        initialization: None,
    });
    m.metadata_props.push(entry("k", "v"));
    let out = parse(&m.encode_to_vec(), &OnnxLimits::default()).unwrap();
    let ops: Vec<(&str, &str, u64)> = out
        .operators
        .iter()
        .map(|o| (o.domain.as_str(), o.op_type.as_str(), o.count))
        .collect();
    for want in [
        ("", "Relu", 2),
        ("com.evil", "Exec", 1),
        ("com.hidden", "Secret", 1),
        ("com.train", "Train", 1),
        ("", "Constant", 1),
    ] {
        assert!(ops.contains(&want), "{want:?} not in {ops:?}");
    }
    let ext: Vec<(&str, Option<&str>)> = out
        .external
        .iter()
        .map(|t| (t.name.as_str(), t.get("location")))
        .collect();
    assert_eq!(
        ext,
        vec![
            ("w", Some("w.bin")),
            ("sv", Some("/abs")),
            ("hidden", Some("../../x"))
        ]
    );
    assert_eq!(out.deepest_graph, 1);
    assert_eq!(
        out.functions,
        vec![("local".into(), "F".into(), String::new())]
    );
    assert_eq!(out.metadata[0].key, "k");
}

#[test]
fn limits_and_malformed_input_are_errors() {
    let m = model(graph((0..10).map(|_| node("Relu", "")).collect()));
    let bytes = m.encode_to_vec();
    let tight = OnnxLimits {
        max_nodes: 5,
        ..OnnxLimits::default()
    };
    assert!(matches!(
        parse(&bytes, &tight),
        Err(OnnxError::Limit {
            what: "nodes",
            count: 10,
            limit: 5
        })
    ));
    // Truncated.
    assert!(matches!(
        parse(&bytes[..bytes.len() - 3], &OnnxLimits::default()),
        Err(OnnxError::Wire(_))
    ));
    // op_type (a string) sent as a varint: C++ would skip it, prost refuses; an error.
    let mut g = graph(vec![]).encode_to_vec();
    g.extend([0x0a, 0x02, 0x20, 0x07]);
    let mut bad = ModelProto {
        ir_version: Some(8),
        ..Default::default()
    }
    .encode_to_vec();
    bad.push(0x3a);
    bad.push(g.len() as u8);
    bad.extend(&g);
    assert!(sniff(&bad));
    assert!(matches!(
        parse(&bad, &OnnxLimits::default()),
        Err(OnnxError::Decode(_))
    ));
}

#[test]
fn deep_subgraphs_stop_at_the_nesting_limit() {
    let mut g = graph(vec![node("Relu", "")]);
    for _ in 0..30 {
        let mut n = node("If", "");
        n.attribute.push(AttributeProto {
            name: b"then_branch".to_vec(),
            g: Some(g),
            ..Default::default()
        });
        g = graph(vec![n]);
    }
    let bytes = model(g).encode_to_vec();
    assert!(matches!(
        parse(&bytes, &OnnxLimits::default()),
        Err(OnnxError::Wire(SurveyError::TooDeep(64, _)))
    ));
}

#[test]
fn tensor_payloads_are_not_decoded() {
    // A tensor with 1 MB of raw_data (field 9): skipped, not copied.
    let mut t = TensorProto {
        name: b"big".to_vec(),
        ..Default::default()
    }
    .encode_to_vec();
    t.push(0x4a);
    let n = 1usize << 20;
    let mut len = n;
    while len >= 0x80 {
        t.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    t.push(len as u8);
    t.extend(std::iter::repeat_n(0u8, n));
    let mut g = graph(vec![node("Relu", "")]).encode_to_vec();
    g.push(0x2a);
    let mut len = t.len();
    while len >= 0x80 {
        g.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    g.push(len as u8);
    g.extend(&t);
    let decoded = GraphProto::decode(g.as_slice()).unwrap();
    assert_eq!(decoded.initializer[0].name, b"big");
    assert!(std::mem::size_of_val(&decoded.initializer[0]) < 256);
}
