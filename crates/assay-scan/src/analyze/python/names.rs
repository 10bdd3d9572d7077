//! What resolved names and literals mean: the tables of dangerous callables, decoders,
//! credential paths and file mutators the Python analysis judges by.

use super::Behaviour;
use assay_report::Severity;

/// Builtins whose bare names are resolved (when not shadowed) to `builtins.NAME`.
pub(super) const BUILTINS: &[&str] = &[
    "eval",
    "exec",
    "execfile",
    "compile",
    "__import__",
    "open",
    "getattr",
    "setattr",
    "globals",
    "locals",
    "vars",
    "bytes",
    "bytearray",
    "chr",
    "input",
    "breakpoint",
];

/// Modules whose attributes chosen by a computed name are as dangerous as the module.
pub(super) const SENSITIVE_MODULES: &[&str] = &[
    "os",
    "subprocess",
    "builtins",
    "sys",
    "importlib",
    "socket",
    "ctypes",
    "pty",
    "shutil",
    "marshal",
    "runpy",
    "code",
    "posix",
    "nt",
];

/// `posix`/`nt` are what `os` re-exports; `__builtin__` is Python 2's `builtins`.
pub(super) fn normalise(q: &str) -> String {
    for (from, to) in [
        ("posix.", "os."),
        ("nt.", "os."),
        ("__builtin__.", "builtins."),
        ("urllib2.", "urllib.request."),
    ] {
        if let Some(rest) = q.strip_prefix(from) {
            return format!("{to}{rest}");
        }
    }
    match q {
        "posix" | "nt" => "os".into(),
        "__builtin__" => "builtins".into(),
        _ => q.to_string(),
    }
}

pub(super) const DECODERS: &[&str] = &[
    "base64.b64decode",
    "base64.b32decode",
    "base64.b32hexdecode",
    "base64.b16decode",
    "base64.a85decode",
    "base64.b85decode",
    "base64.z85decode",
    "base64.decodebytes",
    "base64.decodestring",
    "base64.urlsafe_b64decode",
    "base64.standard_b64decode",
    "binascii.a2b_base64",
    "binascii.a2b_hex",
    "binascii.unhexlify",
    "binascii.a2b_uu",
    "binascii.a2b_qp",
    "codecs.decode",
    "zlib.decompress",
    "gzip.decompress",
    "bz2.decompress",
    "lzma.decompress",
    "marshal.loads",
    "builtins.bytes.fromhex",
    "builtins.bytearray.fromhex",
    "builtins.chr",
];

/// `.decode(…)` codecs that de-obfuscate rather than merely decode text.
pub(super) const OBFUSCATING_CODECS: &[&str] = &[
    "rot13", "rot_13", "base64", "base_64", "hex", "zlib", "zip", "bz2", "uu",
];

