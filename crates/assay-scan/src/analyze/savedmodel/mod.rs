//! TensorFlow SavedModels, frozen GraphDefs and Keras metadata: every node of every
//! graph and library function is judged by its op (see [`ops`]), by the string constants
//! that reach its path inputs, and by the attributes that point it at files or hosts.
//! Keras layer metadata goes through the Keras configuration walk ([`keras`]).

mod keras;
mod ops;

use crate::engine::{FileScan, Format, Loc};
use crate::rules::code;
use assay_formats::protobuf::{self, SurveyError};
use assay_formats::savedmodel::proto::{AttrValue, GraphDef, MetaGraphDef, NodeDef};
use assay_formats::savedmodel::{
    TfError, TfKind, TfLimits, asset_files, input_node, is_registered_op, parse_graph_def,
    parse_keras_metadata, parse_saved_model, parse_text,
};
use assay_report::Severity;
use ops::{Effect, PathKind};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// Nodes visited when following a node's inputs back to its constants.
const MAX_TRACE_NODES: usize = 64;
/// Path constants quoted per finding.
const MAX_QUOTED_PATHS: usize = 4;
/// Graphs serialized inside graphs (`DatasetFromGraph`) that are decoded and scanned.
const MAX_EMBEDDED_DEPTH: u32 = 4;
/// Nodes reached from the saver's save and restore tensors.
const MAX_SAVER_NODES: usize = 1_000_000;

pub fn scan(ctx: &mut FileScan, kind: TfKind, data: &[u8], loc: &Loc, depth: u32) -> Format {
    let limits = TfLimits::default();
    match kind {
        TfKind::SavedModel => match parse_saved_model(data, &limits) {
            Ok(sm) => {
                for (i, mg) in sm.meta_graphs.iter().enumerate() {
                    meta_graph(ctx, mg, i, loc, depth);
                }
            }
            Err(e) => malformed(ctx, kind, &e, loc),
        },
        TfKind::GraphDef => match parse_graph_def(data, &limits) {
            Ok(g) => {
                let mut r = Reporter::default();
                graph(ctx, &mut r, &g, &Context::default(), "graph", loc, depth, 0);
                r.emit(ctx, loc);
            }
            Err(e) => malformed(ctx, kind, &e, loc),
        },
        TfKind::Text => match parse_text(data, &limits) {
            Ok(g) => text_graph(ctx, &g, loc),
            Err(e) => malformed(ctx, kind, &e, loc),
        },
        TfKind::KerasMetadata => match parse_keras_metadata(data, &limits) {
            Ok(m) => {
                for o in &m.nodes {
                    let place = protobuf::text(&o.node_path);
                    keras::check_json(ctx, &o.metadata, &place, loc, depth);
                }
            }
            Err(e) => malformed(ctx, kind, &e, loc),
        },
    }
    Format::TensorFlow(kind)
}

fn malformed(ctx: &mut FileScan, kind: TfKind, e: &TfError, loc: &Loc) {
    ctx.incomplete = true;
    let offset = match e {
        TfError::Wire(SurveyError::Wire(w, _)) => Some(w.offset() as u64),
        TfError::Wire(SurveyError::TooDeep(_, at)) => Some(*at as u64),
        _ => None,
    };
    ctx.add(
        code::TFS001,
        Severity::High,
        loc,
        offset,
        format!("{} could not be analysed: {e}", kind.name()),
        None,
    );
}

/// What the MetaGraph says about its own graph: which nodes are the saver and which
/// constants are asset paths the loader replaces.
#[derive(Default)]
struct Context {
    saver_roots: Vec<String>,
    asset_tensors: HashSet<String>,
}

