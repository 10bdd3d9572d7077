//! The parts of TensorFlow's `saved_model.proto`, `meta_graph.proto`, `graph.proto`,
//! `node_def.proto`, `function.proto`, `attr_value.proto`, `tensor.proto`,
//! `saved_object_graph.proto`, `saver.proto` and Keras's `saved_metadata.proto` that
//! the scanner reads, with the official field numbers. Everything else (shapes, tensor
//! contents, signatures, type information) is skipped by `prost` without being copied.
//!
//! Strings are declared as bytes so that a stray invalid UTF-8 sequence is text to look
//! at rather than a decode error. Maps are declared as their wire form (repeated entry
//! messages), so duplicate keys stay visible.

/// `saved_model.pb`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedModel {
    #[prost(int64, tag = "1")]
    pub saved_model_schema_version: i64,
    #[prost(message, repeated, tag = "2")]
    pub meta_graphs: Vec<MetaGraphDef>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaGraphDef {
    #[prost(message, optional, tag = "1")]
    pub meta_info_def: Option<MetaInfoDef>,
    #[prost(message, optional, tag = "2")]
    pub graph_def: Option<GraphDef>,
    #[prost(message, optional, tag = "3")]
    pub saver_def: Option<SaverDef>,
    /// Collections: TF1 SavedModels keep their asset list here (`saved_model_assets`).
    #[prost(message, repeated, tag = "4")]
    pub collection_def: Vec<CollectionEntry>,
    #[prost(message, repeated, tag = "6")]
    pub asset_file_def: Vec<AssetFileDef>,
    #[prost(message, optional, tag = "7")]
    pub object_graph_def: Option<SavedObjectGraph>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetaInfoDef {
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub tags: Vec<Vec<u8>>,
    #[prost(bytes = "vec", tag = "5")]
    pub tensorflow_version: Vec<u8>,
}

/// A graph: also the whole of a frozen `.pb` graph file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphDef {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeDef>,
    #[prost(message, optional, tag = "2")]
    pub library: Option<FunctionDefLibrary>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeDef {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub op: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "3")]
    pub input: Vec<Vec<u8>>,
    #[prost(bytes = "vec", tag = "4")]
    pub device: Vec<u8>,
    #[prost(message, repeated, tag = "5")]
    pub attr: Vec<AttrEntry>,
}

/// One entry of a `map<string, AttrValue>`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttrEntry {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AttrValue>,
}

/// `AttrValue`: a oneof on the wire; every member present is kept.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttrValue {
    #[prost(message, optional, tag = "1")]
    pub list: Option<ListValue>,
    #[prost(bytes = "vec", optional, tag = "2")]
    pub s: Option<Vec<u8>>,
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "10")]
    pub func: Option<NameAttrList>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListValue {
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub s: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "8")]
    pub tensor: Vec<TensorProto>,
    #[prost(message, repeated, tag = "9")]
    pub func: Vec<NameAttrList>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct NameAttrList {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub attr: Vec<AttrEntry>,
}

/// A tensor: its type and its string values (string constants are where file names
/// and URLs live); numeric contents are never read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FunctionDefLibrary {
    #[prost(message, repeated, tag = "1")]
    pub function: Vec<FunctionDef>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FunctionDef {
    #[prost(message, optional, tag = "1")]
    pub signature: Option<OpDef>,
    #[prost(message, repeated, tag = "3")]
    pub node_def: Vec<NodeDef>,
    #[prost(message, repeated, tag = "5")]
    pub attr: Vec<AttrEntry>,
}

/// Only the name: a function's signature is an `OpDef`, and its name is how nodes call it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OpDef {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SaverDef {
    #[prost(bytes = "vec", tag = "1")]
    pub filename_tensor_name: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub save_tensor_name: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub restore_op_name: Vec<u8>,
}

/// One entry of `map<string, CollectionDef>`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CollectionEntry {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub value: Option<CollectionDef>,
}

/// Only `any_list`: the other kinds (node names, serialized variables) are not needed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CollectionDef {
    #[prost(message, optional, tag = "5")]
    pub any_list: Option<AnyList>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyList {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(bytes = "vec", tag = "1")]
    pub type_url: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AssetFileDef {
    #[prost(message, optional, tag = "1")]
    pub tensor_info: Option<TensorInfo>,
    #[prost(bytes = "vec", tag = "2")]
    pub filename: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorInfo {
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedObjectGraph {
    #[prost(message, repeated, tag = "1")]
    pub nodes: Vec<SavedObject>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedObject {
    #[prost(message, optional, tag = "4")]
    pub user_object: Option<SavedUserObject>,
    #[prost(bytes = "vec", tag = "13")]
    pub registered_name: Vec<u8>,
}

/// Before `keras_metadata.pb` existed, Keras kept each layer's JSON metadata here.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedUserObject {
    #[prost(bytes = "vec", tag = "1")]
    pub identifier: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub metadata: Vec<u8>,
}

/// `keras_metadata.pb` (Keras `SavedMetadata`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SavedMetadata {
    #[prost(message, repeated, tag = "1")]
    pub nodes: Vec<KerasObject>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KerasObject {
    #[prost(int32, tag = "2")]
    pub node_id: i32,
    #[prost(bytes = "vec", tag = "3")]
    pub node_path: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub identifier: Vec<u8>,
    /// The layer's JSON metadata (class name, config, module).
    #[prost(bytes = "vec", tag = "5")]
    pub metadata: Vec<u8>,
}