/// What a resolved name does, when it is dangerous.
pub(super) fn classify(q: &str) -> Option<(Behaviour, Severity)> {
    use Behaviour as B;
    use Severity as S;
    const PROCESS: &[&str] = &[
        "os.system",
        "os.popen",
        "os.popen2",
        "os.popen3",
        "os.popen4",
        "os.startfile",
        "os.posix_spawn",
        "os.posix_spawnp",
        "os.fork",
        "os.forkpty",
        "pty.spawn",
        "pty.fork",
        "platform.popen",
        "commands.getoutput",
        "commands.getstatusoutput",
        "asyncio.create_subprocess_exec",
        "asyncio.create_subprocess_shell",
        "asyncio.subprocess.create_subprocess_exec",
        "asyncio.subprocess.create_subprocess_shell",
        "pexpect.spawn",
        "pexpect.run",
        "_posixsubprocess.fork_exec",
        "multiprocessing.util.spawnv_passfds",
    ];
    const SUBPROCESS_HARMLESS: &[&str] = &[
        "PIPE",
        "DEVNULL",
        "STDOUT",
        "CalledProcessError",
        "TimeoutExpired",
        "SubprocessError",
        "CompletedProcess",
    ];
    const DYNAMIC: &[&str] = &[
        "builtins.eval",
        "builtins.exec",
        "builtins.execfile",
        "builtins.compile",
        "builtins.__import__",
        "runpy.run_path",
        "runpy.run_module",
        "runpy._run_code",
        "runpy._run_module_code",
        "code.interact",
        "code.InteractiveInterpreter",
        "code.InteractiveConsole",
        "codeop.compile_command",
        "types.CodeType",
        "types.FunctionType",
        "imp.load_source",
        "imp.load_module",
        "imp.load_compiled",
        "importlib.machinery.SourceFileLoader",
        "importlib.machinery.SourcelessFileLoader",
        "importlib.util.spec_from_file_location",
        "importlib.util.spec_from_loader",
        "zipimport.zipimporter",
    ];
    const DECODE_EXEC: &[&str] = &["marshal.loads", "marshal.load"];
    const NETWORK_MODULES: &[&str] = &[
        "socket.",
        "requests.",
        "httpx.",
        "http.client.",
        "httplib.",
        "aiohttp.",
        "ftplib.",
        "smtplib.",
        "poplib.",
        "imaplib.",
        "telnetlib.",
        "paramiko.",
        "urllib3.",
        "pycurl.",
        "websocket.",
        "websockets.",
        "xmlrpc.client.",
        "xmlrpclib.",
        "socketserver.",
        "http.server.",
        "grpc.",
        "zmq.",
        "dns.resolver.",
        "scapy.",
    ];
    const NETWORK_HARMLESS: &[&str] = &[
        "socket.error",
        "socket.timeout",
        "socket.gaierror",
        "socket.herror",
        "socket.gethostname",
        "socket.getfqdn",
        "requests.exceptions",
        "requests.codes",
        "requests.status_codes",
        "requests.structures",
        "requests.utils",
        "requests.compat",
        "requests.HTTPError",
        "requests.RequestException",
        "requests.ConnectionError",
        "requests.Timeout",
        "httpx.HTTPError",
        "httpx.HTTPStatusError",
        "httpx.RequestError",
        "urllib3.exceptions",
        "urllib3.disable_warnings",
        "aiohttp.ClientError",
    ];
    const NETWORK: &[&str] = &[
        "urllib.request.urlopen",
        "urllib.request.Request",
        "urllib.request.build_opener",
        "urllib.request.OpenerDirector",
        "urllib.request.install_opener",
        "urllib.urlopen",
        "asyncio.open_connection",
        "asyncio.start_server",
        "asyncio.open_unix_connection",
        "ssl.wrap_socket",
        "webbrowser.open",
        "webbrowser.open_new",
    ];
    const DOWNLOAD: &[&str] = &[
        "huggingface_hub.hf_hub_download",
        "huggingface_hub.snapshot_download",
        "huggingface_hub.cached_download",
        "huggingface_hub.file_download.hf_hub_download",
        "huggingface_hub._snapshot_download.snapshot_download",
        "huggingface_hub.hf_api.HfApi",
        "huggingface_hub.HfApi",
        "torch.hub.load",
        "torch.hub.load_state_dict_from_url",
        "torch.hub.download_url_to_file",
        "torch.utils.model_zoo.load_url",
        "urllib.request.urlretrieve",
        "urllib.urlretrieve",
        "wget.download",
        "gdown.download",
        "pip.main",
        "pip._internal.main",
        "pip._internal.cli.main.main",
        "setuptools.command.easy_install.main",
    ];
    const CREDENTIALS: &[&str] = &[
        "huggingface_hub.get_token",
        "huggingface_hub.HfFolder.get_token",
        "huggingface_hub.HfFolder.path_token",
        "huggingface_hub.utils.get_token",
        "huggingface_hub.constants.HF_TOKEN_PATH",
        "huggingface_hub.constants.HF_STORED_TOKENS_PATH",
        "huggingface_hub.whoami",
        "keyring.get_password",
        "keyring.get_credential",
        "netrc.netrc",
        "browser_cookie3.load",
        "browser_cookie3.chrome",
        "browser_cookie3.firefox",
    ];
    const HOME: &[&str] = &[
        "os.path.expanduser",
        "pathlib.Path.home",
        "pathlib.PosixPath.home",
        "pathlib.WindowsPath.home",
        "os.getlogin",
        "pwd.getpwuid",
        "pwd.getpwnam",
    ];
    const NATIVE: &[&str] = &[
        "ctypes.CDLL",
        "ctypes.WinDLL",
        "ctypes.OleDLL",
        "ctypes.PyDLL",
        "ctypes.LibraryLoader",
        "ctypes.pythonapi",
        "ctypes.memmove",
        "ctypes.string_at",
        "_ctypes.dlopen",
        "_ctypes.LoadLibrary",
        "cffi.FFI",
        "torch.ops.load_library",
        "torch.classes.load_library",
        "torch.utils.cpp_extension.load",
        "torch.utils.cpp_extension.load_inline",
        "tensorflow.load_op_library",
        "tensorflow.load_library",
    ];
    const NATIVE_PREFIXES: &[&str] = &[
        "ctypes.cdll",
        "ctypes.windll",
        "ctypes.oledll",
        "ctypes.pydll",
        "ctypes.CDLL.",
    ];
    let last = q.rsplit('.').next().unwrap_or(q);
    if PROCESS.contains(&q)
        || ((q.starts_with("os.exec") || q.starts_with("os.spawn"))
            && !q.contains("..")
            && q.matches('.').count() == 1)
        || (q.starts_with("subprocess.")
            && q.matches('.').count() == 1
            && !SUBPROCESS_HARMLESS.contains(&last))
    {
        return Some((B::ProcessExecution, S::Critical));
    }
    if DECODE_EXEC.contains(&q) {
        return Some((B::DecodeAndExecute, S::Critical));
    }
    if q == "importlib.import_module" || q == "importlib.__import__" {
        // Only a computed module name is a finding; see `Detector::call`.
        return None;
    }
    if DYNAMIC.contains(&q) {
        return Some((B::DynamicCode, S::Critical));
    }
    if DOWNLOAD.contains(&q) {
        return Some((B::Download, S::Critical));
    }
    if CREDENTIALS.contains(&q) {
        return Some((B::Credentials, S::Critical));
    }
    if NATIVE.contains(&q) || NATIVE_PREFIXES.iter().any(|p| q.starts_with(p)) {
        return Some((B::NativeLibrary, S::Critical));
    }
    if NETWORK.contains(&q)
        || (NETWORK_MODULES.iter().any(|m| q.starts_with(m))
            && !NETWORK_HARMLESS
                .iter()
                .any(|h| q == *h || q.starts_with(&format!("{h}.")))
            // Constants such as socket.AF_INET say nothing by themselves.
            && !last.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()))
    {
        return Some((B::Network, S::Critical));
    }
    if HOME.contains(&q) {
        return Some((B::HomeDirectory, S::Medium));
    }
    None
}

