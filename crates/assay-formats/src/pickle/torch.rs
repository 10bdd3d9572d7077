//! PyTorch tensors as the symbolic unpickler sees them: storages named by persistent ids,
//! the rebuild calls over them, and the key path under which each tensor sits in the
//! unpickled object (`layers.0.weight`). This is what lets weights be read without
//! running Python; nothing here changes how a pickle is judged.

use super::value::{Obj, Value};
use super::{TorchStorageRef, TorchTensorRef};
use std::collections::{HashMap, HashSet};

/// Rebuild functions whose first four arguments are `(storage, storage_offset, size,
/// stride)`.
pub(super) const REBUILD_TENSOR: &[&str] = &[
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3",
];

/// Dimensions kept per tensor (torch allows 64).
const MAX_RANK: usize = 64;
/// Nesting followed when naming tensors.
const MAX_NAME_DEPTH: u32 = 64;
/// Values visited when naming tensors, over one pickle.
const MAX_NAME_STEPS: usize = 4_000_000;
/// Longest name kept.
const MAX_NAME_LEN: usize = 4096;
/// Bytes of first-visit paths remembered to name shared objects' aliases, per pickle.
const MAX_FIRST_PATH_BYTES: usize = 16 << 20;
/// Second references to an object that are followed up for aliases, per pickle.
const MAX_REVISITS: usize = 65_536;
/// Aliases recorded, per pickle.
const MAX_ALIASES: usize = 1 << 20;

