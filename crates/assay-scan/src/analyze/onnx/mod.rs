//! ONNX models: external-data locations (as text, and on disk next to the model), custom
//! operator domains, and the free-text fields.

mod location;
pub(crate) mod text;

use crate::engine::{FileScan, Format, Loc};
use crate::rules::code;
use assay_formats::onnx::{OnnxError, OnnxLimits, OnnxModel, parse};
use assay_formats::protobuf::SurveyError;
use assay_report::Severity;
use std::collections::HashSet;

/// Operator domains that ONNX or ONNX Runtime implement themselves.
const BUILTIN_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview",
    "ai.onnx.preview.training",
    // ONNX Runtime's contrib and layout-transformed kernels, built into the runtime.
    "com.microsoft",
    "com.microsoft.nchwc",
    "com.microsoft.experimental",
    "com.ms.internal.nhwc",
];

/// ONNX Runtime contrib ops (training builds) that call a Python `autograd.Function`.
const PYTHON_CONTRIB_OPS: &[&str] = &["PythonOp", "PythonOpGrad"];

pub fn scan(ctx: &mut FileScan, data: &[u8], loc: &Loc, _depth: u32) -> Format {
    let model = match parse(data, &OnnxLimits::default()) {
        Ok(m) => m,
        Err(e) => {
            ctx.incomplete = true;
            let offset = error_offset(&e);
            ctx.add(
                code::ONX001,
                Severity::High,
                loc,
                offset,
                format!("ONNX model could not be analysed: {e}"),
                None,
            );
            return Format::Onnx;
        }
    };
    if !model.external.is_empty() {
        ctx.feature(assay_advisories::Feature::OnnxExternalData, loc);
    }
    // The exporter records its own version; PyTorch's is the torch version.
    if model.producer_name == "pytorch" {
        ctx.recorded_version(
            "torch",
            &model.producer_version,
            "ONNX producer_version",
            loc,
        );
    }
    location::check(ctx, &model, loc);
    operators(ctx, &model, loc);
    text::check_model(ctx, &model, loc);
    Format::Onnx
}

fn error_offset(e: &OnnxError) -> Option<u64> {
    match e {
        OnnxError::Wire(SurveyError::Wire(w, _)) => Some(w.offset() as u64),
        OnnxError::Wire(SurveyError::TooDeep(_, at)) => Some(*at as u64),
        _ => None,
    }
}

fn operators(ctx: &mut FileScan, model: &OnnxModel, loc: &Loc) {
    let local: HashSet<(&str, &str)> = model
        .functions
        .iter()
        .map(|(d, n, _)| (d.as_str(), n.as_str()))
        .collect();
    for op in &model.operators {
        let d = op.domain.as_str();
        let where_ = format!("first node {:?} in {}", op.first_node, op.first_place);
        if d == "com.microsoft" && PYTHON_CONTRIB_OPS.contains(&op.op_type.as_str()) {
            ctx.add(
                code::ONX004,
                Severity::Medium,
                loc,
                None,
                format!(
                    "operator {d}::{} calls a Python autograd function of the loading program ({})",
                    op.op_type,
                    nodes(op.count)
                ),
                Some(where_),
            );
            continue;
        }
        if BUILTIN_DOMAINS.contains(&d) || local.contains(&(d, op.op_type.as_str())) {
            continue;
        }
        ctx.add(
            code::ONX004,
            Severity::Medium,
            loc,
            None,
            format!(
                "operator {d}::{} is from a custom domain: it runs only after a native custom-op library is loaded ({})",
                op.op_type,
                nodes(op.count)
            ),
            Some(where_),
        );
    }
}

fn nodes(n: u64) -> String {
    if n == 1 {
        "1 node".into()
    } else {
        format!("{n} nodes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_formats::onnx::OperatorUse;

    fn op(domain: &str, op_type: &str) -> OperatorUse {
        OperatorUse {
            domain: domain.into(),
            op_type: op_type.into(),
            overload: String::new(),
            count: 2,
            first_node: "n0".into(),
            first_place: "graph".into(),
        }
    }

    fn findings(model: &OnnxModel) -> Vec<assay_report::Finding> {
        let limits = crate::limits::Limits::default();
        let mut ctx = FileScan::new("m.onnx".into(), &limits);
        operators(&mut ctx, model, &Loc::top());
        ctx.findings
    }

    #[test]
    fn standard_and_runtime_domains_pass() {
        let m = OnnxModel {
            operators: vec![
                op("", "Gemm"),
                op("ai.onnx.ml", "TreeEnsembleClassifier"),
                op("com.microsoft", "FusedMatMul"),
                op("pkg.onnxscript.torch_lib", "aten_add"),
            ],
            functions: vec![(
                "pkg.onnxscript.torch_lib".into(),
                "aten_add".into(),
                String::new(),
            )],
            ..OnnxModel::default()
        };
        assert!(findings(&m).is_empty());
    }

    #[test]
    fn custom_domains_are_reported() {
        let m = OnnxModel {
            operators: vec![op("com.attacker", "Exec"), op("com.microsoft", "PythonOp")],
            ..OnnxModel::default()
        };
        let f = findings(&m);
        assert_eq!(f.len(), 2);
        assert!(
            f.iter()
                .all(|f| f.rule == "ONX004" && f.severity == Severity::Medium)
        );
        assert!(f[0].message.contains("com.attacker::Exec"));
        assert!(f[1].message.contains("Python"));
    }
}
