#![no_main]
use assay_formats::savedmodel::{
    TfLimits, asset_files, parse_graph_def, parse_keras_metadata, parse_saved_model, sniff,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sniff(data);
    let limits = TfLimits::default();
    if let Ok(sm) = parse_saved_model(data, &limits) {
        for mg in &sm.meta_graphs {
            let _ = asset_files(mg);
        }
    }
    let _ = parse_graph_def(data, &limits);
    let _ = parse_keras_metadata(data, &limits);
});
