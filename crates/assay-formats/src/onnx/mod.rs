//! ONNX models (`ModelProto`): recognised by content, measured on the wire before
//! decoding, decoded with `prost` into the few fields that matter for security, and
//! flattened into what the scanner checks: the operators used (in the main graph, every
//! nested subgraph, training graphs and model-local functions), the tensors whose data
//! lives in external files, and the free-text strings.
//!
//! Tensor payloads (`raw_data`, `float_data`, …) are never declared, so they are skipped
//! without being read or copied.

pub mod proto;

use crate::protobuf::{self, Schema, SurveyError, SurveyLimits, Value, text};
use prost::Message;
use proto::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};
use std::collections::BTreeMap;

/// `TensorProto.data_location` value for data stored outside the model file.
pub const DATA_LOCATION_EXTERNAL: i32 = 1;

/// Bounds on one ONNX model.
#[derive(Debug, Clone)]
pub struct OnnxLimits {
    /// Message nesting (three levels per subgraph: graph, node, attribute).
    pub max_message_depth: u32,
    /// Messages of every kind in the decoded tree.
    pub max_messages: u64,
    /// Fields of every kind, skipped ones included.
    pub max_fields: u64,
    /// Nodes over all graphs, subgraphs and functions.
    pub max_nodes: u64,
    /// Model-local functions.
    pub max_functions: u64,
    /// Subgraphs inside subgraphs (If / Loop / Scan bodies).
    pub max_graph_depth: u32,
}

