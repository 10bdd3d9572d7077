//! Default deny for pickle callables: an allowlist of callables and classes known to be
//! harmless when a pickle calls them, a denylist of known-dangerous ones (made
//! `critical`), and everything else unknown (at least `high`).
//!
//! Names are judged after canonicalisation: Python 2 names are already mapped by the
//! parser, private C modules are folded into their public names (`posix` → `os`,
//! `_pickle` → `pickle`), and dotted names are judged on every suffix, so
//! `pathlib.os.system` is judged as `os.system` too.

use assay_formats::pickle::CallKind;

/// Why a callable is dangerous, in the user's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Danger {
    CodeExecution,
    Process,
    FileSystem,
    Network,
    ImportMachinery,
    Introspection,
    Deserialization,
    CodeObject,
    Installer,
}

impl Danger {
    pub fn describe(self) -> &'static str {
        match self {
            Danger::CodeExecution => "runs arbitrary Python code",
            Danger::Process => "spawns a process or runs a shell command",
            Danger::FileSystem => "reads or writes files",
            Danger::Network => "opens network connections",
            Danger::ImportMachinery => "imports modules or resolves arbitrary names",
            Danger::Introspection => {
                "reaches arbitrary attributes or calls (a code-execution gadget)"
            }
            Danger::Deserialization => "deserializes another payload",
            Danger::CodeObject => "builds functions from code objects",
            Danger::Installer => "installs packages",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    Safe,
    Dangerous(Danger),
    Unknown,
}

/// Module aliases folded before matching.
fn fold_module(m: &str) -> &str {
    match m {
        "posix" | "nt" | "_os" => "os",
        "posixpath" | "ntpath" | "genericpath" => "os.path",
        "_pickle" | "cPickle" | "copy_reg" => {
            if m == "copy_reg" {
                "copyreg"
            } else {
                "pickle"
            }
        }
        "_operator" => "operator",
        "_functools" => "functools",
        "_io" => "io",
        "_codecs" => "codecs",
        "_socket" => "socket",
        "__builtin__" | "__builtins__" => "builtins",
        "_subprocess" | "_posixsubprocess" | "_winapi" => "subprocess",
        "_thread" | "thread" => "threading",
        "_ctypes" => "ctypes",
        "_sqlite3" => "sqlite3",
        "_marshal" => "marshal",
        "_imp" => "imp",
        m => m,
    }
}

/// Whole modules (and their submodules) whose every callable is dangerous.
const DANGEROUS_MODULES: &[(&str, Danger)] = &[
    ("os", Danger::Process),
    ("subprocess", Danger::Process),
    ("pty", Danger::Process),
    ("multiprocessing", Danger::Process),
    ("asyncio", Danger::Process),
    ("concurrent", Danger::Process),
    ("signal", Danger::Process),
    ("threading", Danger::Process),
    ("platform", Danger::Process),
    ("_osx_support", Danger::Process),
    ("_aix_support", Danger::Process),
    ("shutil", Danger::FileSystem),
    ("tempfile", Danger::FileSystem),
    ("glob", Danger::FileSystem),
    ("fileinput", Danger::FileSystem),
    ("zipfile", Danger::FileSystem),
    ("tarfile", Danger::FileSystem),
    ("zipimport", Danger::ImportMachinery),
    ("linecache", Danger::FileSystem),
    ("shelve", Danger::Deserialization),
    ("dbm", Danger::FileSystem),
    ("sqlite3", Danger::FileSystem),
    ("mmap", Danger::FileSystem),
    ("logging", Danger::FileSystem),
    ("socket", Danger::Network),
    ("ssl", Danger::Network),
    ("select", Danger::Network),
    ("selectors", Danger::Network),
    ("http", Danger::Network),
    ("urllib", Danger::Network),
    ("urllib2", Danger::Network),
    ("urllib3", Danger::Network),
    ("requests", Danger::Network),
    ("httpx", Danger::Network),
    ("aiohttp", Danger::Network),
    ("ftplib", Danger::Network),
    ("smtplib", Danger::Network),
    ("smtpd", Danger::Network),
    ("telnetlib", Danger::Network),
    ("poplib", Danger::Network),
    ("imaplib", Danger::Network),
    ("nntplib", Danger::Network),
    ("xmlrpc", Danger::Network),
    ("socketserver", Danger::Network),
    ("webbrowser", Danger::Network),
    ("huggingface_hub", Danger::Network),
    ("paramiko", Danger::Network),
    ("boto3", Danger::Network),
    ("botocore", Danger::Network),
    ("wget", Danger::Network),
    ("mailcap", Danger::Process),
    ("ctypes", Danger::CodeExecution),
    ("cffi", Danger::CodeExecution),
    ("code", Danger::CodeExecution),
    ("codeop", Danger::CodeExecution),
    ("runpy", Danger::CodeExecution),
    ("pdb", Danger::CodeExecution),
    ("bdb", Danger::CodeExecution),
    ("cProfile", Danger::CodeExecution),
    ("profile", Danger::CodeExecution),
    ("trace", Danger::CodeExecution),
    ("timeit", Danger::CodeExecution),
    ("doctest", Danger::CodeExecution),
    ("idlelib", Danger::CodeExecution),
    ("lib2to3", Danger::CodeExecution),
    ("test", Danger::CodeExecution),
    ("IPython", Danger::CodeExecution),
    ("jinja2", Danger::CodeExecution),
    ("pydoc", Danger::ImportMachinery),
    ("importlib", Danger::ImportMachinery),
    ("imp", Danger::ImportMachinery),
    ("pkgutil", Danger::ImportMachinery),
    ("sys", Danger::ImportMachinery),
    ("site", Danger::ImportMachinery),
    ("inspect", Danger::Introspection),
    ("gc", Danger::Introspection),
    ("types", Danger::CodeObject),
    ("marshal", Danger::CodeObject),
    ("dill", Danger::CodeObject),
    ("cloudpickle", Danger::CodeObject),
    ("pickle", Danger::Deserialization),
    ("joblib", Danger::Deserialization),
    ("yaml", Danger::Deserialization),
    ("pip", Danger::Installer),
    ("setuptools", Danger::Installer),
    ("distutils", Danger::Installer),
    ("ensurepip", Danger::Installer),
    ("venv", Danger::Installer),
    ("torch.hub", Danger::Network),
    ("torch.utils.cpp_extension", Danger::CodeExecution),
    ("torch._inductor", Danger::CodeExecution),
    ("torch._dynamo", Danger::CodeExecution),
    ("torch.distributed", Danger::Network),
    ("torch.package", Danger::CodeExecution),
    ("torch.utils.collect_env", Danger::Process),
    ("torch.utils.data.datapipes", Danger::FileSystem),
    (
        "torch.fx.experimental.symbolic_shapes",
        Danger::CodeExecution,
    ),
    ("numpy.testing", Danger::CodeExecution),
    ("numpy.f2py", Danger::Process),
    ("numpy.distutils", Danger::Process),
    ("numpy.ctypeslib", Danger::CodeExecution),
    ("keras.saving", Danger::Deserialization),
    ("sklearn.utils._testing", Danger::CodeExecution),
    ("sklearn.datasets", Danger::Network),
    ("sklearn.callback", Danger::Network),
    ("sklearn.externals", Danger::Deserialization),
    ("torch.utils.model_zoo", Danger::Network),
    ("torch.jit._serialization", Danger::Deserialization),
    ("torch.serialization", Danger::Deserialization),
    ("torch.fx", Danger::CodeExecution),
    ("torch.ao.quantization.fx", Danger::CodeExecution),
    ("torch.testing", Danger::CodeExecution),
    ("numpy.lib._npyio_impl", Danger::Deserialization),
    ("numpy.lib.npyio", Danger::Deserialization),
    ("numpy.lib._datasource", Danger::Network),
    ("numpy.lib.format", Danger::Deserialization),
    ("_pyio", Danger::FileSystem),
    ("io", Danger::FileSystem),
    ("_frozen_importlib", Danger::ImportMachinery),
    ("_frozen_importlib_external", Danger::ImportMachinery),
    ("wsgiref", Danger::Network),
    ("xml.sax", Danger::Network),
    ("xml.dom", Danger::Network),
    ("xml.etree", Danger::FileSystem),
    ("atexit", Danger::CodeExecution),
    ("sympy", Danger::CodeExecution),
    ("antigravity", Danger::Network),
    ("this", Danger::Process),
    ("__hello__", Danger::Process),
    ("__phello__", Danger::Process),
    ("turtledemo", Danger::Process),
    ("tkinter", Danger::Process),
    ("turtle", Danger::Process),
    ("imaplib", Danger::Network),
    ("mailbox", Danger::FileSystem),
    ("filecmp", Danger::FileSystem),
    ("cgi", Danger::Process),
    ("cgitb", Danger::FileSystem),
    ("_sqlite3", Danger::FileSystem),
    ("readline", Danger::FileSystem),
    ("rlcompleter", Danger::CodeExecution),
    ("pickletools", Danger::Deserialization),
    ("copy", Danger::Introspection),
    ("weakref", Danger::Introspection),
    ("contextlib", Danger::Introspection),
    ("dataclasses", Danger::CodeExecution),
    ("ast", Danger::CodeExecution),
    ("dis", Danger::CodeObject),
    ("opcode", Danger::CodeObject),
    ("numexpr", Danger::CodeExecution),
    ("pandas.io", Danger::FileSystem),
    ("tensorflow.io", Danger::FileSystem),
];

/// Individual dangerous callables in otherwise ordinary modules.
const DANGEROUS_NAMES: &[(&str, Danger)] = &[
    ("builtins.eval", Danger::CodeExecution),
    ("builtins.exec", Danger::CodeExecution),
    ("builtins.execfile", Danger::CodeExecution),
    ("builtins.compile", Danger::CodeExecution),
    ("builtins.open", Danger::FileSystem),
    ("builtins.file", Danger::FileSystem),
    ("builtins.input", Danger::Process),
    ("builtins.breakpoint", Danger::CodeExecution),
    ("builtins.help", Danger::Process),
    ("builtins.exit", Danger::Process),
    ("builtins.quit", Danger::Process),
    ("builtins.__import__", Danger::ImportMachinery),
    ("builtins.reload", Danger::ImportMachinery),
    ("builtins.getattr", Danger::Introspection),
    ("builtins.setattr", Danger::Introspection),
    ("builtins.delattr", Danger::Introspection),
    ("builtins.globals", Danger::Introspection),
    ("builtins.locals", Danger::Introspection),
    ("builtins.vars", Danger::Introspection),
    ("builtins.dir", Danger::Introspection),
    ("builtins.type", Danger::Introspection),
    ("builtins.super", Danger::Introspection),
    ("builtins.classmethod", Danger::Introspection),
    ("builtins.staticmethod", Danger::Introspection),
    ("builtins.property", Danger::Introspection),
    ("builtins.apply", Danger::Introspection),
    ("builtins.map", Danger::Introspection),
    ("builtins.filter", Danger::Introspection),
    ("builtins.memoryview", Danger::Introspection),
    ("builtins.object.__subclasses__", Danger::Introspection),
    ("builtins.print", Danger::FileSystem),
    ("builtins.__build_class__", Danger::Introspection),
    ("string.Formatter", Danger::Introspection),
    ("string.Template", Danger::Introspection),
    ("pathlib.Path", Danger::FileSystem),
    ("pandas.eval", Danger::CodeExecution),
    (
        "numpy.random._pickle.__generator_ctor.__call__",
        Danger::Introspection,
    ),
    ("builtins.__loader__", Danger::ImportMachinery),
    ("builtins.__spec__", Danger::ImportMachinery),
    ("joblib.numpy_pickle.NDArrayWrapper", Danger::FileSystem),
    ("joblib.numpy_pickle.ZNDArrayWrapper", Danger::FileSystem),
    (
        "sklearn.externals.joblib.numpy_pickle.NDArrayWrapper",
        Danger::FileSystem,
    ),
    ("operator.attrgetter", Danger::Introspection),
    ("operator.methodcaller", Danger::Introspection),
    ("operator.itemgetter", Danger::Introspection),
    ("operator.call", Danger::Introspection),
    ("operator.getitem", Danger::Introspection),
    ("operator.setitem", Danger::Introspection),
    ("functools.partial", Danger::Introspection),
    ("functools.partialmethod", Danger::Introspection),
    ("functools.reduce", Danger::Introspection),
    ("functools.cached_property", Danger::Introspection),
    ("copyreg.add_extension", Danger::ImportMachinery),
    ("copyreg._reconstructor.__call__", Danger::Introspection),
    ("io.open", Danger::FileSystem),
    ("io.FileIO", Danger::FileSystem),
    ("io.open_code", Danger::FileSystem),
    ("codecs.open", Danger::FileSystem),
    ("pathlib.Path.write_text", Danger::FileSystem),
    ("pathlib.Path.write_bytes", Danger::FileSystem),
    ("uuid._get_command_stdout", Danger::Process),
    ("uuid._popen", Danger::Process),
    ("torch.load", Danger::Deserialization),
    ("torch.serialization.load", Danger::Deserialization),
    ("torch.jit.load", Danger::Deserialization),
    (
        "torch.jit.unsupported_tensor_ops.execWrapper",
        Danger::CodeExecution,
    ),
    (
        "torch.fx.graph_module._forward_from_src",
        Danger::CodeExecution,
    ),
    (
        "torch.fx.graph_module.reduce_graph_module",
        Danger::CodeExecution,
    ),
    (
        "torch.fx.graph_module.reduce_package_graph_module",
        Danger::CodeExecution,
    ),
    (
        "torch.fx.graph_module._exec_with_source",
        Danger::CodeExecution,
    ),
    ("torch.serialization._load", Danger::Deserialization),
    ("torch.storage._load_from_bytes", Danger::Deserialization),
    ("torch._utils._load_from_bytes", Danger::Deserialization),
    ("numpy.load", Danger::Deserialization),
    ("numpy.loads", Danger::Deserialization),
    ("numpy.lib.npyio.load", Danger::Deserialization),
    ("numpy.fromfile", Danger::FileSystem),
    ("numpy.save", Danger::FileSystem),
    ("numpy.savez", Danger::FileSystem),
    ("numpy.savetxt", Danger::FileSystem),
    ("numpy.loadtxt", Danger::FileSystem),
    ("numpy.genfromtxt", Danger::FileSystem),
    ("numpy.memmap", Danger::FileSystem),
    ("numpy.lib.format.open_memmap", Danger::FileSystem),
    ("pandas.read_pickle", Danger::Deserialization),
    ("pandas.read_csv", Danger::FileSystem),
    ("pandas.io.pickle.read_pickle", Danger::Deserialization),
    ("sklearn.datasets.fetch_openml", Danger::Network),
    ("keras.models.load_model", Danger::Deserialization),
    (
        "tensorflow.keras.models.load_model",
        Danger::Deserialization,
    ),
];

/// Callables that are harmless whatever their arguments (and higher-order rebuild
/// helpers, whose callable arguments the parser reports as separate calls).
const SAFE_NAMES: &[&str] = &[
    "collections.OrderedDict",
    "collections.defaultdict",
    "collections.Counter",
    "collections.deque",
    "collections.ChainMap",
    "builtins.set",
    "builtins.frozenset",
    "builtins.list",
    "builtins.dict",
    "builtins.tuple",
    "builtins.bytearray",
    "builtins.bytes",
    "builtins.complex",
    "builtins.float",
    "builtins.int",
    "builtins.str",
    "builtins.bool",
    "builtins.slice",
    "builtins.range",
    "builtins.object",
    "builtins.Ellipsis",
    "builtins.NotImplemented",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "fractions.Fraction",
    "uuid.UUID",
    "ipaddress.IPv4Address",
    "ipaddress.IPv6Address",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "copyreg._reconstructor",
    "copyreg.__newobj__",
    "copyreg.__newobj_ex__",
    "codecs.encode",
    "re._compile",
    "enum.Enum",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_sparse_csr_tensor",
    "torch._utils._rebuild_nested_tensor",
    "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor",
    "torch._utils._rebuild_qtensor",
    "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_xla_tensor",
    "torch._utils._rebuild_mps_tensor",
    "torch._utils._rebuild_wrapper_subclass",
    "torch._tensor._rebuild_from_type",
    "torch._tensor._rebuild_from_type_v2",
    "torch.Size",
    "torch.device",
    "torch.Tensor",
    "torch.nn.parameter.Parameter",
    "torch.nn.parameter.Buffer",
    "torch.serialization._get_layout",
    "torch.storage.UntypedStorage",
    "torch.storage.TypedStorage",
    "torch.storage._TypedStorage",
    "torch.jit._pickle.build_intlist",
    "torch.jit._pickle.build_tensorlist",
    "torch.jit._pickle.build_doublelist",
    "torch.jit._pickle.build_boollist",
    "torch.jit._pickle.restore_type_tag",
    "torch.jit._pickle.build_tensor_from_id",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "numpy.ma.core._mareconstruct",
    "numpy.dtype",
    "numpy.ndarray",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
    // Cython helpers that only do `cls.__new__(cls)` (the class is judged on its own).
    "sklearn.neighbors._kd_tree.newObj",
    "sklearn.neighbors._ball_tree.newObj",
    "sklearn.neighbors._binary_tree.newObj",
    "sklearn.metrics._dist_metrics.newObj",
    "sklearn.utils._typedefs.newObj",
];

/// Class (or function) names that are dangerous wherever they are re-exported from:
/// package allowlists never cover them.
const DANGEROUS_LAST_NAMES: &[&str] = &[
    "Popen",
    "Listener",
    "Client",
    "Connection",
    "Pipe",
    "Process",
    "Pool",
    "Thread",
    "Timer",
    "NamedTemporaryFile",
    "TemporaryFile",
    "SpooledTemporaryFile",
    "TemporaryDirectory",
    "GraphModule",
    "Graph",
    "Node",
    "Tracer",
    "Interpreter",
    "Transformer",
    "CodeGen",
    "SourceFileLoader",
    "FileIO",
    "BufferedWriter",
    "TextIOWrapper",
    "ZipFile",
    "TarFile",
    "Request",
    "Session",
    "HTTPConnection",
    "HTTPSConnection",
    "FTP",
    "SMTP",
    "Telnet",
    "socket",
    "SocketIO",
    "ThreadPoolExecutor",
    "ProcessPoolExecutor",
    "CDLL",
    "PyDLL",
    "LibraryLoader",
    "InteractiveInterpreter",
    "InteractiveConsole",
    "Pdb",
    "Bdb",
    "Profile",
    "Trace",
    "Template",
    "Formatter",
    "Unpickler",
    "Pickler",
    "Shelf",
    "ModuleType",
    "FunctionType",
    "CodeType",
    "LambdaType",
    "MethodType",
];

/// Packages whose *classes* are safe to instantiate for their state (`NEWOBJ`,
/// `copyreg` reconstruction) and, when called directly, only their classes and Cython
/// unpickle helpers are accepted.
const SAFE_CLASS_PACKAGES: &[&str] = &[
    "torch.nn.modules",
    "torch.nn.parameter",
    "torch.optim",
    "torch.nn.utils.parametrize",
    "torch.distributions",
    "sklearn",
    "xgboost",
    "lightgbm",
    "catboost",
    "scipy.sparse",
    "scipy.stats",
    "numpy",
    "__torch__",
    "transformers.models",
    "transformers.configuration_utils",
    "tokenizers",
];

fn in_package(qn: &str, pkg: &str) -> bool {
    qn.len() > pkg.len() && qn.starts_with(pkg) && qn.as_bytes()[pkg.len()] == b'.'
}

fn module_danger(module: &str) -> Option<Danger> {
    DANGEROUS_MODULES
        .iter()
        .find(|(m, _)| module == *m || in_package(module, m))
        .map(|(_, d)| *d)
}

fn name_danger(qn: &str) -> Option<Danger> {
    DANGEROUS_NAMES
        .iter()
        .find(|(n, _)| qn == *n || in_package(qn, n))
        .map(|(_, d)| *d)
}

/// The worst danger of any reading of `module` + dotted `name`. Python resolves a dotted
/// name by attribute access from the module, so `pathlib` + `os.system` reaches
/// `os.system` through `pathlib`'s import of `os`: every point where the *name* part
/// re-enters a module is a reading of its own.
fn danger_of_path(module: &str, name: &str) -> Option<Danger> {
    let full = if name.is_empty() {
        module.to_string()
    } else {
        format!("{module}.{name}")
    };
    if let Some(d) = name_danger(&full).or_else(|| module_danger(module)) {
        return Some(d);
    }
    let parts: Vec<&str> = full.split('.').collect();
    let first_name_part = module.split('.').count();
    for start in first_name_part..parts.len() {
        for end in start + 1..=parts.len() {
            let m = fold_module_owned(&parts[start..end].join("."));
            let rest = parts[end..].join(".");
            let candidate = if rest.is_empty() {
                m.clone()
            } else {
                format!("{m}.{rest}")
            };
            if let Some(d) = name_danger(&candidate).or_else(|| module_danger(&m)) {
                return Some(d);
            }
        }
    }
    None
}

fn fold_module_owned(m: &str) -> String {
    fold_module(m).to_string()
}

/// Judges `module.name` as reached by `kind`.
pub fn judge(module: &str, name: &str, kind: CallKind) -> Judgement {
    let module = fold_module(module);
    let qn = if name.is_empty() {
        module.to_string()
    } else {
        format!("{module}.{name}")
    };

    // Exact allowlist entries win over module-wide danger (`joblib.numpy_pickle.
    // NumpyArrayWrapper` lives in a module that also has `load`), never over a
    // dangerous exact name.
    if SAFE_NAMES.contains(&qn.as_str()) && name_danger(&qn).is_none() {
        return Judgement::Safe;
    }
    if let Some(d) = danger_of_path(module, name) {
        return Judgement::Dangerous(d);
    }
    let parts: Vec<&str> = qn.split('.').collect();
    if SAFE_NAMES.contains(&qn.as_str()) {
        return Judgement::Safe;
    }
    // torch.*Storage types and dtypes.
    if module == "torch"
        && (name.ends_with("Storage") || name.ends_with("Tensor"))
        && !name.contains('.')
    {
        return Judgement::Safe;
    }
    if name.contains('.') {
        // Attribute paths under an allowlisted global are not themselves allowlisted.
        return Judgement::Unknown;
    }
    let last = parts.last().copied().unwrap_or("");
    let looks_like_class = last
        .trim_start_matches('_')
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase());
    let pyx_helper = last.starts_with("__pyx_unpickle_");
    if DANGEROUS_LAST_NAMES.contains(&last) {
        return Judgement::Unknown;
    }
    if SAFE_CLASS_PACKAGES.iter().any(|p| in_package(&qn, p)) {
        match kind {
            CallKind::NewObj | CallKind::Reconstruct if looks_like_class || pyx_helper => {
                return Judgement::Safe;
            }
            CallKind::Reduce | CallKind::Instantiate | CallKind::Indirect
                if looks_like_class || pyx_helper =>
            {
                return Judgement::Safe;
            }
            _ => {}
        }
    }
    Judgement::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(m: &str, n: &str) -> Judgement {
        judge(m, n, CallKind::Reduce)
    }

