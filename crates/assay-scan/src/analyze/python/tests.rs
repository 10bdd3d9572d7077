use super::*;

fn hits(src: &str) -> Vec<(Behaviour, Severity, String)> {
    analyse(src)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| (h.behaviour, h.severity, h.what))
        .collect()
}

fn has(src: &str, b: Behaviour, what: &str) {
    let h = hits(src);
    assert!(
        h.iter().any(|(hb, _, w)| *hb == b && w.contains(what)),
        "{b:?} {what:?} not found in {h:?} for:\n{src}"
    );
}

#[test]
fn process_execution_through_aliases() {
    has(
        "import os\nos.system('echo pwned')",
        Behaviour::ProcessExecution,
        "os.system",
    );
    has(
        "import subprocess as sp\nsp.run(['echo'])",
        Behaviour::ProcessExecution,
        "subprocess.run",
    );
    has(
        "from os import system as s\ns('x')",
        Behaviour::ProcessExecution,
        "os.system",
    );
    has(
        "from subprocess import *\nPopen('x')",
        Behaviour::ProcessExecution,
        "subprocess.Popen",
    );
    has(
        "import os\nf = os.popen\nf('x')",
        Behaviour::ProcessExecution,
        "os.popen",
    );
    has(
        "getattr(__import__('os'), 'system')('x')",
        Behaviour::ProcessExecution,
        "os.system",
    );
    has(
        "import sys\nsys.modules['os'].system('x')",
        Behaviour::ProcessExecution,
        "os.system",
    );
    has(
        "import pty\npty.spawn('/bin/sh')",
        Behaviour::ProcessExecution,
        "pty.spawn",
    );
    has(
        "import os\nos.execv('/bin/sh', [])",
        Behaviour::ProcessExecution,
        "os.execv",
    );
    has(
        "import posix\nposix.system('x')",
        Behaviour::ProcessExecution,
        "os.system",
    );
    has(
        "name = 'system'\nimport os\ngetattr(os, name)('x')",
        Behaviour::ProcessExecution,
        "os.system",
    );
    has(
        "class M:\n    def __init__(self):\n        import subprocess\n        subprocess.check_output('id')\n",
        Behaviour::ProcessExecution,
        "subprocess.check_output",
    );
}

#[test]
fn context_says_when_it_runs() {
    let a =
        analyse("class M:\n    def __init__(self):\n        import os\n        os.system('x')\n")
            .unwrap();
    assert_eq!(a.hits[0].context, "in M.__init__");
    assert_eq!(a.hits[0].line, 4);
    assert_eq!(a.hits[0].evidence, "os.system('x')");
    let a = analyse("import os\nos.system('x')\n").unwrap();
    assert_eq!(a.hits[0].context, "at import time");
}

#[test]
fn dynamic_and_decoded_code() {
    has(
        "exec(payload)",
        Behaviour::DynamicCode,
        "exec of a computed string",
    );
    has(
        "import base64\nexec(base64.b64decode('cHJpbnQoMSk='))",
        Behaviour::DecodeAndExecute,
        "exec of decoded data",
    );
    has(
        "import base64, zlib\np = zlib.decompress(base64.b64decode(x))\nexec(p)",
        Behaviour::DecodeAndExecute,
        "exec",
    );
    has(
        "import codecs\neval(codecs.decode('cevag(1)', 'rot13'))",
        Behaviour::DecodeAndExecute,
        "eval",
    );
    has(
        "exec(''.join(chr(c) for c in [112]))",
        Behaviour::DecodeAndExecute,
        "exec",
    );
    has(
        "import marshal\nmarshal.loads(b'')",
        Behaviour::DecodeAndExecute,
        "marshal.loads",
    );
    has(
        "exec(\"import os; os.system('id')\")",
        Behaviour::ProcessExecution,
        "os.system",
    );
    has("__import__(name)", Behaviour::DynamicCode, "__import__");
    has(
        "import importlib\nimportlib.import_module(n)",
        Behaviour::DynamicCode,
        "import_module",
    );
    has(
        "import os\ngetattr(os, 'sys' + 'tem')('x')",
        Behaviour::DynamicCode,
        "getattr of os",
    );
    has("f = eval\nf(x)", Behaviour::DynamicCode, "builtins.eval");
    has("__builtins__['exec'](x)", Behaviour::DynamicCode, "exec");
}

