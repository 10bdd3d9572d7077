//! What TensorFlow ops do beyond computing: built from TensorFlow's op registry
//! (`tf_ops.txt`: every op of the CPU build) and the published SavedModel attacks
//! (`tf.io.read_file`/`write_file`, `tf.io.matching_files`, `tf.py_function`). Every name
//! here is checked against the registry by a test.

/// What running an op does outside the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// Calls back into Python.
    Python,
    /// Writes or deletes files.
    Write,
    /// Reads or lists files.
    Read,
    /// Talks to other hosts.
    Network,
    /// Runs a graph serialized in a tensor.
    EmbeddedGraph,
}

/// Ops that have their effect whenever they run; plain SavedModels never contain them.
const ALWAYS: &[(&str, Effect)] = &[
    ("PyFunc", Effect::Python),
    ("PyFuncStateless", Effect::Python),
    ("EagerPyFunc", Effect::Python),
    ("WriteFile", Effect::Write),
    ("DatasetToTFRecord", Effect::Write),
    ("ExperimentalDatasetToTFRecord", Effect::Write),
    ("SaveDataset", Effect::Write),
    ("SaveDatasetV2", Effect::Write),
    ("DistributedSave", Effect::Write),
    ("SnapshotDataset", Effect::Write),
    ("SnapshotDatasetV2", Effect::Write),
    ("CreateSummaryFileWriter", Effect::Write),
    ("CreateSummaryDbWriter", Effect::Write),
    ("CalibrationStatisticsSaver", Effect::Write),
    ("ReadFile", Effect::Read),
    ("MatchingFiles", Effect::Read),
    ("MatchingFilesDataset", Effect::Read),
    ("ExperimentalMatchingFilesDataset", Effect::Read),
    ("WholeFileReader", Effect::Read),
    ("WholeFileReaderV2", Effect::Read),
    ("TextLineReader", Effect::Read),
    ("TextLineReaderV2", Effect::Read),
    ("FixedLengthRecordReader", Effect::Read),
    ("FixedLengthRecordReaderV2", Effect::Read),
    ("TFRecordReader", Effect::Read),
    ("TFRecordReaderV2", Effect::Read),
    ("LMDBReader", Effect::Read),
    ("TFRecordDataset", Effect::Read),
    ("TFRecordDatasetV2", Effect::Read),
    ("TextLineDataset", Effect::Read),
    ("FixedLengthRecordDataset", Effect::Read),
    ("FixedLengthRecordDatasetV2", Effect::Read),
    ("CSVDataset", Effect::Read),
    ("CSVDatasetV2", Effect::Read),
    ("ExperimentalCSVDataset", Effect::Read),
    ("SqlDataset", Effect::Read),
    ("ExperimentalSqlDataset", Effect::Read),
    ("LMDBDataset", Effect::Read),
    ("ExperimentalLMDBDataset", Effect::Read),
    ("LoadDataset", Effect::Read),
    ("SnapshotDatasetReader", Effect::Read),
    ("SnapshotNestedDatasetReader", Effect::Read),
    ("SnapshotChunkDataset", Effect::Read),
    ("ListSnapshotChunksDataset", Effect::Read),
    ("ImmutableConst", Effect::Read),
    ("LoadAndRemapMatrix", Effect::Read),
    ("GenerateVocabRemapping", Effect::Read),
    ("RecordInput", Effect::Read),
    ("FileSystemSetConfiguration", Effect::Read),
    ("DataServiceDataset", Effect::Network),
    ("DataServiceDatasetV2", Effect::Network),
    ("DataServiceDatasetV3", Effect::Network),
    ("DataServiceDatasetV4", Effect::Network),
    ("RegisterDataset", Effect::Network),
    ("RegisterDatasetV2", Effect::Network),
    ("RpcServer", Effect::Network),
    ("RpcServerStart", Effect::Network),
    ("RpcServerRegister", Effect::Network),
    ("RpcClient", Effect::Network),
    ("RpcCall", Effect::Network),
    ("RpcCheckStatus", Effect::Network),
    ("RpcGetValue", Effect::Network),
    ("DatasetFromGraph", Effect::EmbeddedGraph),
];