    #[test]
    fn dangerous_names_and_modules() {
        assert_eq!(j("os", "system"), Judgement::Dangerous(Danger::Process));
        assert_eq!(j("posix", "system"), Judgement::Dangerous(Danger::Process));
        assert_eq!(j("nt", "system"), Judgement::Dangerous(Danger::Process));
        assert_eq!(
            j("subprocess", "Popen"),
            Judgement::Dangerous(Danger::Process)
        );
        assert_eq!(
            j("builtins", "eval"),
            Judgement::Dangerous(Danger::CodeExecution)
        );
        assert_eq!(
            j("__builtin__", "exec"),
            Judgement::Dangerous(Danger::CodeExecution)
        );
        assert_eq!(
            j("runpy", "_run_code"),
            Judgement::Dangerous(Danger::CodeExecution)
        );
        assert_eq!(
            j("urllib.request", "urlopen"),
            Judgement::Dangerous(Danger::Network)
        );
        assert_eq!(
            j("_pickle", "loads"),
            Judgement::Dangerous(Danger::Deserialization)
        );
        assert_eq!(
            j("torch.storage", "_load_from_bytes"),
            Judgement::Dangerous(Danger::Deserialization)
        );
    }

    #[test]
    fn dotted_names_are_judged_on_every_reading() {
        assert_eq!(
            j("pathlib", "os.system"),
            Judgement::Dangerous(Danger::Process)
        );
        assert_eq!(
            j("torch", "os.system"),
            Judgement::Dangerous(Danger::Process)
        );
        assert_eq!(
            j("builtins", "getattr"),
            Judgement::Dangerous(Danger::Introspection)
        );
        assert_eq!(j("collections", "OrderedDict.fromkeys"), Judgement::Unknown);
    }