fn meta_graph(ctx: &mut FileScan, mg: &MetaGraphDef, index: usize, loc: &Loc, depth: u32) {
    if let Some(m) = &mg.meta_info_def {
        let v = protobuf::text(&m.tensorflow_version);
        ctx.recorded_version("tensorflow", &v, "MetaInfoDef tensorflow_version", loc);
    }
    let tags: Vec<String> = mg
        .meta_info_def
        .iter()
        .flat_map(|m| m.tags.iter().map(|t| protobuf::text(t)))
        .collect();
    let label = if tags.is_empty() {
        format!("meta_graph[{index}]")
    } else {
        format!("meta_graph[{index}] ({})", tags.join(","))
    };
    let mut c = Context::default();
    if let Some(s) = &mg.saver_def {
        for n in [
            &s.save_tensor_name,
            &s.restore_op_name,
            &s.filename_tensor_name,
        ] {
            if !n.is_empty() {
                c.saver_roots
                    .push(input_node(&protobuf::text(n)).to_string());
            }
        }
    }
    for a in &asset_files(mg) {
        if let Some(t) = &a.tensor_info {
            c.asset_tensors
                .insert(input_node(&protobuf::text(&t.name)).to_string());
        }
    }
    if let Some(og) = &mg.object_graph_def {
        for (i, o) in og.nodes.iter().enumerate() {
            let Some(u) = &o.user_object else { continue };
            if u.identifier.starts_with(b"_tf_keras") && !u.metadata.is_empty() {
                let place = format!("{label} object {i} ({})", protobuf::text(&u.identifier));
                keras::check_json(ctx, &u.metadata, &place, loc, depth);
            }
        }
    }
    if let Some(g) = &mg.graph_def {
        let mut r = Reporter::default();
        graph(ctx, &mut r, g, &c, &label, loc, depth, 0);
        r.emit(ctx, loc);
    }
}

/// One graph body: the main graph or a library function.
struct Scope<'g> {
    label: String,
    /// The function's name, for a library function.
    function: Option<String>,
    nodes: &'g [NodeDef],
    by_name: HashMap<&'g [u8], usize>,
}

impl<'g> Scope<'g> {
    fn new(label: String, function: Option<String>, nodes: &'g [NodeDef]) -> Self {
        let by_name = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_slice(), i))
            .collect();
        Scope {
            label,
            function,
            nodes,
            by_name,
        }
    }

    fn node(&self, input: &[u8]) -> Option<&'g NodeDef> {
        let name = input_node(std::str::from_utf8(input).ok()?);
        self.by_name
            .get(name.as_bytes())
            .and_then(|&i| self.nodes.get(i))
    }
}

#[allow(clippy::too_many_arguments)]
fn graph(
    ctx: &mut FileScan,
    r: &mut Reporter,
    g: &GraphDef,
    c: &Context,
    label: &str,
    loc: &Loc,
    depth: u32,
    embedded: u32,
) {
    let functions: Vec<(String, &[NodeDef])> = g
        .library
        .iter()
        .flat_map(|l| &l.function)
        .map(|f| {
            let name = f
                .signature
                .as_ref()
                .map(|s| protobuf::text(&s.name))
                .unwrap_or_default();
            (name, f.node_def.as_slice())
        })
        .collect();
    let function_names: HashSet<&str> = functions.iter().map(|(n, _)| n.as_str()).collect();
    let main = Scope::new(label.to_string(), None, &g.node);
    let (saver_nodes, saver_functions) = saver(&main, &functions, c);
    let mut scopes = vec![main];
    for (name, nodes) in &functions {
        scopes.push(Scope::new(
            format!("{label} function {name}"),
            Some(name.clone()),
            nodes,
        ));
    }
    for s in &scopes {
        let in_saver_fn = s
            .function
            .as_ref()
            .is_some_and(|f| saver_functions.contains(f.as_str()));
        for n in s.nodes {
            let op = protobuf::text(&n.op);
            let node_name = protobuf::text(&n.name);
            let at = Place {
                scope: &s.label,
                node: &node_name,
            };
            let assets = if s.function.is_none() {
                Some(&c.asset_tensors)
            } else {
                None
            };
            if let Some(e) = ops::always(&op) {
                // A DatasetFromGraph input is a serialized graph, not a path.
                let mut paths = if e == Effect::EmbeddedGraph {
                    Vec::new()
                } else {
                    trace(s, n, assets)
                };
                paths.extend(attr_strings(n, b"memory_region_name"));
                paths.extend(attr_strings(n, b"file_pattern"));
                r.effect(e, &op, &at, &paths, "");
                if e == Effect::EmbeddedGraph {
                    embedded_graphs(ctx, r, s, n, &at, loc, depth, embedded);
                }
            }
            if let Some(e) = ops::checkpoint(&op) {
                let paths = trace(s, n, assets);
                let bad = bad_paths(&paths);
                if !bad.is_empty() {
                    r.effect(e, &op, &at, &bad, "");
                } else if !(in_saver_fn
                    || s.function.is_none() && saver_nodes.contains(n.name.as_slice()))
                {
                    r.add(
                        code::TFS007,
                        Severity::Medium,
                        &op,
                        &at,
                        format!("{op} is outside the SavedModel's saver"),
                        None,
                    );
                }
            }
            if let Some(e) = ops::path_input(&op) {
                let bad = bad_paths(&trace(s, n, assets));
                if !bad.is_empty() {
                    r.effect(e, &op, &at, &bad, "");
                }
            }
            attributes(r, &op, n, &at);
            if !is_registered_op(&op) && !function_names.contains(op.as_str()) {
                r.add(
                    code::TFS006,
                    Severity::Medium,
                    &op,
                    &at,
                    format!("op {op:?} is neither a TensorFlow op nor a function of the model: it needs a native op library (tf.load_op_library)"),
                    None,
                );
            }
        }
    }
}

