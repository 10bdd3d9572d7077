//! Time per call of the request-side pieces on the benchmark's 2 KB chat request:
//! `cargo run --release -p assay-firewall --example scan_speed [ROUNDS]`.
//! (The end-to-end latency figures come from `bench/run.sh`.)

use assay_firewall::Policy;
use assay_firewall::scan::classifier::normalize;
use assay_firewall::scan::leak::PromptIndex;
use assay_firewall::scan::tactics::Tactics;
use assay_firewall::scan::{Role, Scanners};
use std::hint::black_box;
use std::time::Instant;

fn time(name: &str, rounds: usize, mut f: impl FnMut()) {
    f();
    let t = Instant::now();
    for _ in 0..rounds {
        f();
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    println!("{name:<40} {per:>8.1} µs");
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let body: serde_json::Value = serde_json::from_str(include_str!("../bench/chat_2kb.json"))
        .expect("bench request is JSON");
    let text = |role: &str| -> String {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == role)
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let (user, system) = (text("user"), text("system"));
    let s = Scanners::new(Policy::default());
    let tactics = Tactics::new();
    let norm = normalize(&user);
    println!(
        "user turn {} bytes, system prompt {} bytes",
        user.len(),
        system.len()
    );
    time("scan_input(user turn), all scanners", rounds, || {
        black_box(s.scan_input(black_box(&user), Role::User));
    });
    let mut p = Policy::default();
    p.injection.rules = false;
    let no_rules = Scanners::new(p);
    time("scan_input(user turn), phrase rules off", rounds, || {
        black_box(no_rules.scan_input(black_box(&user), Role::User));
    });
    time("tactics (whole user turn)", rounds, || {
        black_box(tactics.find(black_box(&user), &norm, &|_| false));
    });
    time("normalize(user turn)", rounds, || {
        black_box(normalize(black_box(&user)));
    });
    time("PromptIndex::new(system prompt)", rounds, || {
        black_box(PromptIndex::new(black_box(&system), 5, 16));
    });
    let idx = PromptIndex::new(&system, 5, 16);
    time("PromptIndex::find(user turn as reply)", rounds, || {
        black_box(idx.as_ref().map(|i| i.find(black_box(&user))));
    });
}
