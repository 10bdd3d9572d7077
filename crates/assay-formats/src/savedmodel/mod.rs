//! TensorFlow files: a SavedModel's `saved_model.pb`, a frozen `GraphDef` (`.pb`), and
//! Keras's `keras_metadata.pb`. Each is recognised by content, measured on the wire
//! before decoding (see [`crate::protobuf`]), and decoded with `prost` into the fields
//! that decide what running the graph does: every node of every graph and every
//! function of the library, with its op, inputs and attributes. The typed model is the
//! [`proto`] structs themselves.
//!
//! [`is_registered_op`] answers whether an op name is one TensorFlow itself defines; a
//! name that is neither registered nor a function of the model's library needs a native
//! op library loaded before the graph can run.

pub mod proto;
pub mod text;

use crate::protobuf::{self, Schema, SurveyError, SurveyLimits, Value};
use prost::Message;

/// Which TensorFlow file a buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TfKind {
    /// `saved_model.pb`: a `SavedModel` message.
    SavedModel,
    /// A bare `GraphDef` (frozen graphs, `tf.io.write_graph`).
    GraphDef,
    /// `keras_metadata.pb`: Keras's per-layer JSON metadata.
    KerasMetadata,
    /// The text format of a SavedModel or GraphDef (`saved_model.pbtxt`).
    Text,
}

impl TfKind {
    pub fn name(self) -> &'static str {
        match self {
            TfKind::SavedModel => "tf-savedmodel",
            TfKind::GraphDef => "tf-graphdef",
            TfKind::KerasMetadata => "keras-metadata",
            TfKind::Text => "tf-pbtxt",
        }
    }
}

/// Bounds on one TensorFlow file.
#[derive(Debug, Clone)]
pub struct TfLimits {
    pub max_message_depth: u32,
    pub max_messages: u64,
    pub max_fields: u64,
    /// `NodeDef`s over all graphs and functions.
    pub max_nodes: u64,
    /// Functions in all libraries.
    pub max_functions: u64,
}

