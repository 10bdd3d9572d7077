//! NumPy `.npy` (one array) and `.npz` (a zip of them, stored or deflated).

use super::{ReadError, ReadLimits, Source, member};
use crate::dtype::Dtype;
use crate::view::{Tensor, TensorFile, TensorFormat, numel};
use assay_formats::npy::parse_header;
use assay_formats::zip;

pub fn read_npy<'a>(data: &'a [u8], _limits: &ReadLimits) -> Result<TensorFile<'a>, ReadError> {
    let mut file = TensorFile::new(TensorFormat::Npy);
    let src = Source::Borrowed(data);
    array(&src, "array", None, &mut file).map_err(|e| match e {
        NpyProblem::Unsupported(m) => ReadError::Unsupported(format!(".npy: {m}")),
        NpyProblem::Bad(m) => ReadError::Malformed(format!(".npy: {m}")),
    })?;
    Ok(file)
}

pub fn read_npz<'a>(
    data: &'a [u8],
    limits: &ReadLimits,
    budget: &mut u64,
) -> Result<TensorFile<'a>, ReadError> {
    let ar = zip::parse(data, &zip::ZipLimits::default())
        .map_err(|e| ReadError::Malformed(format!(".npz: {e}")))?;
    let mut file = TensorFile::new(TensorFormat::Npz);
    for e in ar.entries.iter().filter(|e| !e.is_dir()) {
        if file.tensors.len() >= limits.max_tensors {
            return Err(ReadError::TooManyTensors(limits.max_tensors));
        }
        let name = e.name.strip_suffix(".npy").unwrap_or(&e.name);
        let src = match member(data, e, budget) {
            Ok(s) => s,
            Err(err) => {
                file.problem(
                    Some(name),
                    Some(&e.name),
                    format!("member could not be read: {err}"),
                );
                continue;
            }
        };
        match array(&src, name, Some(&e.name), &mut file) {
            Ok(()) | Err(NpyProblem::Unsupported(_)) => {}
            Err(NpyProblem::Bad(err)) => file.problem(Some(name), Some(&e.name), err),
        }
    }
    Ok(file)
}

enum NpyProblem {
    /// Not numeric data (object, string, structured, datetime arrays).
    Unsupported(String),
    Bad(String),
}

impl From<&str> for NpyProblem {
    fn from(s: &str) -> Self {
        NpyProblem::Bad(s.to_string())
    }
}

impl From<String> for NpyProblem {
    fn from(s: String) -> Self {
        NpyProblem::Bad(s)
    }
}

fn array<'a>(
    src: &Source<'a>,
    name: &str,
    member: Option<&str>,
    file: &mut TensorFile<'a>,
) -> Result<(), NpyProblem> {
    let h = parse_header(src.all()).map_err(|e| e.to_string())?;
    if h.has_object {
        return Err(NpyProblem::Unsupported(
            "object array (a pickle, not tensor data)".into(),
        ));
    }
    let (dtype, endian) = Dtype::from_numpy(&h.descr)
        .ok_or_else(|| NpyProblem::Unsupported(format!("dtype {:?} is not numeric", h.descr)))?;
    let n = numel(&h.shape).ok_or("shape overflows")?;
    let len = dtype.bytes_for(n).ok_or("size overflows")?;
    let start = h.data_offset as u64;
    let range = start..start.checked_add(len).ok_or("size overflows")?;
    let data = src
        .sub(range.clone())
        .ok_or_else(|| format!("array data truncated: {len} bytes declared"))?;
    // C order: row-major strides; Fortran order: the first index varies fastest.
    let rank = h.shape.len();
    let mut strides = vec![0u64; rank];
    let mut acc = 1u64;
    let order: Vec<usize> = if h.fortran_order {
        (0..rank).collect()
    } else {
        (0..rank).rev().collect()
    };
    for i in order {
        strides[i] = acc;
        acc = acc
            .checked_mul(h.shape[i].max(1))
            .ok_or("shape overflows")?;
    }
    file.tensors.push(Tensor {
        name: name.to_string(),
        dtype,
        endian,
        shape: h.shape.clone(),
        strides,
        data,
        range,
        member: member.map(str::to_string),
    });
    Ok(())
}
