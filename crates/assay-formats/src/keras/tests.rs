use super::*;
use serde_json::json;

fn items(v: Value) -> Vec<ConfigItem> {
    let a = analyze_config(&v, &KerasLimits::default());
    assert!(a.truncated.is_none());
    a.items
}

fn refs(v: Value) -> Vec<ObjectRef> {
    items(v)
        .into_iter()
        .filter_map(|i| match i.kind {
            ItemKind::Reference(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// `marshal.dumps((lambda: __import__('os').system('echo pwned')).__code__)`, base64 as
/// Keras writes it (76-character lines).
const LAMBDA_B64: &str = "4wAAAAAAAAAAAAAAAAMAAAADAAAA80YAAACXAHQBAAAAAAAAAAAAAGQBpgEAAKsBAAAAAAAAAACg\nAQAAAAAAAAAAAAAAAAAAAAAAAAAAZAKmAQAAqwEAAAAAAAAAAFMAKQNO2gJvc/oKZWNobyBwd25l\nZCkC2gpfX2ltcG9ydF9f2gZzeXN0ZW2pAPMAAAAA+gg8c3RyaW5nPvoIPGxhbWJkYT5yCQAAAAMA\nAABzHAAAAIAAjSqQVNEKGtQKGtcKIdIKIaAs0Qov1AovgAByBwAAAA==\n";

fn dense(extra: Value) -> Value {
    let mut cfg = json!({
        "name": "dense", "units": 3, "activation": "relu",
        "kernel_initializer": {"module": "keras.initializers", "class_name": "HeNormal",
                               "config": {"seed": null}, "registered_name": null},
        "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                  "registered_name": null}
    });
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e);
    }
    json!({"module": "keras.layers", "class_name": "Dense", "config": cfg,
           "registered_name": null, "build_config": {"input_shape": [null, 4]}})
}

fn model(layers: Vec<Value>) -> Value {
    json!({"module": "keras.src.models.functional", "class_name": "Functional",
           "config": {"name": "m", "layers": layers}, "registered_name": "Functional",
           "compile_config": {"optimizer": {"module": "keras.optimizers", "class_name": "Adam",
                              "config": {"name": "adam"}, "registered_name": null},
                              "loss": "mse", "metrics": ["mae"]}})
}

#[test]
fn plain_models_are_clean() {
    assert!(items(model(vec![dense(json!({})), dense(json!({}))])).is_empty());
    // Keras 2 / tf.keras legacy configs: no `module` keys, Keras class names.
    let legacy = json!({"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 4]}},
        {"class_name": "Dense", "config": {"name": "d", "activation": "relu",
         "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": null}}}},
        {"class_name": "Bidirectional", "config": {"layer": {"class_name": "LSTM", "config": {}}}}]}});
    assert!(items(legacy).is_empty());
    let training = json!({"optimizer_config": {"class_name": "Custom>Adam", "config": {}},
                          "loss": "mse"});
    assert!(items(training).is_empty());
}

#[test]
fn registered_custom_objects_are_custom() {
    let layer = json!({"module": null, "class_name": "MyLayer", "config": {"name": "my"},
                       "registered_name": "MyPackage>MyLayer"});
    let act = dense(
        json!({"activation": {"module": "builtins", "class_name": "function",
                          "config": "MyPackage>my_act", "registered_name": "function"}}),
    );
    let r = refs(model(vec![layer, act]));
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|r| r.kind == RefKind::Custom), "{r:?}");
    // A legacy custom class with no module.
    let r = refs(json!({"class_name": "Sequential", "config": {"layers": [
        {"class_name": "AttentionBlock", "config": {}}]}}));
    assert_eq!(r[0].kind, RefKind::Custom);
    assert_eq!(r[0].name, "AttentionBlock");
}

#[test]
fn lambda_bytecode_is_decoded() {
    let lambda = json!({"module": "keras.layers", "class_name": "Lambda", "config": {
        "name": "lam", "function": {"class_name": "__lambda__", "config": {
            "code": LAMBDA_B64, "defaults": null, "closure": null}}, "arguments": {}}});
    let it = items(model(vec![lambda]));
    assert_eq!(it.len(), 1);
    assert_eq!(it[0].layer.as_deref(), Some("lam"));
    assert_eq!(it[0].path, "config.layers[0].config.function.config.code");
    let ItemKind::Bytecode(b) = &it[0].kind else {
        panic!("{it:?}")
    };
    assert_eq!(b.encoding, "base64");
    let s = b.summary.as_ref().unwrap();
    assert_eq!(s.names, vec!["__import__", "system"]);
    assert!(s.strings.contains(&"echo pwned".to_string()));
}

