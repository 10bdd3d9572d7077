//! GGUF: tensor infos give type, dims (innermost first) and an offset into the aligned
//! data section. Quantised types are raw blocks of the sizes ggml defines.

use super::{ReadError, ReadLimits};
use crate::dtype::{Dtype, Endian};
use crate::view::{Bytes, Tensor, TensorFile, TensorFormat, contiguous_strides};

pub fn read<'a>(data: &'a [u8], limits: &ReadLimits) -> Result<TensorFile<'a>, ReadError> {
    let g =
        assay_formats::gguf::parse(data).map_err(|e| ReadError::Malformed(format!("GGUF: {e}")))?;
    if g.tensors.len() > limits.max_tensors {
        return Err(ReadError::TooManyTensors(limits.max_tensors));
    }
    let endian = if g.big_endian {
        Endian::Big
    } else {
        Endian::Little
    };
    let mut file = TensorFile::new(TensorFormat::Gguf);
    for t in &g.tensors {
        let name = Some(t.name.as_str());
        let Some(dtype) = Dtype::from_ggml(t.ggml_type) else {
            file.problem(name, None, format!("unknown ggml type {}", t.ggml_type));
            continue;
        };
        let size = match assay_formats::gguf::tensor_size(t) {
            Ok(s) => s,
            Err(e) => {
                file.problem(name, None, e);
                continue;
            }
        };
        let shape: Vec<u64> = t.dims.iter().rev().copied().collect();
        let Some(strides) = contiguous_strides(&shape) else {
            file.problem(name, None, "shape overflows");
            continue;
        };
        let range = g
            .data_start
            .checked_add(t.offset)
            .and_then(|s| Some(s..s.checked_add(size)?))
            .filter(|r| r.end <= data.len() as u64);
        let Some(range) = range else {
            file.problem(
                name,
                None,
                format!(
                    "{size} bytes at data offset {} run past the end of the file",
                    t.offset
                ),
            );
            continue;
        };
        file.tensors.push(Tensor {
            name: t.name.clone(),
            dtype,
            endian,
            shape,
            strides,
            data: Bytes::Borrowed(&data[range.start as usize..range.end as usize]),
            range,
            member: None,
        });
    }
    Ok(file)
}
