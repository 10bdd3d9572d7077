//! End to end: `assay serve` on an ephemeral port, `assay tenant create`, `assay token
//! create` and `assay push` of a real and a malicious model, then the real
//! `huggingface_hub` Python client (`snapshot_download`, `hf_hub_download`) downloads.
//!
//! Needs `ASSAY_HF_PYTHON`: a Python with `huggingface_hub` installed (.ci/run makes one).
//! Outside CI the test is skipped with a note when it is unset; under CI=true it fails.

mod registry_common;

use registry_common::{done_means, hf_python, serve};

#[test]
fn huggingface_hub_downloads_admitted_models_only() {
    let Some(python) = hf_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("registry");
    let (server, url, _log) = serve(&["--data".as_ref(), data.as_os_str()]);
    done_means(&url, &data, &python);
    drop(server);
}