impl Default for OnnxLimits {
    fn default() -> Self {
        OnnxLimits {
            max_message_depth: protobuf::MAX_MESSAGE_DEPTH,
            // A large transformer export has ~10^5 nodes; each decoded message costs at
            // most ~200 bytes, so these bound the decoded tree to a few hundred MB.
            max_messages: 2_000_000,
            max_fields: 16_000_000,
            max_nodes: 1_000_000,
            max_functions: 100_000,
            max_graph_depth: 32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OnnxError {
    #[error("{0} bytes is more than a protobuf message can hold; no ONNX loader reads it")]
    TooLarge(u64),
    #[error("protobuf structure is invalid: {0}")]
    Wire(SurveyError),
    #[error("more than {limit} {what} ({count})")]
    Limit {
        what: &'static str,
        count: u64,
        limit: u64,
    },
    #[error("protobuf decoding failed: {0}")]
    Decode(String),
    #[error("subgraphs nested deeper than {0}")]
    TooDeep(u32),
}

/// What the scanner needs from a model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnnxModel {
    pub ir_version: Option<i64>,
    pub producer_name: String,
    pub producer_version: String,
    pub domain: String,
    pub doc_string: String,
    /// (domain, version) of every `opset_import`, model-level and in functions.
    pub opsets: Vec<(String, i64)>,
    /// `metadata_props` of the model, graphs, nodes and functions.
    pub metadata: Vec<Metadata>,
    /// Every operator used, once per (domain, op_type, overload).
    pub operators: Vec<OperatorUse>,
    /// Model-local functions: (domain, name, overload).
    pub functions: Vec<(String, String, String)>,
    /// Tensors that declare external data (a `data_location` of EXTERNAL or any
    /// `external_data` entries).
    pub external: Vec<ExternalTensor>,
    /// Non-empty `doc_string`s below the model (graphs, nodes, functions, tensors).
    pub doc_strings: Vec<Text>,
    pub graphs: u64,
    pub nodes: u64,
    /// Deepest subgraph nesting (the main graph is 0).
    pub deepest_graph: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Where the entry is: `model`, `graph`, `graph/If_0.then_branch/node Add_3`, …
    pub place: String,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub place: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorUse {
    /// The node's domain as written (`""` is the default ONNX domain).
    pub domain: String,
    pub op_type: String,
    pub overload: String,
    pub count: u64,
    /// The first node using it, and the graph it is in.
    pub first_node: String,
    pub first_place: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTensor {
    pub name: String,
    pub place: String,
    /// `data_location` is EXTERNAL (loaders only read external data then).
    pub marked_external: bool,
    /// Every `external_data` entry, in order (keys may repeat: the last one wins).
    pub entries: Vec<(String, String)>,
}

impl ExternalTensor {
    /// The value a loader uses for `key` (the last entry with that key).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

// What the decoder allocates, for the survey that bounds it. Mirrors `proto`.
static MODEL: Schema = Schema {
    name: "ModelProto",
    messages: &[
        (7, &GRAPH),
        (8, &OPSET),
        (14, &ENTRY),
        (20, &TRAINING),
        (25, &FUNCTION),
    ],
};
static GRAPH: Schema = Schema {
    name: "GraphProto",
    messages: &[(1, &NODE), (5, &TENSOR), (15, &SPARSE), (16, &ENTRY)],
};
static NODE: Schema = Schema {
    name: "NodeProto",
    messages: &[(5, &ATTRIBUTE), (9, &ENTRY)],
};
static ATTRIBUTE: Schema = Schema {
    name: "AttributeProto",
    messages: &[
        (5, &TENSOR),
        (6, &GRAPH),
        (10, &TENSOR),
        (11, &GRAPH),
        (22, &SPARSE),
        (23, &SPARSE),
    ],
};
static TENSOR: Schema = Schema {
    name: "TensorProto",
    messages: &[(13, &ENTRY)],
};
static SPARSE: Schema = Schema {
    name: "SparseTensorProto",
    messages: &[(1, &TENSOR), (2, &TENSOR)],
};
static TRAINING: Schema = Schema {
    name: "TrainingInfoProto",
    messages: &[(1, &GRAPH), (2, &GRAPH)],
};
static FUNCTION: Schema = Schema {
    name: "FunctionProto",
    messages: &[(7, &NODE), (9, &OPSET), (11, &ATTRIBUTE), (14, &ENTRY)],
};
static OPSET: Schema = Schema {
    name: "OperatorSetIdProto",
    messages: &[],
};
static ENTRY: Schema = Schema {
    name: "StringStringEntryProto",
    messages: &[],
};

/// `ModelProto` field numbers the sniffer looks at.
const FIELD_IR_VERSION: u32 = 1;
const FIELD_GRAPH: u32 = 7;
const FIELD_OPSET_IMPORT: u32 = 8;
/// `GraphProto` fields that make a graph non-empty: node, initializer, sparse_initializer.
const GRAPH_CONTENT_FIELDS: [u32; 3] = [1, 5, 15];

/// True when `data` is an ONNX model: the whole buffer is a well-formed message whose
/// `graph` is a well-formed, non-empty message, with an `ir_version` or an
/// `opset_import`. Field order does not matter (loaders accept any), so reordered files
/// are recognised too. Only top-level fields are walked: cheap on multi-GB files.
pub fn sniff(data: &[u8]) -> bool {
    if data.is_empty() || data.len() as u64 > protobuf::MAX_MESSAGE_SIZE {
        return false;
    }
    let mut ir_version = None;
    let mut graph_ok = false;
    let mut opsets = false;
    let wire_ok = protobuf::each_field(data, |f| {
        match (f.number, f.value) {
            (FIELD_IR_VERSION, Value::Varint(v)) => ir_version = Some(v),
            (FIELD_GRAPH, Value::Len(body)) => {
                let mut content = false;
                let body_ok = protobuf::each_field(body, |g| {
                    content |= GRAPH_CONTENT_FIELDS.contains(&g.number)
                        && matches!(g.value, Value::Len(_));
                    true
                });
                if !body_ok {
                    return false;
                }
                graph_ok |= content;
            }
            (FIELD_OPSET_IMPORT, Value::Len(_)) => opsets = true,
            _ => {}
        }
        true
    });
    let ir_ok = ir_version.is_some_and(|v| (1..=i64::from(i32::MAX) as u64).contains(&v));
    wire_ok && graph_ok && (ir_ok || opsets)
}

/// Parses a model within `limits`. The survey runs first, so a hostile file is refused
/// before `prost` allocates anything for it.
pub fn parse(data: &[u8], limits: &OnnxLimits) -> Result<OnnxModel, OnnxError> {
    if data.len() as u64 > protobuf::MAX_MESSAGE_SIZE {
        return Err(OnnxError::TooLarge(data.len() as u64));
    }
    let survey = protobuf::survey(
        data,
        &MODEL,
        &SurveyLimits {
            max_depth: limits.max_message_depth,
            max_messages: limits.max_messages,
            max_fields: limits.max_fields,
        },
    )
    .map_err(OnnxError::Wire)?;
    for (what, schema, limit) in [
        ("nodes", NODE.name, limits.max_nodes),
        ("functions", FUNCTION.name, limits.max_functions),
    ] {
        let count = survey.count(schema);
        if count > limit {
            return Err(OnnxError::Limit { what, count, limit });
        }
    }
    let m = ModelProto::decode(data).map_err(|e| OnnxError::Decode(e.to_string()))?;
    flatten(&m, limits)
}

struct Walk<'l> {
    out: OnnxModel,
    ops: BTreeMap<(String, String, String), OperatorUse>,
    limits: &'l OnnxLimits,
}

fn flatten(m: &ModelProto, limits: &OnnxLimits) -> Result<OnnxModel, OnnxError> {
    let mut w = Walk {
        out: OnnxModel {
            ir_version: m.ir_version,
            producer_name: text(&m.producer_name),
            producer_version: text(&m.producer_version),
            domain: text(&m.domain),
            doc_string: text(&m.doc_string),
            ..OnnxModel::default()
        },
        ops: BTreeMap::new(),
        limits,
    };
    for o in &m.opset_import {
        w.out.opsets.push((text(&o.domain), o.version));
    }
    w.metadata("model", &m.metadata_props);
    for f in &m.functions {
        w.out
            .functions
            .push((text(&f.domain), text(&f.name), text(&f.overload)));
    }
    if let Some(g) = &m.graph {
        w.graph(g, "graph", 0)?;
    }
    for (i, t) in m.training_info.iter().enumerate() {
        if let Some(g) = &t.initialization {
            w.graph(g, &format!("training_info[{i}].initialization"), 0)?;
        }
        if let Some(g) = &t.algorithm {
            w.graph(g, &format!("training_info[{i}].algorithm"), 0)?;
        }
    }
    for f in &m.functions {
        let place = format!("function {}:{}", text(&f.domain), text(&f.name));
        for o in &f.opset_import {
            w.out.opsets.push((text(&o.domain), o.version));
        }
        w.doc(&place, &f.doc_string);
        w.metadata(&place, &f.metadata_props);
        for a in &f.attribute_proto {
            w.attribute(a, &place, 0)?;
        }
        for n in &f.node {
            w.node(n, &place, 0)?;
        }
    }
    w.out.operators = w.ops.into_values().collect();
    Ok(w.out)
}

impl Walk<'_> {
    fn metadata(&mut self, place: &str, entries: &[proto::StringStringEntryProto]) {
        for e in entries {
            self.out.metadata.push(Metadata {
                place: place.to_string(),
                key: text(&e.key),
                value: text(&e.value),
            });
        }
    }

    fn doc(&mut self, place: &str, doc: &[u8]) {
        if !doc.is_empty() {
            self.out.doc_strings.push(Text {
                place: place.to_string(),
                text: text(doc),
            });
        }
    }

    fn graph(&mut self, g: &GraphProto, place: &str, depth: u32) -> Result<(), OnnxError> {
        if depth > self.limits.max_graph_depth {
            return Err(OnnxError::TooDeep(self.limits.max_graph_depth));
        }
        self.out.graphs += 1;
        self.out.deepest_graph = self.out.deepest_graph.max(depth);
        self.doc(place, &g.doc_string);
        self.metadata(place, &g.metadata_props);
        for t in &g.initializer {
            self.tensor(t, place);
        }
        for s in &g.sparse_initializer {
            for t in [&s.values, &s.indices].into_iter().flatten() {
                self.tensor(t, place);
            }
        }
        for n in &g.node {
            self.node(n, place, depth)?;
        }
        Ok(())
    }

    fn node(&mut self, n: &NodeProto, place: &str, depth: u32) -> Result<(), OnnxError> {
        self.out.nodes += 1;
        let name = text(&n.name);
        let key = (text(&n.domain), text(&n.op_type), text(&n.overload));
        match self.ops.get_mut(&key) {
            Some(u) => u.count += 1,
            None => {
                self.ops.insert(
                    key.clone(),
                    OperatorUse {
                        domain: key.0,
                        op_type: key.1,
                        overload: key.2,
                        count: 1,
                        first_node: name.clone(),
                        first_place: place.to_string(),
                    },
                );
            }
        }
        let here = if name.is_empty() {
            format!("{place}/node <{}>", text(&n.op_type))
        } else {
            format!("{place}/node {name}")
        };
        self.doc(&here, &n.doc_string);
        self.metadata(&here, &n.metadata_props);
        for a in &n.attribute {
            self.attribute(a, &here, depth)?;
        }
        Ok(())
    }

    fn attribute(&mut self, a: &AttributeProto, place: &str, depth: u32) -> Result<(), OnnxError> {
        let here = format!("{place}.{}", text(&a.name));
        let sparse = a
            .sparse_tensor
            .iter()
            .chain(&a.sparse_tensors)
            .flat_map(|s| [&s.values, &s.indices].into_iter().flatten());
        for t in a.t.iter().chain(&a.tensors).chain(sparse) {
            self.tensor(t, &here);
        }
        for g in a.g.iter().chain(&a.graphs) {
            self.graph(g, &here, depth + 1)?;
        }
        Ok(())
    }

    fn tensor(&mut self, t: &TensorProto, place: &str) {
        let marked = t.data_location == Some(DATA_LOCATION_EXTERNAL);
        let name = text(&t.name);
        if !t.doc_string.is_empty() {
            self.doc(&format!("{place}/tensor {name}"), &t.doc_string);
        }
        if marked || !t.external_data.is_empty() {
            self.out.external.push(ExternalTensor {
                name,
                place: place.to_string(),
                marked_external: marked,
                entries: t
                    .external_data
                    .iter()
                    .map(|e| (text(&e.key), text(&e.value)))
                    .collect(),
            });
        }
    }
}

#[cfg(test)]
mod tests;