/// Checkpoint ops: every SavedModel's saver uses them with the path the loader supplies;
/// judged by where they are and by their path constants.
const CHECKPOINT: &[(&str, Effect)] = &[
    ("SaveV2", Effect::Write),
    ("Save", Effect::Write),
    ("SaveSlices", Effect::Write),
    ("MergeV2Checkpoints", Effect::Write),
    ("RestoreV2", Effect::Read),
    ("Restore", Effect::Read),
    ("RestoreSlice", Effect::Read),
    ("DTensorRestoreV2", Effect::Read),
];

/// Ops that read a file named by an input, normal with asset files (vocabularies):
/// judged by their path constants only.
const PATH_INPUT: &[(&str, Effect)] = &[
    ("InitializeTableFromTextFile", Effect::Read),
    ("InitializeTableFromTextFileV2", Effect::Read),
];

fn find(table: &[(&str, Effect)], op: &str) -> Option<Effect> {
    table.iter().find(|(n, _)| *n == op).map(|(_, e)| *e)
}

pub fn always(op: &str) -> Option<Effect> {
    find(ALWAYS, op)
}

pub fn checkpoint(op: &str) -> Option<Effect> {
    find(CHECKPOINT, op)
}

pub fn path_input(op: &str) -> Option<Effect> {
    find(PATH_INPUT, op)
}

/// Constant ops whose `value` attribute holds the tensor.
pub fn is_const(op: &str) -> bool {
    matches!(op, "Const" | "HostConst")
}

/// Remote file systems TensorFlow's file ops open transparently (and URLs).
const REMOTE_SCHEMES: &[&str] = &[
    "gs://",
    "s3://",
    "hdfs://",
    "viewfs://",
    "har://",
    "http://",
    "https://",
    "ftp://",
    "grpc://",
    "az://",
    "abfs://",
    "oss://",
];

/// What a string constant that reaches a file op says about the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Remote,
    Absolute,
    Traversal,
}

pub fn path_kind(s: &str) -> Option<PathKind> {
    let lower = s.trim().to_ascii_lowercase();
    if REMOTE_SCHEMES.iter().any(|p| lower.starts_with(p)) {
        return Some(PathKind::Remote);
    }
    // Device names (`/job:localhost/…`, `/device:CPU:0`) are not paths.
    if lower.starts_with("/job:") || lower.starts_with("/device:") {
        return None;
    }
    let b = lower.as_bytes();
    if lower.starts_with('/')
        || lower.starts_with('\\')
        || lower.starts_with('~')
        || lower.starts_with("file:")
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
    {
        return Some(PathKind::Absolute);
    }
    if lower.split(['/', '\\']).any(|c| c == "..") {
        return Some(PathKind::Traversal);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_formats::savedmodel::is_registered_op;

    #[test]
    fn every_listed_op_is_a_tensorflow_op() {
        for (op, _) in ALWAYS.iter().chain(CHECKPOINT).chain(PATH_INPUT) {
            assert!(is_registered_op(op), "{op} is not in tf_ops.txt");
        }
        for op in [
            "Const",
            "HostConst",
            "PrintV2",
            "DebugIdentityV2",
            "DecodeProtoV2",
            "EncodeProto",
        ] {
            assert!(is_registered_op(op), "{op}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(path_kind("gs://bucket/x"), Some(PathKind::Remote));
        assert_eq!(path_kind("/etc/passwd"), Some(PathKind::Absolute));
        assert_eq!(path_kind("C:\\x"), Some(PathKind::Absolute));
        assert_eq!(path_kind("../../x"), Some(PathKind::Traversal));
        assert_eq!(
            path_kind("/job:localhost/replica:0/task:0/device:CPU:0"),
            None
        );
        assert_eq!(path_kind("_temp/part"), None);
        assert_eq!(
            path_kind("model/layer-0/kernel/.ATTRIBUTES/VARIABLE_VALUE"),
            None
        );
    }
}
