//! HDF5 datasets: Keras weights (`.h5`, `model.weights.h5` in a `.keras` archive) and
//! Transformers' `tf_model.h5`. The dataset walker of `assay-formats` locates each
//! dataset; numeric ones with compact or contiguous storage become tensors. Chunked,
//! filtered (compressed) or external storage is a [`crate::Problem`]: the caller knows
//! those weights were not looked at.

use super::{ReadError, ReadLimits, Source, member};
use crate::dtype::{Dtype, Endian};
use crate::view::{Alias, Tensor, TensorFile, TensorFormat, contiguous_strides};
use assay_formats::hdf5::datasets::{ElementType, Storage, datasets};
use assay_formats::hdf5::{Hdf5Error, Hdf5Limits};
use assay_formats::zip;

/// A Keras 3 archive holds its weights in an HDF5 member (`model.weights.h5`).
pub fn is_keras_weights(name: &str) -> bool {
    name.ends_with(".weights.h5")
}

pub fn read<'a>(data: &'a [u8], limits: &ReadLimits) -> Result<TensorFile<'a>, ReadError> {
    let mut file = TensorFile::new(TensorFormat::Hdf5);
    read_into(&Source::Borrowed(data), None, limits, &mut file)?;
    Ok(file)
}

/// A `.keras` archive: the datasets of its weights member(s).
pub fn read_keras<'a>(
    data: &'a [u8],
    limits: &ReadLimits,
    budget: &mut u64,
) -> Result<TensorFile<'a>, ReadError> {
    let ar = zip::parse(data, &zip::ZipLimits::default())
        .map_err(|e| ReadError::Malformed(format!(".keras: {e}")))?;
    let mut file = TensorFile::new(TensorFormat::Keras);
    for e in ar
        .entries
        .iter()
        .filter(|e| !e.is_dir() && is_keras_weights(&e.name))
    {
        match member(data, e, budget) {
            Ok(src) => {
                if let Err(err) = read_into(&src, Some(&e.name), limits, &mut file) {
                    match err {
                        ReadError::TooManyTensors(_) => return Err(err),
                        err => file.problem(None, Some(&e.name), err.to_string()),
                    }
                }
            }
            Err(err) => file.problem(
                None,
                Some(&e.name),
                format!("member could not be read: {err}"),
            ),
        }
    }
    Ok(file)
}

fn read_into<'a>(
    src: &Source<'a>,
    in_member: Option<&str>,
    limits: &ReadLimits,
    file: &mut TensorFile<'a>,
) -> Result<(), ReadError> {
    let found = datasets(src.all(), &Hdf5Limits::default()).map_err(|e| match e {
        Hdf5Error::NoSignature => ReadError::NotTensorFile,
        e => ReadError::Malformed(format!("HDF5: {e}")),
    })?;
    for p in found.problems {
        file.problem(p.name.as_deref(), in_member, p.reason);
    }
    for d in found.datasets {
        let Some((dtype, endian)) = dtype(d.element) else {
            continue; // strings, references, compounds: not weights
        };
        let range = match d.storage {
            Storage::Contiguous(r) | Storage::Compact(r) => r,
            Storage::Unallocated => continue, // fill values only
            Storage::Unread(why) => {
                file.problem(Some(&d.path), in_member, format!("{why}: not read"));
                continue;
            }
        };
        if file.tensors.len() >= limits.max_tensors {
            return Err(ReadError::TooManyTensors(limits.max_tensors));
        }
        let Some(strides) = contiguous_strides(&d.shape) else {
            file.problem(Some(&d.path), in_member, "shape overflows");
            continue;
        };
        let Some(bytes) = src.sub(range.clone()) else {
            file.problem(
                Some(&d.path),
                in_member,
                "data runs past the end of the file",
            );
            continue;
        };
        for alias in d.aliases {
            file.aliases.push(Alias {
                name: alias,
                tensor: d.path.clone(),
            });
        }
        file.tensors.push(Tensor {
            name: d.path,
            dtype,
            endian,
            shape: d.shape,
            strides,
            data: bytes,
            range,
            member: in_member.map(str::to_string),
        });
    }
    Ok(())
}

fn dtype(e: ElementType) -> Option<(Dtype, Endian)> {
    let (d, big) = match e {
        ElementType::Float { size, big_endian } => (
            match size {
                2 => Dtype::F16,
                4 => Dtype::F32,
                8 => Dtype::F64,
                _ => return None,
            },
            big_endian,
        ),
        ElementType::Int {
            size,
            signed,
            big_endian,
        } => (
            match (size, signed) {
                (1, true) => Dtype::I8,
                (2, true) => Dtype::I16,
                (4, true) => Dtype::I32,
                (8, true) => Dtype::I64,
                (1, false) => Dtype::U8,
                (2, false) => Dtype::U16,
                (4, false) => Dtype::U32,
                (8, false) => Dtype::U64,
                _ => return None,
            },
            big_endian,
        ),
        ElementType::Other { .. } => return None,
    };
    Some((d, if big { Endian::Big } else { Endian::Little }))
}
