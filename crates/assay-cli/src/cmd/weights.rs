//! Weight files for `assay diff` and `assay convert`: memory maps of files (or of every
//! file of a folder, recognised by content) that the tensor view reads without copying.
#![allow(unsafe_code)]

use anyhow::{Context, Result};
use assay_tensor::TensorFormat;
use std::fs::File;
use std::path::{Path, PathBuf};

/// A file mapped read-only.
pub struct Mapped {
    pub path: PathBuf,
    map: Option<memmap2::Mmap>,
}

impl Mapped {
    pub fn open(path: &Path) -> Result<Mapped> {
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: a read-only private mapping of a file we opened. A file truncated
            // underneath can at worst raise SIGBUS; its bytes are untrusted anyway and
            // every reader bounds-checks them.
            let m = unsafe { memmap2::MmapOptions::new().map(&file) }
                .with_context(|| format!("cannot map {}", path.display()))?;
            #[cfg(unix)]
            let _ = m.advise(memmap2::Advice::Sequential);
            Some(m)
        };
        Ok(Mapped {
            path: path.to_path_buf(),
            map,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

/// Files under `path` (itself when it is a file), sorted; symbolic links to files are
/// followed (Hugging Face cache snapshots are links), links to folders are not.
pub fn files_under(path: &Path) -> Result<Vec<PathBuf>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for e in rd {
            let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
            let p = e.path();
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() || (ft.is_symlink() && p.metadata().is_ok_and(|m| m.is_file())) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Which weight files count first when two hold the same tensor name (a Hugging Face
/// folder often has both `model.safetensors` and `pytorch_model.bin`): the order in which
/// loaders prefer them.
pub fn preference(f: TensorFormat) -> u8 {
    match f {
        TensorFormat::Safetensors => 0,
        TensorFormat::PytorchZip | TensorFormat::PytorchLegacy => 1,
        TensorFormat::Gguf => 2,
        TensorFormat::Onnx => 3,
        TensorFormat::Npz | TensorFormat::Npy => 4,
        TensorFormat::Hdf5 | TensorFormat::Keras => 5,
        TensorFormat::PickleNumpy => 6,
    }
}

/// Every file of a model (a file, or a folder's files), mapped, and which of them hold
/// weights (content-sniffed), in preference order.
pub struct Model {
    pub maps: Vec<Mapped>,
    pub weights: Vec<(usize, TensorFormat)>,
}

pub fn load(path: &Path) -> Result<Model> {
    let mut maps = Vec::new();
    let mut weights = Vec::new();
    for p in files_under(path)? {
        let m = Mapped::open(&p)?;
        if let Some(f) = assay_tensor::detect(m.bytes()) {
            weights.push((maps.len(), f));
        }
        maps.push(m);
    }
    // A single ONNX file: its external data sits beside it (`model.onnx_data`).
    if weights.len() == 1
        && weights[0].1 == TensorFormat::Onnx
        && std::fs::metadata(path).is_ok_and(|m| m.is_file())
        && let Some(dir) = path.parent()
    {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let p = e?.path();
            if p != path && p.metadata().is_ok_and(|m| m.is_file()) {
                maps.push(Mapped::open(&p)?);
            }
        }
    }
    weights.sort_by(|a, b| {
        preference(a.1)
            .cmp(&preference(b.1))
            .then_with(|| maps[a.0].path.cmp(&maps[b.0].path))
    });
    Ok(Model { maps, weights })
}

/// ONNX external data: files of the same model, relative to the `.onnx` file's folder
/// (the reader has already refused absolute locations and `..`). Nothing outside the
/// files given to the command is opened.
pub struct Siblings<'m> {
    pub dir: PathBuf,
    pub maps: &'m [Mapped],
}

impl<'m> assay_tensor::ExternalData<'m> for Siblings<'m> {
    fn get(&self, location: &str) -> Option<&'m [u8]> {
        let mut want = self.dir.clone();
        for c in Path::new(location).components() {
            match c {
                std::path::Component::Normal(n) => want.push(n),
                std::path::Component::CurDir => {}
                _ => return None,
            }
        }
        self.maps.iter().find(|m| m.path == want).map(|m| m.bytes())
    }
}