/// Paths of credentials and secrets a model has no business reading.
pub(super) fn credential_path(s: &str) -> Option<&'static str> {
    const EXACT: &[(&str, &str)] = &[
        (".ssh", "~/.ssh"),
        (".aws", "~/.aws"),
        (".netrc", "~/.netrc"),
        ("_netrc", "~/.netrc"),
        (".git-credentials", "~/.git-credentials"),
        (".pypirc", "~/.pypirc"),
        (".kube", "~/.kube"),
        (".docker", "~/.docker"),
        (".gnupg", "~/.gnupg"),
        (".azure", "~/.azure"),
        ("id_rsa", "SSH private key"),
        ("id_ed25519", "SSH private key"),
        ("id_ecdsa", "SSH private key"),
        ("id_dsa", "SSH private key"),
    ];
    const CONTAINS: &[(&str, &str)] = &[
        ("/.ssh", "~/.ssh"),
        (".ssh/", "~/.ssh"),
        ("/id_rsa", "SSH private key"),
        ("/id_ed25519", "SSH private key"),
        ("/id_ecdsa", "SSH private key"),
        (".aws/credentials", "~/.aws/credentials"),
        (".aws/config", "~/.aws/config"),
        ("~/.aws", "~/.aws"),
        ("/.netrc", "~/.netrc"),
        ("~/.netrc", "~/.netrc"),
        (".git-credentials", "~/.git-credentials"),
        ("huggingface/token", "Hugging Face token"),
        ("huggingface/stored_tokens", "Hugging Face token"),
        (".huggingface/token", "Hugging Face token"),
        (".docker/config.json", "~/.docker/config.json"),
        (".kube/config", "~/.kube/config"),
        ("/.pypirc", "~/.pypirc"),
        ("gcloud/credentials", "gcloud credentials"),
        ("gcloud/access_tokens", "gcloud credentials"),
        ("application_default_credentials.json", "gcloud credentials"),
        (".azure/", "~/.azure"),
        ("/etc/shadow", "/etc/shadow"),
        ("/etc/passwd", "/etc/passwd"),
        (".bash_history", "shell history"),
        (".zsh_history", "shell history"),
        (".gnupg/", "~/.gnupg"),
    ];
    if s.len() > 4096 {
        return None;
    }
    let n = s.replace('\\', "/").to_ascii_lowercase();
    let n = n.trim();
    EXACT
        .iter()
        .find(|(p, _)| n == *p)
        .or_else(|| CONTAINS.iter().find(|(p, _)| n.contains(p)))
        .map(|(_, what)| *what)
}

