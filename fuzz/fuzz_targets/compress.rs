#![no_main]
use assay_formats::compress::{Compression, decompress_to};
use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 16 << 20;
const KINDS: [Compression; 6] = [
    Compression::Gzip,
    Compression::Zlib,
    Compression::Bzip2,
    Compression::Xz,
    Compression::Lzma,
    Compression::Lz4Frame,
];

fuzz_target!(|data: &[u8]| {
    for kind in KINDS {
        let _ = decompress_to(kind, data, std::io::sink(), LIMIT);
    }
});
