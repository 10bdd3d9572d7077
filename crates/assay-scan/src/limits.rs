use assay_formats::pickle::PickleLimits;
use assay_formats::tar::TarLimits;
use assay_formats::zip::ZipLimits;

/// Every bound the engine enforces. Reaching one is a finding (`ARC003`, `ZIP003`,
/// `PKL011`), never a crash or an unbounded allocation.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Containers inside containers (zip in tar.gz in zip …), and payloads nested in pickles.
    pub max_depth: u32,
    /// Members opened in one top-level file, over all nesting levels.
    pub max_members_per_file: u64,
    /// Bytes one compressed stream or member may expand to.
    pub max_expanded_size: u64,
    /// Bytes all decompression within one top-level file may produce.
    pub max_expanded_per_file: u64,
    /// Expansion ratio beyond which a stream is a bomb, once it is larger than
    /// `bomb_min_size` (gzip tops out near 1032:1, so 200:1 catches real bombs while
    /// legitimate compressed models stay well below).
    pub max_ratio: u64,
    pub bomb_min_size: u64,
    /// Decompressed data larger than this goes to an anonymous temporary file that is
    /// memory-mapped, so memory stays flat.
    pub spill_threshold: u64,
    /// Bytes of weights whose statistics the tensor stage computes per top-level file
    /// (at over 1 GB/s per core); tensors beyond are listed as not analysed (`TEN009`).
    pub max_tensor_bytes_per_file: u64,
    /// Bytes of float weights whose low-order planes are searched for hidden payloads
    /// per top-level file (the search costs several passes per byte).
    pub max_payload_search_bytes_per_file: u64,
    pub pickle: PickleLimits,
    pub zip: ZipLimits,
    pub tar: TarLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 10,
            max_members_per_file: 500_000,
            max_expanded_size: 16 << 30,
            max_expanded_per_file: 64 << 30,
            max_ratio: 200,
            bomb_min_size: 32 << 20,
            spill_threshold: 64 << 20,
            max_tensor_bytes_per_file: 256 << 30,
            max_payload_search_bytes_per_file: 16 << 30,
            pickle: PickleLimits::default(),
            zip: ZipLimits::default(),
            tar: TarLimits::default(),
        }
    }
}