impl Default for TfLimits {
    fn default() -> Self {
        TfLimits {
            max_message_depth: protobuf::MAX_MESSAGE_DEPTH,
            // A Keras SavedModel of a large network has ~10^4..10^5 nodes over its
            // functions; these bound the decoded tree to a few hundred MB.
            max_messages: 2_000_000,
            max_fields: 16_000_000,
            max_nodes: 1_000_000,
            max_functions: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TfError {
    #[error("{0} bytes is more than a protobuf message can hold; TensorFlow cannot read it")]
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
    #[error("text format: {0}")]
    Text(String),
}

// What the decoder allocates, for the survey that bounds it. Mirrors `proto`.
static SAVED_MODEL: Schema = Schema {
    name: "SavedModel",
    messages: &[(2, &META_GRAPH)],
};
static META_GRAPH: Schema = Schema {
    name: "MetaGraphDef",
    messages: &[
        (1, &META_INFO),
        (2, &GRAPH),
        (3, &SAVER),
        (4, &COLLECTION_ENTRY),
        (6, &ASSET_FILE),
        (7, &OBJECT_GRAPH),
    ],
};
static META_INFO: Schema = Schema {
    name: "MetaInfoDef",
    messages: &[],
};
static GRAPH: Schema = Schema {
    name: "GraphDef",
    messages: &[(1, &NODE), (2, &LIBRARY)],
};
static NODE: Schema = Schema {
    name: "NodeDef",
    messages: &[(5, &ATTR_ENTRY)],
};
static ATTR_ENTRY: Schema = Schema {
    name: "AttrEntry",
    messages: &[(2, &ATTR_VALUE)],
};
static ATTR_VALUE: Schema = Schema {
    name: "AttrValue",
    messages: &[(1, &LIST_VALUE), (8, &TENSOR), (10, &NAME_ATTR_LIST)],
};
static LIST_VALUE: Schema = Schema {
    name: "ListValue",
    messages: &[(8, &TENSOR), (9, &NAME_ATTR_LIST)],
};
static NAME_ATTR_LIST: Schema = Schema {
    name: "NameAttrList",
    messages: &[(2, &ATTR_ENTRY)],
};
static TENSOR: Schema = Schema {
    name: "TensorProto",
    messages: &[],
};
static LIBRARY: Schema = Schema {
    name: "FunctionDefLibrary",
    messages: &[(1, &FUNCTION)],
};
static FUNCTION: Schema = Schema {
    name: "FunctionDef",
    messages: &[(1, &OP_DEF), (3, &NODE), (5, &ATTR_ENTRY)],
};
static OP_DEF: Schema = Schema {
    name: "OpDef",
    messages: &[],
};
static SAVER: Schema = Schema {
    name: "SaverDef",
    messages: &[],
};
static COLLECTION_ENTRY: Schema = Schema {
    name: "CollectionEntry",
    messages: &[(2, &COLLECTION_DEF)],
};
static COLLECTION_DEF: Schema = Schema {
    name: "CollectionDef",
    messages: &[(5, &ANY_LIST)],
};
static ANY_LIST: Schema = Schema {
    name: "AnyList",
    messages: &[(1, &ANY)],
};
static ANY: Schema = Schema {
    name: "Any",
    messages: &[],
};
static ASSET_FILE: Schema = Schema {
    name: "AssetFileDef",
    messages: &[(1, &TENSOR_INFO)],
};
static TENSOR_INFO: Schema = Schema {
    name: "TensorInfo",
    messages: &[],
};
static OBJECT_GRAPH: Schema = Schema {
    name: "SavedObjectGraph",
    messages: &[(1, &SAVED_OBJECT)],
};
static SAVED_OBJECT: Schema = Schema {
    name: "SavedObject",
    messages: &[(4, &USER_OBJECT)],
};
static USER_OBJECT: Schema = Schema {
    name: "SavedUserObject",
    messages: &[],
};
static SAVED_METADATA: Schema = Schema {
    name: "SavedMetadata",
    messages: &[(1, &KERAS_OBJECT)],
};
static KERAS_OBJECT: Schema = Schema {
    name: "KerasObject",
    messages: &[],
};

/// How many leading nodes of a bare `GraphDef` the sniffer checks for a name and an op.
const SNIFF_NODES: usize = 16;

/// What a buffer is, if it is one of the TensorFlow files: decided from the wire
/// structure of the top level and the first nested messages only (cheap on large files),
/// accepting any field order.
pub fn sniff(data: &[u8]) -> Option<TfKind> {
    if data.is_empty() || data.len() as u64 > protobuf::MAX_MESSAGE_SIZE {
        return None;
    }
    if is_saved_model(data) {
        return Some(TfKind::SavedModel);
    }
    if is_graph_def(data) {
        return Some(TfKind::GraphDef);
    }
    if is_keras_metadata(data) {
        return Some(TfKind::KerasMetadata);
    }
    if text::sniff(data) {
        return Some(TfKind::Text);
    }
    None
}

/// The first length-delimited field `number` of a well-formed message.
fn first_len(body: &[u8], number: u32) -> Option<&[u8]> {
    let mut found = None;
    let ok = protobuf::each_field(body, |f| {
        if let (n, Value::Len(b)) = (f.number, f.value)
            && n == number
            && found.is_none()
        {
            found = Some(b);
        }
        true
    });
    if ok { found } else { None }
}

/// `SavedModel`: only fields 1 (varint schema version) and 2 (meta graphs); the first
/// meta graph is a well-formed `MetaGraphDef` (fields 1..=7) holding a graph or an
/// object graph, and its graph, if any, is a well-formed `GraphDef`.
fn is_saved_model(data: &[u8]) -> bool {
    let mut meta = None;
    let shape_ok = protobuf::each_field(data, |f| match (f.number, f.value) {
        (1, Value::Varint(_)) => true,
        (2, Value::Len(b)) => {
            meta.get_or_insert(b);
            true
        }
        _ => false,
    });
    let Some(meta) = meta.filter(|_| shape_ok) else {
        return false;
    };
    let (mut info, mut graph, mut objects) = (false, None, false);
    let meta_ok = protobuf::each_field(meta, |f| {
        match (f.number, f.value) {
            (1, Value::Len(_)) => info = true,
            (2, Value::Len(b)) => {
                graph.get_or_insert(b);
            }
            (7, Value::Len(_)) => objects = true,
            (n, _) if !(1..=7).contains(&n) => return false,
            _ => {}
        }
        true
    });
    meta_ok
        && match graph {
            Some(g) => is_graph_shape(g),
            None => info && objects,
        }
}

/// A `GraphDef`'s top level: fields 1..=5 only, with the right wire types.
fn is_graph_shape(data: &[u8]) -> bool {
    protobuf::each_field(data, |f| {
        matches!(
            (f.number, f.value),
            (1 | 2 | 4 | 5, Value::Len(_)) | (3, Value::Varint(_))
        )
    })
}

/// A bare `GraphDef`: the graph shape, at least one node, and every one of the first
/// nodes a `NodeDef` with a non-empty name and an op name made of identifier characters.
fn is_graph_def(data: &[u8]) -> bool {
    let mut nodes: Vec<&[u8]> = Vec::new();
    let shape_ok = protobuf::each_field(data, |f| match (f.number, f.value) {
        (1, Value::Len(b)) => {
            if nodes.len() < SNIFF_NODES {
                nodes.push(b);
            }
            true
        }
        (2 | 4 | 5, Value::Len(_)) | (3, Value::Varint(_)) => true,
        _ => false,
    });
    shape_ok
        && !nodes.is_empty()
        && nodes.iter().all(|n| {
            let name = first_len(n, 1).unwrap_or_default();
            let op = first_len(n, 2).unwrap_or_default();
            protobuf::each_field(n, |_| true) && !name.is_empty() && is_op_name(op)
        })
}

/// `keras_metadata.pb`: only field 1 (objects); the first object is well-formed and its
/// identifier is one of Keras's `_tf_keras_*` names.
fn is_keras_metadata(data: &[u8]) -> bool {
    let mut first = None;
    let shape_ok = protobuf::each_field(data, |f| match (f.number, f.value) {
        (1, Value::Len(b)) => {
            first.get_or_insert(b);
            true
        }
        _ => false,
    });
    shape_ok
        && first
            .and_then(|o| first_len(o, 4))
            .is_some_and(|id| id.starts_with(b"_tf_keras"))
}

/// Op names: TensorFlow's `[A-Za-z0-9_>.]`, starting with a letter or `_`.
fn is_op_name(op: &[u8]) -> bool {
    !op.is_empty()
        && op.len() <= 512
        && (op[0].is_ascii_alphabetic() || op[0] == b'_')
        && op
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'>' | b'.' | b'-'))
}

fn check(data: &[u8], schema: &'static Schema, limits: &TfLimits) -> Result<(), TfError> {
    if data.len() as u64 > protobuf::MAX_MESSAGE_SIZE {
        return Err(TfError::TooLarge(data.len() as u64));
    }
    let survey = protobuf::survey(
        data,
        schema,
        &SurveyLimits {
            max_depth: limits.max_message_depth,
            max_messages: limits.max_messages,
            max_fields: limits.max_fields,
        },
    )
    .map_err(TfError::Wire)?;
    for (what, name, limit) in [
        ("nodes", NODE.name, limits.max_nodes),
        ("functions", FUNCTION.name, limits.max_functions),
    ] {
        let count = survey.count(name);
        if count > limit {
            return Err(TfError::Limit { what, count, limit });
        }
    }
    Ok(())
}

/// Decodes `saved_model.pb` within `limits`.
pub fn parse_saved_model(data: &[u8], limits: &TfLimits) -> Result<proto::SavedModel, TfError> {
    check(data, &SAVED_MODEL, limits)?;
    proto::SavedModel::decode(data).map_err(|e| TfError::Decode(e.to_string()))
}

/// Decodes a bare `GraphDef` within `limits`.
pub fn parse_graph_def(data: &[u8], limits: &TfLimits) -> Result<proto::GraphDef, TfError> {
    check(data, &GRAPH, limits)?;
    proto::GraphDef::decode(data).map_err(|e| TfError::Decode(e.to_string()))
}

/// Decodes `keras_metadata.pb` within `limits`.
pub fn parse_keras_metadata(
    data: &[u8],
    limits: &TfLimits,
) -> Result<proto::SavedMetadata, TfError> {
    check(data, &SAVED_METADATA, limits)?;
    proto::SavedMetadata::decode(data).map_err(|e| TfError::Decode(e.to_string()))
}

/// Extracts the nodes of a text-format SavedModel or GraphDef within `limits`.
pub fn parse_text(data: &[u8], limits: &TfLimits) -> Result<text::TextGraph, TfError> {
    if data.len() as u64 > protobuf::MAX_MESSAGE_SIZE {
        return Err(TfError::TooLarge(data.len() as u64));
    }
    text::parse(data, limits.max_nodes)
}

/// Every op TensorFlow registers (`TF_GetAllOpList()` of the CPU build named in the
/// file's first line), sorted; regenerate with `gen_tf_ops.py` beside it.
const REGISTERED_OPS: &str = include_str!("tf_ops.txt");

/// True when TensorFlow itself defines an op of this name.
pub fn is_registered_op(name: &str) -> bool {
    use std::sync::LazyLock;
    static OPS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        let mut v: Vec<&str> = REGISTERED_OPS
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        v.sort_unstable();
        v
    });
    OPS.binary_search(&name).is_ok()
}

