//! Recognising a file by its bytes, never by its name.

use crate::compress::Compression;
use crate::pickle::opcodes;

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sniffed {
    Zip,
    Tar,
    Compressed(Compression),
    /// Starts with `PROTO` (protocol 2+): certainly meant to be a pickle.
    Pickle,
    /// Starts with a byte that is a protocol 0/1 opcode: a pickle only if it parses.
    MaybePickle,
    Npy,
    Safetensors,
    Gguf,
    /// An HDF5 file (signature at 0 or after a user block): legacy Keras `.h5` models.
    Hdf5,
    /// An ONNX `ModelProto` (see [`crate::onnx::sniff`]).
    Onnx,
    /// A TensorFlow protobuf: SavedModel, GraphDef, Keras metadata, or their text format.
    TensorFlow(crate::savedmodel::TfKind),
    Executable(ExecutableKind),
    /// A script with a `#!` interpreter line.
    Script,
    /// Anything else (text, raw tensor data, formats not handled here).
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecutableKind {
    Elf,
    Pe,
    MachO,
    /// A Mach-O universal ("fat") binary; `CA FE BA BE` is shared with Java classes, which
    /// are reported the same way: both are code.
    MachOFat,
    JavaClass,
    Wasm,
}

impl ExecutableKind {
    pub fn name(self) -> &'static str {
        match self {
            ExecutableKind::Elf => "ELF executable",
            ExecutableKind::Pe => "PE (Windows) executable",
            ExecutableKind::MachO => "Mach-O executable",
            ExecutableKind::MachOFat => "Mach-O universal binary",
            ExecutableKind::JavaClass => "Java class file",
            ExecutableKind::Wasm => "WebAssembly module",
        }
    }
}

/// Bytes 257..262 of a POSIX tar header.
const TAR_MAGIC_OFFSET: usize = 257;

pub fn sniff(data: &[u8]) -> Sniffed {
    if let Some(e) = executable(data) {
        return Sniffed::Executable(e);
    }
    if data.starts_with(b"PK\x03\x04")
        || data.starts_with(b"PK\x05\x06")
        || data.starts_with(b"PK\x07\x08")
    {
        return Sniffed::Zip;
    }
    // Before the compressors: a safetensors header length can start with a gzip or zlib
    // signature (e.g. 560927 = 1f 8b 08 ..).
    if crate::gguf::looks_like(data) {
        return Sniffed::Gguf;
    }
    if crate::safetensors::looks_like(data) {
        return Sniffed::Safetensors;
    }
    if let Some(c) = compression(data) {
        return Sniffed::Compressed(c);
    }
    if data.starts_with(b"\x93NUMPY") {
        return Sniffed::Npy;
    }
    // At 0, or after a user block (which the HDF5 analyser scans as its own artifact);
    // a tar whose first member is an HDF5 file stays a tar.
    if crate::hdf5::signature_offset(data).is_some_and(|off| off == 0 || !is_tar(data)) {
        return Sniffed::Hdf5;
    }
    if data.len() >= 2 && data[0] == opcodes::PROTO && data[1] <= opcodes::HIGHEST_PROTOCOL {
        return Sniffed::Pickle;
    }
    if is_tar(data) {
        return Sniffed::Tar;
    }
    if data.starts_with(b"#!") {
        return Sniffed::Script;
    }
    // A zip whose first local header was damaged or prefixed: the end-of-central-directory
    // record near the end still makes it a zip to Python's and PyTorch's readers.
    if crate::zip::find_eocd(data).is_some() {
        return Sniffed::Zip;
    }
    // Protobufs before the protocol 0/1 guess: their first byte can be any field key,
    // some of which are also pickle opcodes (a reordered ONNX file can start with 'B').
    if crate::onnx::sniff(data) {
        return Sniffed::Onnx;
    }
    if let Some(kind) = crate::savedmodel::sniff(data) {
        return Sniffed::TensorFlow(kind);
    }
    if let Some(&b) = data.first()
        && opcodes::name(b).is_some()
        && maybe_protocol01_start(b)
    {
        return Sniffed::MaybePickle;
    }
    Sniffed::Unknown
}

/// Opcodes that a protocol 0/1 pickle can start with, minus the ones that are also
/// common first characters of text files that are certainly not pickles.
fn maybe_protocol01_start(b: u8) -> bool {
    matches!(
        b,
        opcodes::MARK
            | opcodes::GLOBAL
            | opcodes::INST
            | opcodes::EMPTY_DICT
            | opcodes::EMPTY_LIST
            | opcodes::EMPTY_TUPLE
            | opcodes::NONE
            | opcodes::INT
            | opcodes::LONG
            | opcodes::FLOAT
            | opcodes::STRING
            | opcodes::UNICODE
            | opcodes::BINUNICODE
            | opcodes::BININT
            | opcodes::BININT1
            | opcodes::BININT2
            | opcodes::SHORT_BINSTRING
            | opcodes::BINSTRING
            | opcodes::BINFLOAT
            | opcodes::PERSID
            | opcodes::BINPERSID
            | opcodes::EXT1
            | opcodes::EXT2
            | opcodes::EXT4
            | opcodes::FRAME
            | opcodes::NEWTRUE
            | opcodes::NEWFALSE
            | opcodes::EMPTY_SET
            | opcodes::BINBYTES
            | opcodes::SHORT_BINBYTES
            | opcodes::SHORT_BINUNICODE
            | opcodes::BINUNICODE8
            | opcodes::BINBYTES8
            | opcodes::BYTEARRAY8
            | opcodes::LONG1
            | opcodes::LONG4
    )
}

