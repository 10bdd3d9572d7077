//! Keras model configurations (`config.json` of a `.keras` archive, the `model_config` and
//! `training_config` attributes of a legacy `.h5` file): a walk over the parsed JSON that
//! lists everything the Keras loader would turn into code or an import.
//!
//! Keras rebuilds a model by recursing through every dict that has `class_name` and
//! `config` (layers of `Functional`/`Sequential` models, nested models, wrapper layers'
//! `layer`, `inner_config`, `build_config`, `compile_config`, initializers, activations,
//! losses …) and resolving each by `module` + `class_name` (or, for functions, `module` +
//! the `config` string). The walk here visits *every* JSON value instead of following
//! Keras's own paths, so an object hidden under an unusual key is still seen.
//!
//! What it reports ([`ItemKind`]):
//! - marshalled Python bytecode (`Lambda` layers, `__lambda__` objects);
//! - references to objects outside Keras, registered custom objects, Python builtins,
//!   and Keras functions that are not modelling operations (`get_file`, `load_model`,
//!   `enable_unsafe_deserialization` …: the published safe-mode bypass gadgets);
//! - anything that turns safe mode off;
//! - layers that read files or URLs while loading (`TFSMLayer`, lookup vocabularies);
//! - base64 payloads that a layer hands to another deserializer (`TorchModuleWrapper`).
//!
//! Deciding how bad each one is belongs to the scanner.

pub mod marshal;
mod names;

use serde_json::Value;

pub use marshal::CodeSummary;

/// Bounds on one configuration walk.
#[derive(Debug, Clone)]
pub struct KerasLimits {
    /// JSON nesting walked (serde_json refuses to parse beyond 128 anyway).
    pub max_depth: usize,
    /// JSON values visited.
    pub max_values: usize,
    /// Items reported before the walk stops.
    pub max_items: usize,
    /// Bytes of decoded bytecode or payload kept per item.
    pub max_payload: usize,
}

impl Default for KerasLimits {
    fn default() -> Self {
        KerasLimits {
            max_depth: 256,
            max_values: 5_000_000,
            max_items: 10_000,
            max_payload: 64 << 20,
        }
    }
}