#[test]
fn legacy_lambda_forms() {
    let list = json!({"class_name": "Lambda", "config": {"name": "l",
        "function": [LAMBDA_B64, null, null], "function_type": "lambda", "module": "__main__"}});
    let it = items(list);
    assert!(
        matches!(&it[0].kind, ItemKind::Bytecode(b) if b.summary.is_ok()),
        "{it:?}"
    );
    let string = json!({"class_name": "Lambda", "config": {"name": "l",
        "function": LAMBDA_B64, "function_type": "lambda"}});
    assert!(matches!(&items(string)[0].kind, ItemKind::Bytecode(_)));
    // A named function looked up in `module`.
    let named = json!({"class_name": "Lambda", "config": {"name": "l",
        "function": "system", "function_type": "function", "module": "os"}});
    let r = refs(named);
    assert_eq!(
        (r[0].module.as_deref(), r[0].name.as_str()),
        (Some("os"), "system")
    );
    assert_eq!(r[0].kind, RefKind::Foreign);
    // serialization_lib's own lambda form, used for activations.
    let act = dense(json!({"activation": {"class_name": "__lambda__",
                           "config": {"value": [LAMBDA_B64, null, null]}}}));
    assert!(matches!(&items(act)[0].kind, ItemKind::Bytecode(b) if b.summary.is_ok()));
}

#[test]
fn foreign_modules_and_builtins() {
    let sys = json!({"module": "os", "class_name": "system", "config": {"command": "echo pwned"},
                     "registered_name": null});
    let popen = dense(
        json!({"activation": {"module": "subprocess", "class_name": "function",
                            "config": "Popen", "registered_name": null}}),
    );
    let eval = dense(
        json!({"activation": {"module": "builtins", "class_name": "function",
                           "config": "eval", "registered_name": "function"}}),
    );
    let r = refs(model(vec![sys, popen, eval]));
    let got: Vec<(RefKind, String)> = r.iter().map(|r| (r.kind, r.qualified())).collect();
    assert_eq!(
        got,
        vec![
            (RefKind::Foreign, "os.system".into()),
            (RefKind::Foreign, "subprocess.Popen".into()),
            (RefKind::PythonBuiltin, "builtins.eval".into()),
        ]
    );
}

#[test]
fn safe_mode_gadgets() {
    // CVE-2025-9906 / CVE-2025-8747 shapes.
    let toggle = json!({"module": "keras.layers", "class_name": "Lambda", "config": {"name": "x",
        "function": {"module": "keras.config", "class_name": "function",
                     "config": "enable_unsafe_deserialization", "registered_name": "function"}}});
    let load = json!({"module": "keras.layers", "class_name": "Lambda", "config": {"name": "y",
        "function": {"module": "keras.models", "class_name": "function", "config": "load_model",
                     "registered_name": "function"}, "arguments": {"safe_mode": false}}});
    let get_file = json!({"module": "keras.layers", "class_name": "Lambda", "config": {"name": "z",
        "function": {"module": "keras.utils", "class_name": "function", "config": "get_file"},
        "arguments": {"origin": "http://example.invalid/x"}}});
    let it = items(model(vec![toggle, load, get_file]));
    let gadgets: Vec<String> = it
        .iter()
        .filter_map(|i| match &i.kind {
            ItemKind::Reference(r) if r.kind == RefKind::KerasGadget => Some(r.qualified()),
            _ => None,
        })
        .collect();
    assert_eq!(
        gadgets,
        vec![
            "keras.config.enable_unsafe_deserialization",
            "keras.models.load_model",
            "keras.utils.get_file"
        ]
    );
    let off = it
        .iter()
        .filter(|i| matches!(i.kind, ItemKind::SafeModeOff { .. }))
        .count();
    // `safe_mode: false`; the toggle's own name is reported once, as the gadget.
    assert_eq!(off, 1, "{it:?}");
    // Keras's own modelling functions are not gadgets.
    let ops = json!({"module": "keras.layers", "class_name": "Lambda", "config": {"name": "o",
        "function": {"module": "keras.src.ops.numpy", "class_name": "function", "config": "square"}}});
    assert!(items(ops).is_empty());
}