/// A text-format graph: judged by op names alone (its constants and data flow are not
/// followed, so checkpoint ops and path-fed table initialisers are not judged).
fn text_graph(ctx: &mut FileScan, g: &assay_formats::savedmodel::text::TextGraph, loc: &Loc) {
    let functions: HashSet<&str> = g.functions.iter().map(String::as_str).collect();
    let mut r = Reporter::default();
    for n in &g.nodes {
        let scope = match &n.function {
            Some(f) => format!("line {} function {f}", n.line),
            None => format!("line {}", n.line),
        };
        let at = Place {
            scope: &scope,
            node: &n.name,
        };
        if let Some(e) = ops::always(&n.op) {
            r.effect(e, &n.op, &at, &[], "");
        }
        if !is_registered_op(&n.op) && !functions.contains(n.op.as_str()) {
            r.add(
                code::TFS006,
                Severity::Medium,
                &n.op,
                &at,
                format!("op {:?} is neither a TensorFlow op nor a function of the model: it needs a native op library (tf.load_op_library)", n.op),
                None,
            );
        }
    }
    r.emit(ctx, loc);
}

/// Where a node is, for messages.
struct Place<'a> {
    scope: &'a str,
    node: &'a str,
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: node {:?}", self.scope, self.node)
    }
}

/// The saver's nodes in the main graph (everything its save, restore and filename
/// tensors are computed from) and the functions they call, transitively.
fn saver<'g>(
    main: &Scope<'g>,
    functions: &'g [(String, &'g [NodeDef])],
    c: &Context,
) -> (HashSet<&'g [u8]>, HashSet<&'g str>) {
    let mut nodes: HashSet<&[u8]> = HashSet::new();
    let mut queue: VecDeque<&NodeDef> = c
        .saver_roots
        .iter()
        .filter_map(|r| main.node(r.as_bytes()))
        .collect();
    let mut called: Vec<String> = Vec::new();
    while let Some(n) = queue.pop_front() {
        if nodes.len() >= MAX_SAVER_NODES || !nodes.insert(n.name.as_slice()) {
            continue;
        }
        called.extend(function_refs(n));
        for i in &n.input {
            if let Some(m) = main.node(i) {
                queue.push_back(m);
            }
        }
    }
    let by_name: HashMap<&str, &[NodeDef]> =
        functions.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    let mut fns: HashSet<&str> = HashSet::new();
    while let Some(f) = called.pop() {
        let Some((&name, body)) = by_name.get_key_value(f.as_str()) else {
            continue;
        };
        if fns.insert(name) {
            for n in *body {
                called.extend(function_refs(n));
            }
        }
    }
    (nodes, fns)
}

/// Functions a node calls: every `func` attribute, in lists and nested attributes too.
fn function_refs(n: &NodeDef) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<&AttrValue> = n.attr.iter().filter_map(|a| a.value.as_ref()).collect();
    while let Some(v) = stack.pop() {
        let funcs = v.func.iter().chain(v.list.iter().flat_map(|l| &l.func));
        for f in funcs {
            out.push(protobuf::text(&f.name));
            stack.extend(f.attr.iter().filter_map(|a| a.value.as_ref()));
        }
        if out.len() > 1024 {
            break;
        }
    }
    out
}