/// What the walk found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigAnalysis {
    /// `class_name` of the top-level object (`Functional`, `Sequential`, a custom model).
    pub model_class: Option<String>,
    pub items: Vec<ConfigItem>,
    /// Dicts with a `class_name` seen (layers and the objects inside them).
    pub objects: usize,
    /// The limit that cut the walk short, in words.
    pub truncated: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigItem {
    /// Where in the configuration, e.g. `config.layers[3].config.function`.
    pub path: String,
    /// The `name` of the nearest enclosing layer or object, when it has one.
    pub layer: Option<String>,
    pub kind: ItemKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    /// Marshalled Python bytecode that `marshal.loads` turns into a function at load time.
    Bytecode(Bytecode),
    /// An object or function resolved by name when the model is loaded.
    Reference(ObjectRef),
    /// Something that switches safe mode off (`enable_unsafe_deserialization`,
    /// `safe_mode: false` passed to a loader).
    SafeModeOff { evidence: String },
    /// A layer that opens a file or URL named in the configuration while loading.
    ExternalResource {
        class_name: String,
        field: String,
        value: String,
        remote: bool,
    },
    /// Base64 data that a layer hands to another deserializer while loading.
    EmbeddedPayload {
        class_name: String,
        field: String,
        loader: &'static str,
        data: Vec<u8>,
        error: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bytecode {
    /// Characters of the encoded form in the configuration.
    pub encoded_len: usize,
    /// How the loader decodes it: `base64`, or `raw` (`raw_unicode_escape` of the string).
    pub encoding: &'static str,
    /// The decoded bytes (at most `max_payload`).
    pub raw: Vec<u8>,
    pub summary: Result<CodeSummary, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// `module` names something outside Keras and TensorFlow.
    Foreign,
    /// A Python builtin reached through `module: "builtins"`.
    PythonBuiltin,
    /// Registered with `register_keras_serializable` (`Package>Name`) or a class name
    /// Keras does not define: user code must supply it.
    Custom,
    /// A Keras function that is not a modelling operation (loading, saving, downloading,
    /// file access, global settings): the published safe-mode bypass gadgets.
    KerasGadget,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRef {
    pub kind: RefKind,
    /// The `module` field, when present.
    pub module: Option<String>,
    /// The class or function name the loader looks up.
    pub name: String,
    pub registered_name: Option<String>,
    /// True for `class_name: "function"` references (and legacy Lambda functions).
    pub function: bool,
}

impl ObjectRef {
    /// `module.name`, or the bare name.
    pub fn qualified(&self) -> String {
        match &self.module {
            // `builtins` is how Keras marks functions found by name (`Package>fn`).
            Some(m) if m == "builtins" && self.name.contains('>') => self.name.clone(),
            Some(m) if !m.is_empty() => format!("{m}.{}", self.name),
            _ => self.name.clone(),
        }
    }
}

/// Packages whose modules the Keras loader treats as its own.
const KERAS_PACKAGES: &[&str] = &[
    "keras",
    "keras_hub",
    "keras_cv",
    "keras_nlp",
    "tf_keras",
    "tensorflow",
    "tf",
];

/// Keras functions that are not modelling operations (Keras's own `NON_MODELING_APIS`
/// and the internals they wrap). Matched on the last name component.
const GADGET_FUNCTIONS: &[&str] = &[
    "enable_unsafe_deserialization",
    "set_global_attribute",
    "get_file",
    "load_model",
    "load_model_from_hdf5",
    "load_weights",
    "load_weights_from_hdf5_group",
    "model_from_json",
    "model_from_config",
    "save_model",
    "save_weights",
    "deserialize_keras_object",
    "serialize_keras_object",
    "register_keras_serializable",
    "load_img",
    "save_img",
    "image_dataset_from_directory",
    "text_dataset_from_directory",
    "audio_dataset_from_directory",
    "timeseries_dataset_from_array",
    "clear_session",
    "func_load",
    "exec",
    "eval",
];

/// Module path fragments under Keras that hold no modelling functions.
const GADGET_MODULE_PARTS: &[&str] = &[
    "saving",
    "file_utils",
    "io_utils",
    "global_state",
    "python_utils",
    "config",
    "legacy.saving",
    "dataset_utils",
    "image_utils",
    "audio_dataset_utils",
    "text_dataset_utils",
];

/// Python's builtin callables (exceptions and constants left out).
const PYTHON_BUILTINS: &[&str] = &[
    "__build_class__",
    "__import__",
    "abs",
    "aiter",
    "all",
    "anext",
    "any",
    "ascii",
    "bin",
    "bool",
    "breakpoint",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "compile",
    "complex",
    "copyright",
    "credits",
    "delattr",
    "dict",
    "dir",
    "divmod",
    "enumerate",
    "eval",
    "exec",
    "exit",
    "filter",
    "float",
    "format",
    "frozenset",
    "getattr",
    "globals",
    "hasattr",
    "hash",
    "help",
    "hex",
    "id",
    "input",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "license",
    "list",
    "locals",
    "map",
    "max",
    "memoryview",
    "min",
    "next",
    "object",
    "oct",
    "open",
    "ord",
    "pow",
    "print",
    "property",
    "quit",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "setattr",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "vars",
    "zip",
];

/// `class_name` values that serialization_lib decodes itself, as data.
const DATA_CLASSES: &[&str] = &[
    "__keras_tensor__",
    "__tensor__",
    "__numpy__",
    "__bytes__",
    "__ellipsis__",
    "__slice__",
];

/// Config fields that lookup and tokenizer layers read as a file path or URL.
const PATH_FIELDS: &[&str] = &[
    "vocabulary",
    "vocabulary_path",
    "vocabulary_file",
    "vocab_file",
    "merges",
    "merges_file",
    "proto",
    "spm_model_file",
    "filepath",
    "file_path",
];

fn top_package(module: &str) -> &str {
    module.split('.').next().unwrap_or(module)
}

fn is_keras_module(module: &str) -> bool {
    KERAS_PACKAGES.contains(&top_package(module))
}

/// Is this a Keras function that is not a modelling operation?
fn is_gadget(module: &str, name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    if GADGET_FUNCTIONS.contains(&last) {
        return true;
    }
    let inner = module.split('.').skip(1).collect::<Vec<_>>().join(".");
    GADGET_MODULE_PARTS.iter().any(|p| {
        inner == *p
            || inner.starts_with(&format!("{p}."))
            || inner.ends_with(&format!(".{p}"))
            || inner.contains(&format!(".{p}."))
    })
}

/// A Keras `registered_name` of the `Package>Name` form.
fn is_registered_custom(s: &str) -> bool {
    s.contains('>')
}

/// Paths that `keras.src.utils.file_utils.is_remote_path` (and `tf.io.gfile`) treat as
/// remote: URLs and the Google file-system mount points.
pub fn is_remote_path(s: &str) -> bool {
    let s = s.trim();
    if let Some((scheme, _)) = s.split_once("://") {
        return !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.');
    }
    ["/gcs/", "/cns/", "/cfs/", "/hdfs/", "/placer/", "/tfhub/"]
        .iter()
        .any(|p| s.starts_with(p))
}

/// Strings that look like a file path rather than a word or an inline value.
fn looks_like_path(s: &str) -> bool {
    let s = s.trim();
    is_remote_path(s)
        || s.starts_with('/')
        || s.starts_with("~")
        || s.starts_with("./")
        || s.starts_with("../")
        || s.contains('\\')
        || (s.len() > 2 && s.as_bytes()[1] == b':' && s.as_bytes()[0].is_ascii_alphabetic())
        || (s.contains('/') && !s.contains(' '))
        || s.ends_with(".txt")
        || s.ends_with(".model")
        || s.ends_with(".json")
}

/// Decodes base64 the way Python's `binascii.a2b_base64` does by default: characters
/// outside the alphabet are skipped, and a complete quantum followed by `=` ends the data.
pub fn lenient_base64(s: &str, max: usize) -> Result<Vec<u8>, String> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if !s.is_ascii() {
        return Err("not ASCII".into());
    }
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut n = 0;
    let mut pads = 0;
    let mut padded = false;
    for &c in s.as_bytes() {
        if c == b'=' {
            // Padding after 2 or 3 data characters ends the data; elsewhere it is
            // skipped, like any other character outside the alphabet.
            if n >= 2 {
                pads += 1;
                if n + pads >= 4 {
                    padded = true;
                    break;
                }
            }
            continue;
        }
        let Some(v) = val(c) else { continue };
        acc = (acc << 6) | v;
        n += 1;
        if n == 4 {
            if out.len() + 3 > max {
                return Err(format!("decoded data is larger than {max} bytes"));
            }
            out.extend([(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    match (n, padded) {
        (0, _) => {}
        (2, true) => out.push((acc >> 4) as u8),
        (3, true) => out.extend([(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => return Err("invalid base64: incorrect padding".into()),
    }
    Ok(out)
}

/// Parses JSON bytes the way Python's `json.loads(bytes)` (what Keras calls) does: the
/// encoding is detected (UTF-8 with or without BOM, UTF-16, UTF-32), and the `NaN`,
/// `Infinity` and `-Infinity` tokens that `json.dumps` writes are accepted (as null).
/// Duplicate keys keep the last value, as in Python.
pub fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    let text = json_text(bytes)?;
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => Ok(v),
        Err(first) => {
            let cleaned = replace_non_finite(&text);
            if cleaned == text {
                return Err(first.to_string());
            }
            serde_json::from_str::<Value>(&cleaned).map_err(|_| first.to_string())
        }
    }
}

/// `json.detect_encoding`, then decoding.
fn json_text(b: &[u8]) -> Result<String, String> {
    let utf16 = |b: &[u8], be: bool| -> Result<String, String> {
        let units = b.chunks_exact(2).map(|c| {
            if be {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .map(|r| r.map_err(|e| format!("invalid UTF-16: {e}")))
            .collect()
    };
    let utf32 = |b: &[u8], be: bool| -> Result<String, String> {
        b.chunks_exact(4)
            .map(|c| {
                let u = if be {
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                } else {
                    u32::from_le_bytes([c[0], c[1], c[2], c[3]])
                };
                char::from_u32(u).ok_or_else(|| format!("invalid UTF-32 code point {u:#x}"))
            })
            .collect()
    };
    if let Some(r) = b.strip_prefix(b"\x00\x00\xfe\xff") {
        return utf32(r, true);
    }
    if let Some(r) = b.strip_prefix(b"\xff\xfe\x00\x00") {
        return utf32(r, false);
    }
    if let Some(r) = b.strip_prefix(b"\xfe\xff") {
        return utf16(r, true);
    }
    if let Some(r) = b.strip_prefix(b"\xff\xfe") {
        return utf16(r, false);
    }
    let b = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b);
    if b.len() >= 4 {
        if b[0] == 0 {
            return if b[1] != 0 {
                utf16(b, true)
            } else {
                utf32(b, true)
            };
        }
        if b[1] == 0 {
            return if b[2] != 0 || b[3] != 0 {
                utf16(b, false)
            } else {
                utf32(b, false)
            };
        }
    }
    String::from_utf8(b.to_vec()).map_err(|e| format!("invalid UTF-8: {e}"))
}

/// Replaces `NaN`, `Infinity` and `-Infinity` outside strings with `null`.
fn replace_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_str = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if c == '"' {
            in_str = true;
        }
        let mut matched = false;
        for tok in ["-Infinity", "Infinity", "NaN"] {
            if rest.starts_with(tok) {
                out.push_str("null");
                rest = &rest[tok.len()..];
                matched = true;
                break;
            }
        }
        if !matched {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// Walks a parsed configuration.
pub fn analyze_config(root: &Value, limits: &KerasLimits) -> ConfigAnalysis {
    let mut w = Walker {
        limits,
        values: 0,
        path: Vec::new(),
        layers: Vec::new(),
        out: ConfigAnalysis {
            model_class: root
                .get("class_name")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..Default::default()
        },
    };
    w.value(root, 0);
    w.out
}

enum Seg<'v> {
    Key(&'v str),
    Index(usize),
}

struct Walker<'l, 'v> {
    limits: &'l KerasLimits,
    values: usize,
    path: Vec<Seg<'v>>,
    /// Names of the enclosing objects.
    layers: Vec<Option<&'v str>>,
    out: ConfigAnalysis,
}

impl<'v> Walker<'_, 'v> {
    fn stopped(&self) -> bool {
        self.out.truncated.is_some()
    }

    fn stop(&mut self, why: String) {
        if self.out.truncated.is_none() {
            self.out.truncated = Some(why);
        }
    }

    fn path_string(&self, extra: &[&str]) -> String {
        let mut s = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        for k in extra {
            if !s.is_empty() {
                s.push('.');
            }
            s.push_str(k);
        }
        if s.is_empty() { "(top)".into() } else { s }
    }

    fn emit(&mut self, extra: &[&str], kind: ItemKind) {
        if self.out.items.len() >= self.limits.max_items {
            self.stop(format!("more than {} findings", self.limits.max_items));
            return;
        }
        let layer = self
            .layers
            .iter()
            .rev()
            .find_map(|l| *l)
            .map(str::to_string);
        let path = self.path_string(extra);
        self.out.items.push(ConfigItem { path, layer, kind });
    }

    fn value(&mut self, v: &'v Value, depth: usize) {
        if self.stopped() {
            return;
        }
        self.values += 1;
        if self.values > self.limits.max_values {
            self.stop(format!("more than {} JSON values", self.limits.max_values));
            return;
        }
        if depth > self.limits.max_depth {
            self.stop(format!("nested deeper than {}", self.limits.max_depth));
            return;
        }
        match v {
            Value::String(s) => self.string(s),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    self.path.push(Seg::Index(i));
                    self.value(x, depth + 1);
                    self.path.pop();
                    if self.stopped() {
                        return;
                    }
                }
            }
            Value::Object(m) => {
                let object = m.get("class_name").and_then(Value::as_str).is_some();
                let name = object.then(|| {
                    m.get("config")
                        .and_then(|c| c.get("name"))
                        .or_else(|| m.get("name"))
                        .and_then(Value::as_str)
                });
                self.layers.push(name.flatten());
                if object {
                    self.out.objects += 1;
                    self.object(v);
                }
                if let Some(Value::Bool(false)) = m.get("safe_mode") {
                    self.emit(
                        &["safe_mode"],
                        ItemKind::SafeModeOff {
                            evidence: "\"safe_mode\": false".into(),
                        },
                    );
                }
                for (k, x) in m {
                    self.path.push(Seg::Key(k));
                    self.value(x, depth + 1);
                    self.path.pop();
                    if self.stopped() {
                        break;
                    }
                }
                self.layers.pop();
            }
            _ => {}
        }
    }

    fn string(&mut self, s: &str) {
        for needle in ["enable_unsafe_deserialization", "safe_mode_saving"] {
            if s.contains(needle) {
                // Already reported as the function reference this string names.
                let here = self.path_string(&[]);
                if self.out.items.last().is_some_and(|i| i.path == here) {
                    return;
                }
                self.emit(
                    &[],
                    ItemKind::SafeModeOff {
                        evidence: s.chars().take(200).collect(),
                    },
                );
                return;
            }
        }
    }

    /// A dict with `class_name`: what the loader resolves for it.
    fn object(&mut self, v: &'v Value) {
        let class_name = v.get("class_name").and_then(Value::as_str).unwrap_or("");
        let config = v.get("config");
        let module = v.get("module").and_then(Value::as_str);
        let registered = v.get("registered_name").and_then(Value::as_str);

        if class_name == "__lambda__" {
            // Lambda layers write `config.code`; serialization_lib's own form is
            // `config.value`: `[code, defaults, closure]` or the code string.
            match (
                config.and_then(|c| c.get("code")),
                config.and_then(|c| c.get("value")),
            ) {
                (Some(code), _) => self.bytecode("config.code", Some(code)),
                (None, Some(Value::Array(a))) => self.bytecode("config.value[0]", a.first()),
                (None, value) => self.bytecode("config.value", value),
            }
            return;
        }
        if DATA_CLASSES.contains(&class_name) {
            return;
        }
        if class_name == "__typespec__" {
            if let Some(spec) = v.get("spec_name").and_then(Value::as_str) {
                self.reference(module, spec, registered, false, &["spec_name"]);
            }
            return;
        }
        if class_name == "function" {
            let name = config.and_then(Value::as_str).unwrap_or("");
            self.reference(module, name, registered, true, &["config"]);
        } else {
            self.reference(module, class_name, registered, false, &["class_name"]);
        }

        let Some(cfg) = config.and_then(Value::as_object) else {
            return;
        };
        match class_name {
            "Lambda" => self.legacy_lambda(cfg),
            "TFSMLayer" => {
                let value = cfg
                    .get("filepath")
                    .map(|f| match f {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .unwrap_or_default();
                self.emit(
                    &["config", "filepath"],
                    ItemKind::ExternalResource {
                        class_name: class_name.into(),
                        field: "filepath".into(),
                        remote: is_remote_path(&value),
                        value,
                    },
                );
            }
            "TorchModuleWrapper" => {
                if let Some(Value::String(b64)) = cfg.get("module") {
                    let (data, error) = match lenient_base64(b64, self.limits.max_payload) {
                        Ok(d) => (d, None),
                        Err(e) => (Vec::new(), Some(e)),
                    };
                    self.emit(
                        &["config", "module"],
                        ItemKind::EmbeddedPayload {
                            class_name: class_name.into(),
                            field: "module".into(),
                            loader: "torch.load(weights_only=False)",
                            data,
                            error,
                        },
                    );
                }
            }
            _ => {}
        }
        for field in PATH_FIELDS {
            if class_name == "TFSMLayer" && *field == "filepath" {
                continue;
            }
            if let Some(Value::String(s)) = cfg.get(*field)
                && looks_like_path(s)
            {
                self.emit(
                    &["config", field],
                    ItemKind::ExternalResource {
                        class_name: class_name.into(),
                        field: (*field).into(),
                        value: s.chars().take(300).collect(),
                        remote: is_remote_path(s),
                    },
                );
            }
        }
    }

    /// tf.keras / Keras 2 `Lambda` layers: `function` as `[code, defaults, closure]`, as
    /// a code string with `function_type: "lambda"`, or as a function name looked up in
    /// `module`. The same for `output_shape`.
    fn legacy_lambda(&mut self, cfg: &'v serde_json::Map<String, Value>) {
        for (field, type_field, module_field) in [
            ("function", "function_type", "module"),
            ("output_shape", "output_shape_type", "output_shape_module"),
        ] {
            let ty = cfg.get(type_field).and_then(Value::as_str);
            match cfg.get(field) {
                Some(Value::Array(a)) if field == "function" || ty == Some("lambda") => {
                    if matches!(a.first(), Some(Value::String(_))) {
                        self.path.push(Seg::Key("config"));
                        self.path.push(Seg::Key(field));
                        self.bytecode("[0]", a.first());
                        self.path.pop();
                        self.path.pop();
                    }
                }
                Some(s @ Value::String(_)) if ty == Some("lambda") => {
                    self.path.push(Seg::Key("config"));
                    self.bytecode(field, Some(s));
                    self.path.pop();
                }
                Some(Value::String(name)) if ty == Some("function") => {
                    let module = cfg.get(module_field).and_then(Value::as_str);
                    self.reference(module, name, None, true, &["config", field]);
                }
                _ => {}
            }
        }
    }

    fn bytecode(&mut self, field: &str, code: Option<&Value>) {
        let Some(Value::String(s)) = code else {
            if let Some(other) = code {
                let summary = Err(format!("code is not a string: {}", short(other)));
                self.emit(
                    &[field],
                    ItemKind::Bytecode(Bytecode {
                        encoded_len: 0,
                        encoding: "base64",
                        raw: Vec::new(),
                        summary,
                    }),
                );
            }
            return;
        };
        // python_utils.func_load: base64 first, else the string's raw_unicode_escape bytes.
        let (encoding, raw) = match lenient_base64(s, self.limits.max_payload) {
            Ok(b) => ("base64", b),
            _ => (
                "raw",
                s.chars()
                    .take(self.limits.max_payload)
                    .map(|c| if (c as u32) < 256 { c as u8 } else { b'?' })
                    .collect(),
            ),
        };
        let summary = marshal::summarize_code(&raw).map_err(|e| e.to_string());
        self.emit(
            &[field],
            ItemKind::Bytecode(Bytecode {
                encoded_len: s.len(),
                encoding,
                raw,
                summary,
            }),
        );
    }

    fn reference(
        &mut self,
        module: Option<&str>,
        name: &str,
        registered: Option<&str>,
        function: bool,
        extra: &[&str],
    ) {
        let kind = classify(module, name, registered, function);
        if let Some(kind) = kind {
            self.emit(
                extra,
                ItemKind::Reference(ObjectRef {
                    kind,
                    module: module.map(str::to_string),
                    name: name.chars().take(300).collect(),
                    registered_name: registered.map(|r| r.chars().take(300).collect()),
                    function,
                }),
            );
        }
    }
}

/// How the loader resolves `module` + `name`; `None` for Keras's own modelling objects.
fn classify(
    module: Option<&str>,
    name: &str,
    registered: Option<&str>,
    function: bool,
) -> Option<RefKind> {
    let custom = |s: &str| is_registered_custom(s) && !is_keras_alias(s);
    let custom_name = custom(name) || registered.is_some_and(custom);
    match module {
        Some("builtins") => {
            if PYTHON_BUILTINS.contains(&name) {
                Some(RefKind::PythonBuiltin)
            } else if custom_name {
                Some(RefKind::Custom)
            } else if function {
                // Keras's built-in activations, losses and metrics, found by name.
                None
            } else {
                Some(RefKind::Foreign)
            }
        }
        Some(m) if !m.is_empty() && is_keras_module(m) => {
            let gadget = if function {
                is_gadget(m, name)
            } else {
                GADGET_FUNCTIONS.contains(&name)
            };
            gadget.then_some(RefKind::KerasGadget)
        }
        Some(m) if !m.is_empty() => Some(if custom_name {
            RefKind::Custom
        } else {
            RefKind::Foreign
        }),
        // No module: Keras's own registry, or a custom object the user must supply.
        _ => {
            if custom_name {
                Some(RefKind::Custom)
            } else if function
                || name.is_empty()
                || names::KERAS_CLASSES.binary_search(&name).is_ok()
                || is_keras_alias(name)
            {
                None
            } else {
                Some(RefKind::Custom)
            }
        }
    }
}

/// `Custom>Adam`, `keras>Adam`: names tf.keras gave its own classes in the registry.
fn is_keras_alias(s: &str) -> bool {
    match s.split_once('>') {
        Some((pkg, rest)) => {
            matches!(pkg, "Custom" | "keras" | "Keras" | "tf_keras")
                && names::KERAS_CLASSES.binary_search(&rest).is_ok()
        }
        None => false,
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests;
