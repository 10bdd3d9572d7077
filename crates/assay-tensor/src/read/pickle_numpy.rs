//! NumPy arrays stored inside pickles: joblib's inline arrays (`NumpyArrayWrapper`, raw
//! bytes after the wrapper) and plain pickles of arrays (`_reconstruct` + `BUILD` with a
//! bytes state). The symbolic unpickler (never Python) locates each numeric array's
//! bytes in the stream and names it by its key path; the bytes are borrowed.

use super::{ReadError, ReadLimits};
use crate::dtype::Dtype;
use crate::view::{Bytes, Tensor, TensorFile, TensorFormat, numel};
use assay_formats::pickle::{self, NumpyArrayRef, PickleLimits};

pub fn read<'a>(data: &'a [u8], limits: &ReadLimits) -> Result<TensorFile<'a>, ReadError> {
    let a = pickle::analyze(data, &PickleLimits::default());
    read_arrays(data, &a.numpy_arrays, limits)
}

/// Tensors over `arrays` (as found by the symbolic unpickler in `data`).
pub fn read_arrays<'a>(
    data: &'a [u8],
    arrays: &[NumpyArrayRef],
    limits: &ReadLimits,
) -> Result<TensorFile<'a>, ReadError> {
    if arrays.len() > limits.max_tensors {
        return Err(ReadError::TooManyTensors(limits.max_tensors));
    }
    let mut file = TensorFile::new(TensorFormat::PickleNumpy);
    for (i, r) in arrays.iter().enumerate() {
        let name = r.name.clone().unwrap_or_else(|| format!("<array {i}>"));
        let Some((dtype, endian)) = Dtype::from_numpy(&r.dtype) else {
            file.problem(
                Some(&name),
                None,
                format!("dtype {:?} is not read", r.dtype),
            );
            continue;
        };
        let (start, len) = r.data;
        let end = start.checked_add(len).filter(|e| *e <= data.len() as u64);
        let (Some(n), Some(end)) = (numel(&r.shape), end) else {
            file.problem(Some(&name), None, "array bytes lie outside the stream");
            continue;
        };
        if dtype.bytes_for(n) != Some(len) {
            file.problem(
                Some(&name),
                None,
                format!("{len} bytes do not hold {n} {} elements", dtype.name()),
            );
            continue;
        }
        // C order: row-major strides; Fortran order: the first index varies fastest.
        let rank = r.shape.len();
        let mut strides = vec![0u64; rank];
        let mut acc = 1u64;
        let order: Vec<usize> = if r.fortran_order {
            (0..rank).collect()
        } else {
            (0..rank).rev().collect()
        };
        for i in order {
            strides[i] = acc;
            acc = acc.saturating_mul(r.shape[i].max(1));
        }
        file.tensors.push(Tensor {
            name,
            dtype,
            endian,
            shape: r.shape.clone(),
            strides,
            data: Bytes::Borrowed(&data[start as usize..end as usize]),
            range: start..end,
            member: None,
        });
    }
    Ok(file)
}