/// Environment variables that hold secrets by name.
pub(super) fn secret_env_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    if n.starts_with("TOKENIZERS_") {
        return false;
    }
    [
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
        "AUTH",
    ]
    .iter()
    .any(|w| n.contains(w))
}

pub(super) fn outside_literal(s: &str) -> Option<(String, bool)> {
    let t = s.trim();
    if matches!(
        t,
        "/dev/null" | "/dev/stdout" | "/dev/stderr" | "nul" | "NUL"
    ) {
        return None;
    }
    let tmp = ["/tmp", "/var/tmp", "/dev/shm"]
        .iter()
        .any(|p| t == *p || t.starts_with(&format!("{p}/")));
    let absolute = t.starts_with('/')
        || t.starts_with('\\')
        || (t.len() > 2 && t.as_bytes()[1] == b':' && t.as_bytes()[0].is_ascii_alphabetic());
    let home = t.starts_with('~');
    let up = t.replace('\\', "/").split('/').any(|c| c == "..");
    if absolute || home || up {
        let shown: String = t.chars().take(80).collect();
        Some((shown, tmp))
    } else {
        None
    }
}

/// Functions that write, move, delete or change files given as their path arguments.
pub(super) const FILE_MUTATORS: &[&str] = &[
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "os.removedirs",
    "os.rename",
    "os.renames",
    "os.replace",
    "os.makedirs",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.utime",
    "shutil.copy",
    "shutil.copy2",
    "shutil.copyfile",
    "shutil.copytree",
    "shutil.move",
    "shutil.rmtree",
    "shutil.chown",
    "shutil.unpack_archive",
];

/// `pathlib.Path` methods that write or delete.
pub(super) const PATH_MUTATORS: &[&str] = &[
    "write_text",
    "write_bytes",
    "touch",
    "mkdir",
    "unlink",
    "rmdir",
    "rename",
    "replace",
    "symlink_to",
    "hardlink_to",
    "chmod",
];
