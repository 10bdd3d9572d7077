//! Artifact features: what a model file contains that reaches a vulnerable code path of
//! the library that loads it. The per-file analysers of `assay-scan` report them; the
//! built-in table (`data/ml-advisories.tsv`) says which advisories each one triggers.

/// Something an artifact contains that a known advisory's exploit needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// A pickle-based PyTorch checkpoint (zip, legacy or tar) that `torch.load` unpickles.
    TorchPickleCheckpoint,
    /// A TorchScript archive (`torch.jit.load`).
    TorchScript,
    /// A standalone pickle, joblib, dill or cloudpickle file.
    Pickle,
    /// A NumPy `.npy` holding an object array (pickled data).
    NumpyObjectArray,
    /// A Keras `Lambda` layer carrying marshalled bytecode.
    KerasLambdaBytecode,
    /// Marshalled bytecode in a legacy HDF5 (`.h5`) Keras model.
    KerasH5Lambda,
    /// A Keras configuration naming a module or function outside Keras.
    KerasModuleReference,
    /// A Keras configuration that switches safe mode off or calls a safe-mode gadget.
    KerasSafeModeOff,
    /// An ONNX model whose tensors are stored as external data files.
    OnnxExternalData,
    /// An archive with members that escape the extraction folder.
    ArchivePathTraversal,
    /// A GGUF file carrying a `tokenizer.chat_template`.
    GgufChatTemplate,
}

impl Feature {
    pub const ALL: &[Feature] = &[
        Feature::TorchPickleCheckpoint,
        Feature::TorchScript,
        Feature::Pickle,
        Feature::NumpyObjectArray,
        Feature::KerasLambdaBytecode,
        Feature::KerasH5Lambda,
        Feature::KerasModuleReference,
        Feature::KerasSafeModeOff,
        Feature::OnnxExternalData,
        Feature::ArchivePathTraversal,
        Feature::GgufChatTemplate,
    ];

    /// The name used in `data/ml-advisories.tsv`.
    pub fn name(self) -> &'static str {
        match self {
            Feature::TorchPickleCheckpoint => "torch-pickle-checkpoint",
            Feature::TorchScript => "torchscript",
            Feature::Pickle => "pickle",
            Feature::NumpyObjectArray => "numpy-object-array",
            Feature::KerasLambdaBytecode => "keras-lambda-bytecode",
            Feature::KerasH5Lambda => "keras-h5-lambda",
            Feature::KerasModuleReference => "keras-module-reference",
            Feature::KerasSafeModeOff => "keras-safe-mode-off",
            Feature::OnnxExternalData => "onnx-external-data",
            Feature::ArchivePathTraversal => "archive-path-traversal",
            Feature::GgufChatTemplate => "gguf-chat-template",
        }
    }

    pub fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL.iter().copied().find(|f| f.name() == name)
    }

    /// What the file contains, in the user's words.
    pub fn describe(self) -> &'static str {
        match self {
            Feature::TorchPickleCheckpoint => "a pickle-based PyTorch checkpoint",
            Feature::TorchScript => "a TorchScript archive",
            Feature::Pickle => "a pickle file",
            Feature::NumpyObjectArray => "a NumPy object array (pickled)",
            Feature::KerasLambdaBytecode => "a Keras Lambda layer with marshalled bytecode",
            Feature::KerasH5Lambda => "a Lambda layer with bytecode in a legacy .h5 model",
            Feature::KerasModuleReference => "a Keras config naming a module outside Keras",
            Feature::KerasSafeModeOff => "a Keras config that switches safe mode off",
            Feature::OnnxExternalData => "an ONNX model with external data",
            Feature::ArchivePathTraversal => "an archive with members escaping its folder",
            Feature::GgufChatTemplate => "a GGUF chat template",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Feature::ALL {
            assert_eq!(Feature::from_name(f.name()), Some(*f));
        }
    }
}
