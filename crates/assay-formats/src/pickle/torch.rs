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
                    return;
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

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
