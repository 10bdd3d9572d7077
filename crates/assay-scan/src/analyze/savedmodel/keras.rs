//! Keras layer metadata kept with a SavedModel (`keras_metadata.pb`, or the object graph
//! of older `saved_model.pb` files): the JSON of each layer goes through the same
//! configuration walk as `.keras` and `.h5` files ([`assay_formats::keras`]), and what it
//! finds is reported under the TFS rules (`tf.keras.models.load_model` revives layers
//! from this metadata).

use crate::engine::{FileScan, Loc};
use crate::rules::callables::{Judgement, judge};
use crate::rules::code;
use assay_formats::keras::{ItemKind, KerasLimits, RefKind, analyze_config, parse_json};
use assay_formats::pickle::CallKind;
use assay_report::Severity;
use serde_json::Value;

/// Checks one object's JSON metadata; `place` names the object for messages.
pub fn check_json(ctx: &mut FileScan, json: &[u8], place: &str, loc: &Loc, depth: u32) {
    if json.is_empty() {
        return;
    }
    let root = match parse_json(json) {
        Ok(v) => v,
        Err(e) => {
            ctx.incomplete = true;
            ctx.add(
                code::TFS001,
                Severity::High,
                loc,
                None,
                format!("Keras metadata of {place} is not valid JSON, so its layers were not checked: {e}"),
                None,
            );
            return;
        }
    };
    let a = analyze_config(&decode(root), &KerasLimits::default());
    for item in &a.items {
        let at = match &item.layer {
            Some(l) => format!("{place} layer {l:?} ({})", item.path),
            None => format!("{place} ({})", item.path),
        };
        match &item.kind {
            ItemKind::Bytecode(b) => {
                let names = match &b.summary {
                    Ok(s) if !s.names.is_empty() => format!("; names: {}", s.names.join(", ")),
                    _ => String::new(),
                };
                ctx.add(
                    code::TFS009,
                    Severity::Critical,
                    loc,
                    None,
                    format!("Keras Lambda at {at} carries marshalled Python bytecode: tf.keras.models.load_model turns it into a function that runs when the layer is called"),
                    Some(format!("{} bytes of bytecode ({}){names}", b.raw.len(), b.encoding)),
                );
            }
            ItemKind::Reference(r) => {
                let module = r.module.as_deref().unwrap_or("");
                let dangerous = matches!(
                    judge(module, &r.name, CallKind::Reduce),
                    Judgement::Dangerous(_)
                );
                let (sev, why) = match r.kind {
                    _ if dangerous => (Severity::High, "names a dangerous callable"),
                    RefKind::KerasGadget => (
                        Severity::High,
                        "calls a Keras function that is not a modelling operation",
                    ),
                    RefKind::Custom => (
                        Severity::Medium,
                        "is a custom object that only user code can supply",
                    ),
                    RefKind::Foreign | RefKind::PythonBuiltin => {
                        (Severity::Medium, "resolves an object from outside Keras")
                    }
                };
                let rule = if r.function && item.path.contains("function") {
                    code::TFS009
                } else {
                    code::TFS010
                };
                ctx.add(
                    rule,
                    sev,
                    loc,
                    None,
                    format!("Keras metadata at {at} {why}: {}", r.qualified()),
                    r.registered_name
                        .as_ref()
                        .map(|n| format!("registered_name={n}")),
                );
            }
            ItemKind::SafeModeOff { evidence } => ctx.add(
                code::TFS010,
                Severity::High,
                loc,
                None,
                format!("Keras metadata at {at} switches Keras safe mode off"),
                Some(evidence.clone()),
            ),
            ItemKind::ExternalResource {
                class_name,
                field,
                value,
                remote,
            } => {
                let (rule, sev) = if *remote {
                    (code::TFS005, Severity::Critical)
                } else {
                    (code::TFS004, Severity::High)
                };
                ctx.add(
                    rule,
                    sev,
                    loc,
                    None,
                    format!("Keras {class_name} at {at} opens a file or URL named in its metadata"),
                    Some(format!("{field}={value}")),
                );
            }
            ItemKind::EmbeddedPayload {
                class_name,
                field,
                loader,
                data,
                error,
            } => {
                ctx.add(
                    code::TFS010,
                    if error.is_some() {
                        Severity::High
                    } else {
                        Severity::Medium
                    },
                    loc,
                    None,
                    format!("Keras {class_name} at {at} hands a serialized {field} to {loader}"),
                    error.clone(),
                );
                if error.is_none() {
                    let child = loc.child(&format!("{place}:{}", item.path));
                    if ctx.enter_member(&child) {
                        ctx.scan_bytes(data, &child, depth + 1);
                    }
                }
            }
        }
    }
    if let Some(why) = &a.truncated {
        ctx.incomplete = true;
        ctx.add(
            code::TFS001,
            Severity::High,
            loc,
            None,
            format!("Keras metadata of {place} was not checked completely: {why}"),
            None,
        );
    }
}

/// What tf_keras's `json_utils.decode` does before anything is deserialized: the
/// encoder's wrappers for tuples, shapes, type specs and bytes become plain values again
/// (so a Lambda's `{"class_name": "__tuple__", "items": [code, defaults, closure]}` is
/// the `[code, defaults, closure]` every Keras reader knows). Values nest at most 128
/// deep (serde_json's parse limit), which bounds the recursion.
fn decode(v: Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.into_iter().map(decode).collect()),
        Value::Object(map) => {
            let map: serde_json::Map<String, Value> =
                map.into_iter().map(|(k, v)| (k, decode(v))).collect();
            match map.get("class_name").and_then(Value::as_str) {
                Some("__tuple__" | "TensorShape") => {
                    map.get("items").cloned().unwrap_or(Value::Null)
                }
                Some("TypeSpec") => map.get("serialized").cloned().unwrap_or(Value::Null),
                Some("CompositeTensor") => map.get("spec").cloned().unwrap_or(Value::Null),
                Some("__bytes__") => map.get("value").cloned().unwrap_or(Value::Null),
                Some("__ellipsis__") => Value::Null,
                _ => Value::Object(map),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_wrappers_are_unwrapped() {
        let v: Value = serde_json::from_str(
            r#"{"class_name": "Lambda", "config": {"function": {"class_name": "__tuple__", "items": ["4wEA", null, {"class_name": "__tuple__", "items": [1]}]},
                "shape": {"class_name": "TensorShape", "items": [null, 4]}}}"#,
        )
        .unwrap();
        let d = decode(v);
        assert_eq!(
            d["config"]["function"],
            serde_json::json!(["4wEA", null, [1]])
        );
        assert_eq!(d["config"]["shape"], serde_json::json!([null, 4]));
        assert_eq!(d["class_name"], "Lambda");
    }
}
