//! safetensors: the header gives dtype, shape and offsets; the bytes are borrowed.

use super::{ReadError, ReadLimits};
use crate::dtype::{Dtype, Endian};
use crate::view::{Bytes, Tensor, TensorFile, TensorFormat, contiguous_strides, numel};

pub fn read<'a>(data: &'a [u8], limits: &ReadLimits) -> Result<TensorFile<'a>, ReadError> {
    let st = assay_formats::safetensors::parse(data)
        .map_err(|e| ReadError::Malformed(format!("safetensors header: {e}")))?;
    if st.tensors.len() > limits.max_tensors {
        return Err(ReadError::TooManyTensors(limits.max_tensors));
    }
    let mut file = TensorFile::new(TensorFormat::Safetensors);
    for t in &st.tensors {
        let name = Some(t.name.as_str());
        let (Some(dtype), Some(shape), Some((b, e))) = (&t.dtype, &t.shape, t.offsets) else {
            file.problem(
                name,
                None,
                "header entry lacks a dtype, shape or data_offsets",
            );
            continue;
        };
        let Some(dtype) = Dtype::from_safetensors(dtype) else {
            file.problem(name, None, format!("unknown dtype {dtype:?}"));
            continue;
        };
        let (Some(n), Some(strides)) = (numel(shape), contiguous_strides(shape)) else {
            file.problem(name, None, "shape overflows");
            continue;
        };
        let (Some(start), Some(end)) = (st.data_start.checked_add(b), st.data_start.checked_add(e))
        else {
            file.problem(name, None, "data_offsets overflow");
            continue;
        };
        if b > e || end > data.len() as u64 || dtype.bytes_for(n) != Some(e - b) {
            file.problem(
                name,
                None,
                format!(
                    "data_offsets [{b}, {e}] do not hold {n} {} elements inside the file",
                    dtype.name()
                ),
            );
            continue;
        }
        file.tensors.push(Tensor {
            name: t.name.clone(),
            dtype,
            endian: Endian::Little,
            shape: shape.clone(),
            strides,
            data: Bytes::Borrowed(&data[start as usize..end as usize]),
            range: start..end,
            member: None,
        });
    }
    Ok(file)
}
