//! Prometheus metrics, kept by hand: a few counters with labels and two latency histograms
//! (the firewall's own time and the upstream's), rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Histogram bucket bounds in seconds: fine below a millisecond, where the firewall lives.
const BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];

pub struct Histogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in nanoseconds.
    sum_ns: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: BOUNDS.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BOUNDS.iter().position(|&b| s <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cum = 0;
        for (b, n) in BOUNDS.iter().zip(&self.buckets) {
            cum += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cum}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Counters keyed by their label values.
struct Counter {
    labels: &'static [&'static str],
    values: Mutex<BTreeMap<Vec<String>, u64>>,
}

impl Counter {
    fn new(labels: &'static [&'static str]) -> Counter {
        Counter {
            labels,
            values: Mutex::new(BTreeMap::new()),
        }
    }

    fn inc(&self, values: &[&str]) {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let mut m = self.values.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry(key).or_insert(0) += 1;
    }

    fn get(&self, values: &[&str]) -> u64 {
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let m = self.values.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&key).copied().unwrap_or(0)
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        let m = self.values.lock().unwrap_or_else(|p| p.into_inner());
        for (k, v) in m.iter() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .zip(k)
                .map(|(l, v)| format!("{l}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {v}", labels.join(","));
        }
    }
}

pub struct Metrics {
    requests: Counter,
    findings: Counter,
    upstream_errors: Counter,
    pub in_flight: AtomicI64,
    pub overhead: Histogram,
    pub upstream: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            requests: Counter::new(&["endpoint", "verdict"]),
            findings: Counter::new(&["rule", "action", "direction"]),
            upstream_errors: Counter::new(&["kind"]),
            in_flight: AtomicI64::new(0),
            overhead: Histogram::new(),
            upstream: Histogram::new(),
        }
    }

    /// One per request, with the request's final verdict (`block` if either side blocked).
    pub fn request(&self, endpoint: &str, verdict: &str) {
        self.requests.inc(&[endpoint, verdict]);
    }

    pub fn finding(&self, rule: &str, action: &str, direction: &str) {
        self.findings.inc(&[rule, action, direction]);
    }

    pub fn upstream_error(&self, kind: &str) {
        self.upstream_errors.inc(&[kind]);
    }

    pub fn findings_count(&self, rule: &str, action: &str, direction: &str) -> u64 {
        self.findings.get(&[rule, action, direction])
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.requests.render(
            "assay_firewall_requests_total",
            "Requests handled, by endpoint and final verdict.",
            &mut out,
        );
        self.findings.render(
            "assay_firewall_findings_total",
            "Scanner findings (blocks, redactions, allowed) by rule, action and direction.",
            &mut out,
        );
        self.upstream_errors.render(
            "assay_firewall_upstream_errors_total",
            "Upstream failures: unreachable, timeout, unparseable.",
            &mut out,
        );
        let _ = writeln!(
            out,
            "# HELP assay_firewall_in_flight Requests being handled.\n# TYPE assay_firewall_in_flight gauge\nassay_firewall_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        self.overhead.render(
            "assay_firewall_overhead_seconds",
            "Time the firewall itself spent on a request (total minus upstream).",
            &mut out,
        );
        self.upstream.render(
            "assay_firewall_upstream_seconds",
            "Upstream time: until the full body, or the first byte for streams.",
            &mut out,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.request("chat", "block");
        m.finding("FWL001", "block", "request");
        m.overhead.observe(Duration::from_micros(300));
        let t = m.render();
        assert!(t.contains("assay_firewall_requests_total{endpoint=\"chat\",verdict=\"block\"} 1"));
        assert!(t.contains("assay_firewall_findings_total{rule=\"FWL001\",action=\"block\",direction=\"request\"} 1"));
        assert!(t.contains("assay_firewall_overhead_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(t.contains("assay_firewall_overhead_seconds_count 1"));
    }
}