/// String constants that reach a node's data inputs within [`MAX_TRACE_NODES`] steps,
/// except the asset-path constants the loader replaces.
fn trace(s: &Scope, n: &NodeDef, assets: Option<&HashSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let mut queue: VecDeque<&NodeDef> = VecDeque::new();
    let data_inputs = |n: &NodeDef| -> Vec<Vec<u8>> {
        n.input
            .iter()
            .filter(|i| !i.starts_with(b"^"))
            .cloned()
            .collect()
    };
    for i in data_inputs(n) {
        if let Some(m) = s.node(&i) {
            queue.push_back(m);
        }
    }
    while let Some(m) = queue.pop_front() {
        if seen.len() >= MAX_TRACE_NODES || !seen.insert(m.name.as_slice()) {
            continue;
        }
        let op = protobuf::text(&m.op);
        if ops::is_const(&op) {
            let name = protobuf::text(&m.name);
            if assets.is_some_and(|a| a.contains(&name)) {
                continue;
            }
            for a in &m.attr {
                if a.key != b"value" {
                    continue;
                }
                for t in a.value.iter().flat_map(|v| &v.tensor) {
                    out.extend(t.string_val.iter().map(|b| head(b)));
                }
            }
            continue;
        }
        for i in data_inputs(m) {
            if let Some(p) = s.node(&i) {
                queue.push_back(p);
            }
        }
    }
    out
}

fn bad_paths(paths: &[String]) -> Vec<String> {
    paths
        .iter()
        .filter(|p| ops::path_kind(p).is_some())
        .cloned()
        .collect()
}

/// The string values of one attribute (a string or a list of strings).
fn attr_strings(n: &NodeDef, key: &[u8]) -> Vec<String> {
    n.attr
        .iter()
        .filter(|a| a.key == key)
        .filter_map(|a| a.value.as_ref())
        .flat_map(|v| {
            v.s.iter()
                .chain(v.list.iter().flat_map(|l| &l.s))
                .map(|b| head(b))
        })
        .collect()
}

/// Attributes that point an op at a file or a host.
fn attributes(r: &mut Reporter, op: &str, n: &NodeDef, at: &Place) {
    let strings = |key: &[u8]| attr_strings(n, key);
    if op == "PrintV2" {
        for s in strings(b"output_stream") {
            if s.starts_with("file://") {
                r.effect(Effect::Write, op, at, &[s], " (output_stream)");
            }
        }
    }
    if op.starts_with("Debug") {
        for url in strings(b"debug_urls") {
            let lower = url.to_ascii_lowercase();
            if lower.starts_with("file://") {
                r.effect(Effect::Write, op, at, &[url], " (debug_urls)");
            } else if !lower.is_empty() {
                r.effect(Effect::Network, op, at, &[url], " (debug_urls)");
            }
        }
    }
    if matches!(op, "DecodeProtoV2" | "EncodeProto") {
        for s in strings(b"descriptor_source") {
            if s != "local://" && !s.starts_with("bytes://") && !s.is_empty() {
                r.effect(Effect::Read, op, at, &[s], " (descriptor_source)");
            }
        }
    }
}

/// `DatasetFromGraph` runs a GraphDef held in a string tensor: when that tensor is a
/// constant, decode it and scan it like any graph.
#[allow(clippy::too_many_arguments)]
fn embedded_graphs(
    ctx: &mut FileScan,
    r: &mut Reporter,
    s: &Scope,
    n: &NodeDef,
    at: &Place,
    loc: &Loc,
    depth: u32,
    embedded: u32,
) {
    let limits = TfLimits::default();
    let Some(src) = n.input.first().and_then(|i| s.node(i)) else {
        return;
    };
    for a in src.attr.iter().filter(|a| a.key == b"value") {
        for t in a.value.iter().flat_map(|v| &v.tensor) {
            for bytes in &t.string_val {
                if embedded >= MAX_EMBEDDED_DEPTH {
                    r.add(
                        code::TFS008,
                        Severity::High,
                        "DatasetFromGraph",
                        at,
                        format!("graphs embedded deeper than {MAX_EMBEDDED_DEPTH} levels were not scanned"),
                        None,
                    );
                    return;
                }
                match parse_graph_def(bytes, &limits) {
                    Ok(g) => {
                        let label = format!("graph embedded in {at}");
                        graph(
                            ctx,
                            r,
                            &g,
                            &Context::default(),
                            &label,
                            loc,
                            depth,
                            embedded + 1,
                        );
                    }
                    Err(e) => r.add(
                        code::TFS008,
                        Severity::High,
                        "DatasetFromGraph",
                        at,
                        format!(
                            "the graph embedded in constant {:?} could not be decoded: {e}",
                            protobuf::text(&src.name)
                        ),
                        None,
                    ),
                }
            }
        }
    }
}