    #[test]
    fn allowlisted_rebuild_functions_are_safe() {
        assert_eq!(j("torch._utils", "_rebuild_tensor_v2"), Judgement::Safe);
        assert_eq!(j("collections", "OrderedDict"), Judgement::Safe);
        assert_eq!(j("torch", "FloatStorage"), Judgement::Safe);
        assert_eq!(j("numpy.core.multiarray", "_reconstruct"), Judgement::Safe);
        assert_eq!(j("_codecs", "encode"), Judgement::Safe);
        assert_eq!(j("sklearn.tree._tree", "Tree"), Judgement::Safe);
        assert_eq!(
            j("sklearn._loss._loss", "__pyx_unpickle_CyHalfBinomialLoss"),
            Judgement::Safe
        );
    }

    #[test]
    fn package_allowlist_covers_classes_not_functions() {
        assert_eq!(
            judge(
                "sklearn.linear_model._logistic",
                "LogisticRegression",
                CallKind::NewObj
            ),
            Judgement::Safe
        );
        assert_eq!(
            j("sklearn.datasets", "fetch_openml"),
            Judgement::Dangerous(Danger::Network)
        );
        assert_eq!(j("sklearn.utils", "some_function"), Judgement::Unknown);
        assert_eq!(
            j("numpy.testing._private.utils", "runstring"),
            Judgement::Dangerous(Danger::CodeExecution)
        );
    }

    #[test]
    fn unknown_is_unknown() {
        assert_eq!(j("__main__", "Net"), Judgement::Unknown);
        assert_eq!(j("mylib", "helper"), Judgement::Unknown);
    }
}