/// A torch storage persistent id: `('storage', torch.FloatStorage, '0', 'cpu', 6)` (zip)
/// or `('storage', torch.FloatStorage, '9418…', 'cpu', 6, None)` (legacy).
pub(super) fn storage_ref(pid: &Value<'_>) -> Option<TorchStorageRef> {
    let Value::Tuple(t) = pid else { return None };
    if t.first().and_then(Value::as_str) != Some("storage") || t.len() < 5 {
        return None;
    }
    let storage_type = match t.get(1)? {
        Value::Global(g) => g.name.rsplit('.').next().unwrap_or(&g.name).to_string(),
        Value::Str(s) => s.to_string(),
        _ => return None,
    };
    let key = match t.get(2)? {
        Value::Str(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        _ => return None,
    };
    let location = t.get(3).and_then(Value::as_str).unwrap_or("").to_string();
    let numel = match t.get(4) {
        Some(Value::Int(n)) => u64::try_from(*n).ok(),
        _ => None,
    };
    let view_offset = match t.get(5) {
        Some(Value::Tuple(v)) => match v.get(1) {
            Some(Value::Int(o)) => u64::try_from(*o).ok(),
            _ => None,
        },
        _ => None,
    };
    Some(TorchStorageRef {
        key,
        storage_type,
        location,
        numel,
        view_offset,
    })
}

fn dims(v: Option<&Value<'_>>) -> Option<Vec<u64>> {
    let Some(Value::Tuple(t)) = v else {
        return None;
    };
    if t.len() > MAX_RANK {
        return None;
    }
    t.iter()
        .map(|d| match d {
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        })
        .collect()
}

/// The tensor a rebuild call makes, when its arguments are what torch writes.
pub(super) fn tensor_ref(
    offset: u64,
    qn: &str,
    args: &[Value<'_>],
    storage: impl Fn(&Value<'_>) -> Option<usize>,
) -> Option<TorchTensorRef> {
    let storage = storage(args.first()?)?;
    let storage_offset = match args.get(1)? {
        Value::Int(i) => u64::try_from(*i).ok()?,
        _ => return None,
    };
    let size = dims(args.get(2))?;
    let stride = dims(args.get(3))?;
    if size.len() != stride.len() {
        return None;
    }
    let dtype = if qn.ends_with("_v3") {
        match args.get(6)? {
            Value::Global(g) if g.module == "torch" => Some(g.name.clone()),
            _ => return None,
        }
    } else {
        None
    };
    Some(TorchTensorRef {
        offset,
        name: None,
        aliases: Vec::new(),
        storage,
        dtype,
        storage_offset,
        size,
        stride,
    })
}

/// Keys of a module's `__dict__` that hold parameters and submodules: left out of names,
/// so that a pickled `nn.Module` names its tensors like its `state_dict()` does.
const MODULE_DICTS: &[&str] = &["_parameters", "_buffers", "_modules"];

/// Names the tensors reachable from `root` by the first key path that reaches each.
pub(super) struct Namer<'x, 'a> {
    pub objs: &'x [Obj<'a>],
    /// Arena id of a rebuild call → index into the tensors.
    pub tensors: &'x HashMap<u32, usize>,
    /// Items set (`SETITEM(S)`) on call results, e.g. an `OrderedDict()`.
    pub items: &'x HashMap<u32, Vec<(Value<'a>, Value<'a>)>>,
    pub visited: HashSet<u32>,
    pub steps: usize,
    /// Where each object was first reached (within [`MAX_FIRST_PATH_BYTES`]).
    pub first: HashMap<u32, String>,
    pub first_bytes: usize,
    /// Objects reached again: (object, the other path).
    pub revisits: Vec<(u32, String)>,
}

impl<'a> Namer<'_, 'a> {
    pub fn walk(&mut self, v: &Value<'a>, path: &str, depth: u32, out: &mut [TorchTensorRef]) {
        self.steps += 1;
        if depth > MAX_NAME_DEPTH || self.steps > MAX_NAME_STEPS || path.len() > MAX_NAME_LEN {
            return;
        }
        match v {
            Value::Tuple(items) => {
                for (i, x) in items.iter().enumerate() {
                    self.walk(x, &join(path, &i.to_string()), depth + 1, out);
                }
            }
            Value::Ref(id) => {
                if !self.visited.insert(*id) {
                    if self.revisits.len() < MAX_REVISITS && !path.is_empty() {
                        self.revisits.push((*id, path.to_string()));
                    }
                    return;
                }
                if self.first_bytes + path.len() <= MAX_FIRST_PATH_BYTES {
                    self.first_bytes += path.len();
                    self.first.insert(*id, path.to_string());
                }
                if let Some(&t) = self.tensors.get(id) {
                    if let Some(t) = out.get_mut(t)
                        && t.name.is_none()
                        && !path.is_empty()
                    {
                        t.name = Some(path.to_string());
                    }
                    return;
                }
                let objs = self.objs;
                let items = self.items;
                match objs.get(*id as usize) {
                    Some(Obj::Dict(pairs)) => self.pairs(pairs, path, depth, out),
                    Some(Obj::List(xs)) | Some(Obj::Set(xs)) => {
                        for (i, x) in xs.iter().enumerate() {
                            self.walk(x, &join(path, &i.to_string()), depth + 1, out);
                        }
                    }
                    Some(Obj::Call(c)) => {
                        if let Some(pairs) = items.get(id) {
                            self.pairs(pairs, path, depth, out);
                        }
                        // `_rebuild_parameter(tensor, …)` and other wrappers: the tensor
                        // inside keeps the wrapper's name.
                        for a in c.args.iter() {
                            self.walk_arg(a, path, depth, out);
                        }
                        if let Some(state) = &c.state {
                            self.walk(state, path, depth + 1, out);
                        }
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }

    /// Call arguments add no key to the path (tuples among them neither).
    fn walk_arg(&mut self, v: &Value<'a>, path: &str, depth: u32, out: &mut [TorchTensorRef]) {
        match v {
            Value::Tuple(items) => {
                for x in items.iter() {
                    self.walk_arg(x, path, depth + 1, out);
                }
            }
            other => self.walk(other, path, depth + 1, out),
        }
    }

    fn pairs(
        &mut self,
        pairs: &[(Value<'a>, Value<'a>)],
        path: &str,
        depth: u32,
        out: &mut [TorchTensorRef],
    ) {
        for (k, v) in pairs {
            let key = match k {
                Value::Str(s) => s.to_string(),
                Value::Int(i) => i.to_string(),
                _ => continue,
            };
            if MODULE_DICTS.contains(&key.as_str()) {
                self.walk(v, path, depth + 1, out);
            } else {
                self.walk(v, &join(path, &key), depth + 1, out);
            }
        }
    }
}

/// Names the tensors reached again through a shared object: a tensor named `P.rest`
/// under an object first reached at `P` and reached again at `Q` is also `Q.rest`.
/// Cycles (`Q` inside `P`, or the root reached again) add nothing.
pub(super) fn name_aliases(
    first: &HashMap<u32, String>,
    revisits: &[(u32, String)],
    out: &mut [TorchTensorRef],
) {
    if revisits.is_empty() {
        return;
    }
    let mut by_name: Vec<(String, usize)> = out
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some((t.name.clone()?, i)))
        .collect();
    by_name.sort();
    let mut added = 0usize;
    for (id, alias) in revisits {
        let Some(p) = first.get(id) else { continue };
        // Everything is inside the root: reaching it again is a cycle too.
        if p.is_empty() || alias == p || alias.starts_with(&format!("{p}.")) {
            continue;
        }
        let start = by_name.partition_point(|(n, _)| n.as_str() < p.as_str());
        for (name, i) in &by_name[start..] {
            let rest = if name == p {
                ""
            } else if let Some(r) = name.strip_prefix(p.as_str()).filter(|r| r.starts_with('.')) {
                r
            } else if name.starts_with(p.as_str()) {
                continue;
            } else {
                break;
            };
            let a = format!("{alias}{rest}");
            if added >= MAX_ALIASES || a.len() > MAX_NAME_LEN {
                return;
            }
            if let Some(t) = out.get_mut(*i)
                && t.name.as_deref() != Some(a.as_str())
                && !t.aliases.contains(&a)
            {
                t.aliases.push(a);
                added += 1;
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> TorchTensorRef {
        TorchTensorRef {
            offset: 0,
            name: Some(name.into()),
            aliases: Vec::new(),
            storage: 0,
            dtype: None,
            storage_offset: 0,
            size: vec![1],
            stride: vec![1],
        }
    }

    #[test]
    fn aliases_of_shared_objects() {
        let mut out = vec![t("a"), t("enc.w"), t("enc.b"), t("enc-x.w"), t("z")];
        let first: HashMap<u32, String> = [
            (1, "a".to_string()),
            (2, "enc".to_string()),
            (3, "".to_string()),
        ]
        .into();
        let revisits = vec![
            (1, "b".to_string()),        // {"a": t, "b": t}
            (2, "dec".to_string()),      // a shared sub-dict
            (2, "enc.self".to_string()), // a cycle: adds nothing
            (3, "root".to_string()),     // the root reached again: a cycle
        ];
        name_aliases(&first, &revisits, &mut out);
        assert_eq!(out[0].aliases, vec!["b"]);
        assert_eq!(out[1].aliases, vec!["dec.w"]);
        assert_eq!(out[2].aliases, vec!["dec.b"]);
        assert!(out[3].aliases.is_empty() && out[4].aliases.is_empty());
    }
}