/// The collection TF1 SavedModels list their assets in (`AssetFileDef`s packed in `Any`).
pub const ASSETS_COLLECTION: &[u8] = b"saved_model_assets";

/// Every asset of a MetaGraph: `asset_file_def`, and the legacy assets collection that
/// the loaders still read. An entry that does not decode is skipped (it names no asset
/// the loader could use either).
pub fn asset_files(mg: &proto::MetaGraphDef) -> Vec<proto::AssetFileDef> {
    let mut out = mg.asset_file_def.clone();
    for c in mg
        .collection_def
        .iter()
        .filter(|c| c.key == ASSETS_COLLECTION)
    {
        for any in c
            .value
            .iter()
            .flat_map(|v| &v.any_list)
            .flat_map(|l| &l.value)
        {
            // An AssetFileDef has no repeated fields: decoding it allocates no more
            // than its own bytes.
            if let Ok(a) = proto::AssetFileDef::decode(any.value.as_slice()) {
                out.push(a);
            }
        }
    }
    out
}

/// The node a graph input refers to: `name`, `name:1` and `^name` (a control input) in
/// graphs; `name:output:0` in functions. A bare function argument has no colon.
pub fn input_node(input: &str) -> &str {
    let s = input.strip_prefix('^').unwrap_or(input);
    s.split(':').next().unwrap_or(s)
}

#[cfg(test)]
mod tests;
