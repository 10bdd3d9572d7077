//! A progress bar on stderr for long scans (only when stderr is a terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bar(ProgressBar);

impl Bar {
    pub fn new() -> Self {
        let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} scanning {pos}/{len} bytes [{bar:30}] {binary_bytes_per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Bar(pb)
    }
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl assay_scan::Progress for Bar {
    fn start(&self, _files: u64, bytes: u64) {
        self.0.set_length(bytes);
    }
    fn file_done(&self, path: &str, bytes: u64) {
        self.0.inc(bytes);
        self.0.set_message(path.to_string());
    }
}