/// Bytes of a string constant judged as a path: the start of a path decides what it is.
const MAX_PATH_BYTES: usize = 4096;

fn head(b: &[u8]) -> String {
    protobuf::text(&b[..b.len().min(MAX_PATH_BYTES)])
}

/// A string constant for evidence: at most 200 characters, control characters escaped.
fn clip(s: &str) -> String {
    let short = match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    };
    if short.chars().any(char::is_control) {
        format!("{short:?}")
    } else {
        short
    }
}

/// Findings of one graph, merged per (rule, op): a graph with a thousand `ReadFile`
/// nodes gives one finding that counts them.
#[derive(Default)]
struct Reporter {
    merged: BTreeMap<(&'static str, String, String), Merged>,
}

struct Merged {
    severity: Severity,
    message: String,
    first: String,
    count: u64,
    evidence: Vec<String>,
}

impl Reporter {
    fn effect(&mut self, e: Effect, op: &str, at: &Place, paths: &[String], via: &str) {
        let remote: Vec<String> = paths
            .iter()
            .filter(|p| ops::path_kind(p) == Some(PathKind::Remote))
            .cloned()
            .collect();
        let (rule, severity, what) = match e {
            Effect::Python => (code::TFS002, Severity::Critical, "calls back into Python"),
            Effect::Write => (code::TFS003, Severity::Critical, "writes files"),
            Effect::Read => (code::TFS004, Severity::High, "reads local files"),
            Effect::Network => (code::TFS005, Severity::Critical, "connects to other hosts"),
            Effect::EmbeddedGraph => (
                code::TFS008,
                Severity::High,
                "runs a graph serialized inside a tensor",
            ),
        };
        let quoted: Vec<String> = paths.iter().map(|p| clip(p)).collect();
        let evidence = (!paths.is_empty()).then(|| format!("{}{via}", quoted.join(", ")));
        self.add(
            rule,
            severity,
            op,
            at,
            format!("{op} {what} when the graph runs"),
            evidence,
        );
        if !remote.is_empty() && e != Effect::Network {
            self.add(
                code::TFS005,
                Severity::Critical,
                op,
                at,
                format!("{op} opens a path on a remote file system when the graph runs"),
                Some(
                    remote
                        .iter()
                        .map(|p| clip(p))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            );
        }
    }

    fn add(
        &mut self,
        rule: &'static str,
        severity: Severity,
        op: &str,
        at: &Place,
        message: String,
        evidence: Option<String>,
    ) {
        let m = self
            .merged
            .entry((rule, op.to_string(), message.clone()))
            .or_insert_with(|| Merged {
                severity,
                message,
                first: at.to_string(),
                count: 0,
                evidence: Vec::new(),
            });
        m.count += 1;
        m.severity = m.severity.max(severity);
        if let Some(e) = evidence
            && m.evidence.len() < MAX_QUOTED_PATHS
            && !m.evidence.contains(&e)
        {
            m.evidence.push(e);
        }
    }

    fn emit(self, ctx: &mut FileScan, loc: &Loc) {
        for ((rule, _, _), m) in self.merged {
            let nodes = if m.count == 1 {
                String::new()
            } else {
                format!(" ({} nodes)", m.count)
            };
            let mut evidence = format!("first at {}", m.first);
            if !m.evidence.is_empty() {
                evidence.push_str(&format!("; {}", m.evidence.join("; ")));
            }
            ctx.add(
                rule,
                m.severity,
                loc,
                None,
                format!("{}{nodes}", m.message),
                Some(evidence),
            );
        }
    }
}

#[cfg(test)]
mod tests;
