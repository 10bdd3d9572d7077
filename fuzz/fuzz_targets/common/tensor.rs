//! Shared by the `tensor_*` targets: read arbitrary bytes as one tensor format through
//! the view, twice — once unpickling by itself, once over the analyses the scanner would
//! hand it — and require the same result; then run what the scanner's tensor stages run
//! over every tensor and every unclaimed byte range.
#![allow(dead_code)]

use assay_formats::pickle::{self, PickleLimits};
use assay_formats::zip::{self, ZipLimits};
use assay_tensor::payload;
use assay_tensor::stats::stats;
use assay_tensor::{
    ExternalData, MemberAnalysis, ReadError, ReadLimits, Tensor, TensorFile, TensorFormat,
    Unpickled, read, read_as, read_as_unpickled,
};

/// Bounds for one execution: hostile sizes must be refused, not allocated.
fn limits() -> ReadLimits {
    ReadLimits {
        max_tensors: 4096,
        max_decoded: 8 << 20,
    }
}

/// Elements converted to f32 per tensor (a broadcast view has more elements than bytes).
const MAX_ELEMENTS: u64 = 1 << 20;

/// ONNX external data: every location resolves to the input itself.
struct Itself<'a>(&'a [u8]);

impl<'a> ExternalData<'a> for Itself<'a> {
    fn get(&self, _location: &str) -> Option<&'a [u8]> {
        Some(self.0)
    }
}

/// What a reader produced, bytes included (by length and a checksum), as text.
fn summary(r: &Result<TensorFile, ReadError>) -> String {
    let file = match r {
        Ok(f) => f,
        Err(e) => return format!("error {e:?}"),
    };
    let sum = |b: &[u8]| {
        b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
            (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3)
        })
    };
    let mut s = format!("{:?} {:?} {:?}\n", file.format, file.aliases, file.problems);
    for t in &file.tensors {
        s += &format!(
            "T {} {} {:?} {:?} {:?} {:?} {:?} {}\n",
            t.name,
            t.dtype.name(),
            t.endian,
            t.shape,
            t.strides,
            t.range,
            t.member,
            sum(t.bytes())
        );
    }
    for u in &file.unclaimed {
        s += &format!(
            "U {:?} {:?} {} {} {}\n",
            u.range,
            u.member,
            u.what,
            u.trailing,
            sum(u.data.as_slice())
        );
    }
    s
}

/// The analyses the scanner records for `data` read as `format`.
fn scanner_analyses(
    format: TensorFormat,
    data: &[u8],
) -> (Option<pickle::PickleAnalysis>, Vec<MemberAnalysis>) {
    let lim = PickleLimits::default();
    match format {
        TensorFormat::PytorchLegacy | TensorFormat::PickleNumpy => {
            (Some(pickle::analyze(data, &lim)), Vec::new())
        }
        TensorFormat::PytorchZip => {
            let Ok(ar) = zip::parse(data, &ZipLimits::default()) else {
                return (None, Vec::new());
            };
            let members = ar
                .entries
                .iter()
                .filter(|e| e.name == "data.pkl" || e.name.ends_with("/data.pkl"))
                .take(4)
                .filter_map(|e| {
                    let mut body = Vec::new();
                    zip::extract_to(data, e, &mut body, 8 << 20).ok()?;
                    Some(MemberAnalysis {
                        name: e.name.clone(),
                        local_offset: e.local_offset,
                        analysis: pickle::analyze(&body, &lim),
                    })
                })
                .collect();
            (None, members)
        }
        _ => (None, Vec::new()),
    }
}

/// What the tensor and backdoor stages run over one tensor.
pub fn analyse_tensor(t: &Tensor) {
    let _ = t.contiguous_bytes();
    if t.numel() <= MAX_ELEMENTS {
        let mut n = 0usize;
        let _ = t.for_each_f32(|b| n += b.len());
    }
    let s = stats(t);
    let _ = payload::search_tensor(t);
    if let Some(s) = &s {
        let _ = payload::is_bf16_rounded(s);
        let _ = payload::regions(t, s);
    }
}

fn analyse(file: &TensorFile) {
    for t in file.tensors.iter().take(256) {
        analyse_tensor(t);
    }
    for u in file.unclaimed.iter().take(64) {
        let _ = payload::search_bytes(u.data.as_slice());
    }
    let _ = file.named_tensors();
}

/// Reads `data` as `format` both ways, requires the same result, and analyses it.
pub fn view(format: TensorFormat, data: &[u8]) {
    let external = Itself(data);
    let own = read_as(format, data, &limits(), Some(&external));
    let (whole, members) = scanner_analyses(format, data);
    let known = Unpickled {
        whole: whole.as_ref(),
        members: &members,
    };
    let with = read_as_unpickled(format, data, &limits(), Some(&external), &known);
    assert_eq!(summary(&own), summary(&with), "the two readings differ");
    if let Ok(file) = &own {
        analyse(file);
    }
    // Recognised by its bytes, as `assay diff` and `assay convert` read files.
    if let Ok(file) = read(data, &limits()) {
        let _ = file.tensors.len();
    }
}
