//! Times loading an OSV database (bench/osv_load.sh drives it):
//!
//!     cargo run --release -p assay-advisories --example load_osv -- all.zip [RUNS]
//!
//! Prints the records and versions loaded and the fastest and median load time.

use assay_advisories::Database;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: load_osv PATH [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(5);
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let db = match Database::load(std::path::Path::new(&path)) {
            Ok(db) => db,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        };
        times.push(t.elapsed().as_secs_f64());
        last = Some(db);
    }
    let db = last.expect("one run");
    // One lookup, so that the index is used as a scan uses it.
    let t = Instant::now();
    let n = db.for_package("torch").count();
    let lookup = t.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    println!(
        "records {}  versions {}  problems {}  load fastest {:.3} s  median {:.3} s  lookup(torch: {n}) {:.1} us",
        db.len(),
        db.version_count(),
        db.problems.len(),
        times[0],
        times[times.len() / 2],
        lookup * 1e6
    );
}