#[test]
fn external_resources_and_payloads() {
    let tfsm = json!({"module": "keras.layers", "class_name": "TFSMLayer",
        "config": {"name": "t", "filepath": "gs://bucket/model", "call_endpoint": "serve"}});
    let lookup = json!({"module": "keras.layers", "class_name": "StringLookup",
        "config": {"name": "s", "vocabulary": "/etc/passwd"}});
    let inline = json!({"module": "keras.layers", "class_name": "StringLookup",
        "config": {"name": "v", "vocabulary": ["a", "b"]}});
    let torch = json!({"module": "keras.layers", "class_name": "TorchModuleWrapper",
        "config": {"name": "w", "module": "UEsDBAo="}});
    let it = items(model(vec![tfsm, lookup, inline, torch]));
    assert_eq!(it.len(), 3, "{it:?}");
    assert!(matches!(
        &it[0].kind,
        ItemKind::ExternalResource { remote: true, .. }
    ));
    assert_eq!(it[0].layer.as_deref(), Some("t"));
    assert!(
        matches!(&it[1].kind, ItemKind::ExternalResource { remote: false, value, .. } if value == "/etc/passwd")
    );
    assert!(
        matches!(&it[2].kind, ItemKind::EmbeddedPayload { data, .. } if data.starts_with(b"PK\x03\x04"))
    );
}

#[test]
fn base64_like_python() {
    assert_eq!(lenient_base64("aGVs\nbG8=", 100).unwrap(), b"hello");
    assert_eq!(lenient_base64("aGVsbG8=junk", 100).unwrap(), b"hello");
    assert_eq!(lenient_base64("aGVsbA==", 100).unwrap(), b"hell");
    assert_eq!(lenient_base64("", 100).unwrap(), b"");
    assert!(lenient_base64("aGVsbG8", 100).is_err());
    assert!(lenient_base64("a", 100).is_err());
    assert!(lenient_base64("h\u{e9}", 100).is_err());
    assert!(lenient_base64("aGVsbG8h", 3).is_err());
}

#[test]
fn limits_stop_the_walk() {
    let deep = (0..300).fold(json!("x"), |v, _| json!([v]));
    let a = analyze_config(&deep, &KerasLimits::default());
    assert!(a.truncated.is_some());
    let many = Value::Array(
        (0..50)
            .map(|_| json!({"module": "os", "class_name": "system", "config": {}}))
            .collect(),
    );
    let a = analyze_config(
        &many,
        &KerasLimits {
            max_items: 10,
            ..KerasLimits::default()
        },
    );
    assert_eq!(a.items.len(), 10);
    assert!(a.truncated.is_some());
}

#[test]
fn remote_paths() {
    assert!(is_remote_path("gs://b/m"));
    assert!(is_remote_path("https://example.invalid/x"));
    assert!(is_remote_path("/gcs/bucket"));
    assert!(!is_remote_path("/tmp/model"));
    assert!(!is_remote_path("relu"));
}

#[test]
fn json_like_python() {
    assert_eq!(
        parse_json(b"{\"a\": NaN, \"b\": [-Infinity, \"NaN\"]}").unwrap(),
        json!({"a": null, "b": [null, "NaN"]})
    );
    assert_eq!(
        parse_json(b"\xef\xbb\xbf{\"a\": 1}").unwrap(),
        json!({"a": 1})
    );
    let utf16: Vec<u8> = "{\"a\": 1}"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(parse_json(&utf16).unwrap(), json!({"a": 1}));
    let utf16be: Vec<u8> = "{\"a\": 1}"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    assert_eq!(parse_json(&utf16be).unwrap(), json!({"a": 1}));
    assert_eq!(
        parse_json(b"{\"a\": 1, \"a\": 2}").unwrap(),
        json!({"a": 2})
    );
    assert!(parse_json(b"{\"a\": ").is_err());
}