#[test]
fn network_credentials_downloads_writes_native() {
    has(
        "import requests\nrequests.post('http://example.invalid', data=t)",
        Behaviour::Network,
        "requests.post",
    );
    has(
        "import socket\ns = socket.socket()",
        Behaviour::Network,
        "socket.socket",
    );
    has(
        "from urllib.request import urlopen\nurlopen(u)",
        Behaviour::Network,
        "urllib.request.urlopen",
    );
    has(
        "import http.client\nhttp.client.HTTPSConnection('h')",
        Behaviour::Network,
        "http.client.HTTPSConnection",
    );
    has(
        "open(os.path.expanduser('~/.cache/huggingface/token')).read()",
        Behaviour::Credentials,
        "Hugging Face token",
    );
    has(
        "p = os.path.join(h, '.cache', 'huggingface', 'token')",
        Behaviour::Credentials,
        "Hugging Face token",
    );
    has(
        "open('/home/u/.ssh/id_rsa')",
        Behaviour::Credentials,
        "~/.ssh",
    );
    has(
        "from huggingface_hub import get_token\nget_token()",
        Behaviour::Credentials,
        "get_token",
    );
    has(
        "from huggingface_hub import hf_hub_download\nhf_hub_download('a/b', 'x.py')",
        Behaviour::Download,
        "hf_hub_download",
    );
    has(
        "import urllib.request\nurllib.request.urlretrieve(u, 'x')",
        Behaviour::Download,
        "urlretrieve",
    );
    has(
        "open('/etc/cron.d/x', 'w')",
        Behaviour::WriteOutside,
        "/etc/cron.d/x",
    );
    has(
        "import shutil\nshutil.rmtree('~/')",
        Behaviour::WriteOutside,
        "shutil.rmtree",
    );
    has(
        "from pathlib import Path\nPath.home().joinpath('x')\nPath('/etc/x').write_text('y')",
        Behaviour::WriteOutside,
        "Path.write_text",
    );
    has(
        "import ctypes\nctypes.CDLL('libc.so.6')",
        Behaviour::NativeLibrary,
        "ctypes.CDLL",
    );
    has(
        "import ctypes\nctypes.cdll.LoadLibrary('x')",
        Behaviour::NativeLibrary,
        "ctypes.cdll.LoadLibrary",
    );
    has(
        "import cffi\nffi = cffi.FFI()\nffi.dlopen('x')",
        Behaviour::NativeLibrary,
        "dlopen",
    );
    has(
        "import os\nt = os.environ.get('HF_TOKEN')",
        Behaviour::EnvironmentSecret,
        "HF_TOKEN",
    );
    has(
        "import os\nt = os.environ['AWS_SECRET_ACCESS_KEY']",
        Behaviour::EnvironmentSecret,
        "AWS_SECRET",
    );
}

#[test]
fn plain_code_is_quiet() {
    let src = r#"
"""A model. Tokens live in ~/.cache/huggingface/token, see docs."""
import math
import os
import torch
from torch import nn
from .configuration_tiny import TinyConfig

class TinyModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.eval_mode = False
        self.proj = nn.Linear(config.hidden, config.hidden)
        self.act = getattr(nn, config.act)()

    def forward(self, x):
        self.eval()
        y = self.proj(x) / math.sqrt(x.shape[-1])
        return torch.compile(self.act)(y)

def save_vocabulary(save_directory):
    with open(os.path.join(save_directory, "vocab.txt"), "w") as f:
        f.write("x")
    return os.environ.get("TINY_CACHE_DIR")

def compile(x):
    return x

compile(1)
"#;
    let a = analyse(src).unwrap();
    assert!(a.hits.is_empty(), "{:?}", a.hits);
    assert_eq!(a.relative_imports, vec!["configuration_tiny".to_string()]);
    assert!(a.has_code);
    assert!(!analyse("\"\"\"only a docstring\"\"\"\n").unwrap().has_code);
}

#[test]
fn refusals() {
    assert!(matches!(analyse("def f(:\n"), Err(Refusal::Syntax { .. })));
    let deep = format!("x = {}1\n", "1+".repeat(100_000));
    assert!(matches!(analyse(&deep), Err(Refusal::TooDeep { .. })));
    let deep = format!("x = {}1{}\n", "(".repeat(100_000), ")".repeat(100_000));
    assert!(matches!(analyse(&deep), Err(Refusal::TooDeep { .. })));
    let deep = format!("x = {}1\n", "not ".repeat(100_000));
    assert!(matches!(analyse(&deep), Err(Refusal::TooDeep { .. })));
    let deep = format!("x = a{}\n", ".b".repeat(100_000));
    assert!(matches!(analyse(&deep), Err(Refusal::TooDeep { .. })));
    let deep = format!("x = {{1: {}1}}\n", "lambda: ".repeat(100_000));
    assert!(matches!(analyse(&deep), Err(Refusal::TooDeep { .. })));
    let big = "x = 1\n".repeat(MAX_PYTHON_SOURCE / 6 + 1);
    assert!(matches!(analyse(&big), Err(Refusal::TooLarge { .. })));
    // Just under the bound: parsed, analysed and dropped without exhausting the stack.
    let ok = format!("x = {}1\n", "1+".repeat(2_000));
    assert!(analyse(&ok).is_ok());
    let ok = format!("x = f{}\n", "(1)".repeat(1_200));
    assert!(analyse(&ok).is_ok());
    // Wide but flat code is fine.
    let wide = format!("x = [{}]\n", "-1, ".repeat(200_000));
    assert!(analyse(&wide).is_ok());
}

mod corpus {
    /// `ASSAY_PY_CORPUS=/path/to/site-packages/transformers cargo test -p assay-scan
    /// python_corpus -- --ignored --nocapture`: what the analyser says about real code.
    #[test]
    #[ignore]
    fn python_corpus() {
        let Ok(dir) = std::env::var("ASSAY_PY_CORPUS") else {
            return;
        };
        let filter = std::env::var("ASSAY_PY_FILTER").unwrap_or_default();
        let (mut files, mut refused) = (0, 0);
        for e in walkdir::WalkDir::new(dir).into_iter().flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "py") || !p.to_string_lossy().contains(&filter) {
                continue;
            }
            let Ok(src) = std::fs::read_to_string(p) else {
                continue;
            };
            files += 1;
            match super::analyse(&src) {
                Ok(a) => {
                    for h in a.hits {
                        println!(
                            "{:?}\t{:?}\t{}\t{}:{}\t{}",
                            h.severity,
                            h.behaviour,
                            h.what,
                            p.display(),
                            h.line,
                            h.evidence
                        );
                    }
                }
                Err(r) => {
                    refused += 1;
                    println!("REFUSED\t{}\t{r}", p.display());
                }
            }
        }
        println!("{files} files, {refused} refused");
    }
}
