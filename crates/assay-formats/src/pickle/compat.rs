//! Python 2 → 3 name fix-ups that CPython's unpickler applies for protocols < 3
//! (`Lib/_compat_pickle.py`, `fix_imports=True`). Only the entries whose targets matter
//! to a security judgement or appear in real model files are kept.

/// Module renames (`IMPORT_MAPPING`).
const IMPORT_MAPPING: &[(&str, &str)] = &[
    ("__builtin__", "builtins"),
    ("copy_reg", "copyreg"),
    ("cPickle", "pickle"),
    ("commands", "subprocess"),
    ("urllib2", "urllib.request"),
    ("urlparse", "urllib.parse"),
    ("httplib", "http.client"),
    ("BaseHTTPServer", "http.server"),
    ("SimpleHTTPServer", "http.server"),
    ("CGIHTTPServer", "http.server"),
    ("SocketServer", "socketserver"),
    ("xmlrpclib", "xmlrpc.client"),
    ("SimpleXMLRPCServer", "xmlrpc.server"),
    ("thread", "_thread"),
    ("Queue", "queue"),
    ("StringIO", "io"),
    ("cStringIO", "io"),
    ("UserDict", "collections"),
    ("UserList", "collections"),
    ("UserString", "collections"),
    ("_abcoll", "collections.abc"),
    ("exceptions", "builtins"),
    ("anydbm", "dbm"),
    ("cookielib", "http.cookiejar"),
    ("Cookie", "http.cookies"),
    ("repr", "reprlib"),
    ("test.test_support", "test.support"),
    ("_winreg", "winreg"),
    ("ConfigParser", "configparser"),
];

/// A `(module, name)` pair.
type Name = (&'static str, &'static str);

/// (module, name) renames (`NAME_MAPPING`).
const NAME_MAPPING: &[(Name, Name)] = &[
    (("__builtin__", "xrange"), ("builtins", "range")),
    (("__builtin__", "reduce"), ("functools", "reduce")),
    (("__builtin__", "intern"), ("sys", "intern")),
    (("__builtin__", "unichr"), ("builtins", "chr")),
    (("__builtin__", "unicode"), ("builtins", "str")),
    (("__builtin__", "long"), ("builtins", "int")),
    (("__builtin__", "basestring"), ("builtins", "str")),
    (("itertools", "izip"), ("builtins", "zip")),
    (("itertools", "imap"), ("builtins", "map")),
    (("itertools", "ifilter"), ("builtins", "filter")),
    (("urllib", "urlopen"), ("urllib.request", "urlopen")),
    (("urllib", "urlretrieve"), ("urllib.request", "urlretrieve")),
    (("urllib", "quote"), ("urllib.parse", "quote")),
    (("urllib", "unquote"), ("urllib.parse", "unquote")),
    (("urllib", "urlencode"), ("urllib.parse", "urlencode")),
    (("UserDict", "UserDict"), ("collections", "UserDict")),
    (("socket", "_socketobject"), ("socket", "SocketType")),
];

/// Applies CPython's protocol < 3 fix-ups.
pub fn fix_imports(module: &str, name: &str) -> (String, String) {
    if let Some((_, (m, n))) = NAME_MAPPING
        .iter()
        .find(|((m, n), _)| *m == module && *n == name)
    {
        return ((*m).to_string(), (*n).to_string());
    }
    if let Some((_, m)) = IMPORT_MAPPING.iter().find(|(old, _)| *old == module) {
        return ((*m).to_string(), name.to_string());
    }
    (module.to_string(), name.to_string())
}