pub fn executable(data: &[u8]) -> Option<ExecutableKind> {
    if data.starts_with(b"\x7fELF") && data.len() >= 16 && matches!(data[4], 1 | 2) {
        return Some(ExecutableKind::Elf);
    }
    if data.starts_with(b"MZ") && data.len() >= 0x40 {
        let lfanew = u32::from_le_bytes([data[0x3c], data[0x3d], data[0x3e], data[0x3f]]) as usize;
        if data.get(lfanew..lfanew.checked_add(4)?) == Some(b"PE\0\0") {
            return Some(ExecutableKind::Pe);
        }
    }
    if data.len() >= 8 {
        let m = [data[0], data[1], data[2], data[3]];
        if matches!(
            m,
            [0xfe, 0xed, 0xfa, 0xce]
                | [0xfe, 0xed, 0xfa, 0xcf]
                | [0xce, 0xfa, 0xed, 0xfe]
                | [0xcf, 0xfa, 0xed, 0xfe]
        ) {
            return Some(ExecutableKind::MachO);
        }
        if m == [0xca, 0xfe, 0xba, 0xbe] {
            // Fat Mach-O has a small architecture count here; Java classes a version.
            let n = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            return Some(if n < 45 {
                ExecutableKind::MachOFat
            } else {
                ExecutableKind::JavaClass
            });
        }
    }
    if data.starts_with(b"\0asm\x01\0\0\0") {
        return Some(ExecutableKind::Wasm);
    }
    None
}

/// Length of the header joblib < 0.10 wrote before a zlib stream: `ZF` and the data
/// length as `0x…` hex padded to 19 characters.
pub const JOBLIB_ZF_HEADER: usize = 21;

pub fn compression(data: &[u8]) -> Option<Compression> {
    if data.starts_with(b"ZF0x") && data.len() > JOBLIB_ZF_HEADER {
        return Some(Compression::Zlib);
    }
    if data.starts_with(b"\x1f\x8b\x08") {
        return Some(Compression::Gzip);
    }
    if data.len() >= 10
        && data.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&data[3])
        && (&data[4..10] == b"\x31\x41\x59\x26\x53\x59"
            || &data[4..10] == b"\x17\x72\x45\x38\x50\x90")
    {
        return Some(Compression::Bzip2);
    }
    if data.starts_with(b"\xfd7zXZ\0") {
        return Some(Compression::Xz);
    }
    if data.starts_with(b"\x04\x22\x4d\x18") {
        return Some(Compression::Lz4Frame);
    }
    if is_zlib(data) {
        return Some(Compression::Zlib);
    }
    if is_lzma_alone(data) {
        return Some(Compression::Lzma);
    }
    None
}

/// RFC 1950 header: deflate, window ≤ 32K, no preset dictionary, check bits valid, and
/// the first deflate block header plausible. Only `0x78` (32K window) is accepted.
fn is_zlib(data: &[u8]) -> bool {
    if data.len() < 3 || data[0] != 0x78 {
        return false;
    }
    let flg = data[1];
    if (u16::from(data[0]) << 8 | u16::from(flg)) % 31 != 0 || flg & 0x20 != 0 {
        return false;
    }
    // BTYPE 11 is reserved.
    (data[2] >> 1) & 0b11 != 0b11
}

/// The `.lzma` header: properties byte 0x5d (lc=3, lp=0, pb=2: what every encoder
/// writes by default), a power-of-two-ish dictionary size, and a size of -1 or < 2^48.
fn is_lzma_alone(data: &[u8]) -> bool {
    if data.len() < 13 || data[0] != 0x5d {
        return false;
    }
    let dict = u32::from_le_bytes([data[1], data[2], data[3], data[4]]);
    // `checked_shr`: a zero dictionary size has 32 trailing zeros.
    let dict_ok = dict.is_power_of_two() || dict.checked_shr(dict.trailing_zeros()) == Some(3);
    let size = u64::from_le_bytes([
        data[5], data[6], data[7], data[8], data[9], data[10], data[11], data[12],
    ]);
    dict_ok && dict >= 4096 && (size == u64::MAX || size < (1 << 48))
}

fn is_tar(data: &[u8]) -> bool {
    let Some(magic) = data.get(TAR_MAGIC_OFFSET..TAR_MAGIC_OFFSET + 5) else {
        return false;
    };
    let header = data.get(..512).unwrap_or(&[]);
    if magic != b"ustar" {
        return crate::tar::looks_like_v7_header(header);
    }
    crate::tar::header_checksum_ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `cargo fuzz run sniff`: an `.lzma` header with a zero dictionary size
    /// shifted a u32 right by its 32 trailing zeros.
    #[test]
    fn lzma_header_with_zero_dictionary_size() {
        let data = b"\x5d\x00\x00\x00\x00\x6e\x00\x00\x00\x00\x00\xc3\x2e";
        assert!(!is_lzma_alone(data));
        assert_eq!(compression(data), None);
        assert!(!matches!(sniff(data), Sniffed::Compressed(_)));
    }
}
