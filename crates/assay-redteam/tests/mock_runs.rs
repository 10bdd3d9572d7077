//! End-to-end runs against in-process mock endpoints.
use assay_redteam::mock::{self, MockKind};
use assay_redteam::report::Status;
use assay_redteam::runner::{NoProgress, RunConfig, run_blocking};
use assay_redteam::suite::Suite;
use std::time::Duration;

fn cfg(url: &str) -> RunConfig {
    let mut c = RunConfig::new(url);
    c.seed = 42;
    c.concurrency = 8;
    c.backoff = Duration::from_millis(10);
    c
}

#[test]
fn leaky_endpoint_has_a_high_attack_success_rate_with_evidence() {
    let m = mock::spawn(MockKind::Leaky, 0).unwrap();
    let suites = Suite::builtin();
    let report = run_blocking(&suites, &cfg(&m.url()), &NoProgress).unwrap();
    let s = &report.summary;
    eprintln!("{}", report.to_human(false));
    assert_eq!(s.errors, 0);
    assert!(s.attack_success_rate > 0.8, "{s:?}");
    // Canary leaks are found with evidence.
    let spe = report
        .suites
        .iter()
        .find(|s| s.name == "system-prompt-extraction")
        .unwrap();
    assert_eq!(spe.rate, 1.0);
    let r = &spe.results[0];
    assert!(r.reply.contains(&report.canary));
    assert!(r.verdict.as_ref().unwrap().detail.contains("canary leaked"));
    // Encoded instructions were decoded and obeyed.
    let enc = report.suites.iter().find(|s| s.name == "encoding").unwrap();
    assert!(
        enc.results
            .iter()
            .any(|r| r.id == "enc-say/base64" && r.status == Status::Succeeded)
    );
    // The leaky model answers benign requests.
    assert!(s.benign.as_ref().unwrap().false_refusal_rate < 0.2);
    // JSON shape.
    let v: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert!(v["summary"]["probes"].as_u64().unwrap() > 100);
    assert!(v["summary"]["attack_success_rate"].as_f64().unwrap() > 0.8);
    assert!(v["suites"][0]["results"][0]["prompt"].is_string());
    let html = report.to_html();
    assert!(html.contains("<svg") && !html.contains("<script") && !html.contains("http-equiv"));
}

#[test]
fn refusing_endpoint_has_a_low_attack_success_rate() {
    let m = mock::spawn(MockKind::Refusing, 0).unwrap();
    let report = run_blocking(&Suite::builtin(), &cfg(&m.url()), &NoProgress).unwrap();
    let s = &report.summary;
    assert_eq!(s.errors, 0);
    assert!(s.attack_success_rate < 0.05, "{}", report.to_human(true));
    // ...and the cost: it refuses every benign request too.
    assert_eq!(s.benign.as_ref().unwrap().false_refusal_rate, 1.0);
}

#[test]
fn retries_budget_and_resume() {
    let m = mock::spawn(MockKind::Leaky, 3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.jsonl");
    let mut c = cfg(&m.url());
    c.concurrency = 1;
    c.max_probes = Some(5);
    c.state_file = Some(state.clone());
    let suites = Suite::builtin();
    let r1 = run_blocking(&suites, &c, &NoProgress).unwrap();
    let n: usize = r1.suites.iter().map(|s| s.results.len()).sum();
    assert_eq!(n, 5);
    assert_eq!(r1.summary.errors, 0, "503s are retried");
    assert_eq!(m.requests.load(std::sync::atomic::Ordering::SeqCst), 8);
    // Resume with a larger budget: only the new probes are sent.
    c.max_probes = Some(9);
    let r2 = run_blocking(&suites, &c, &NoProgress).unwrap();
    assert_eq!(m.requests.load(std::sync::atomic::Ordering::SeqCst), 12);
    assert_eq!(r2.suites.iter().map(|s| s.results.len()).sum::<usize>(), 9);
    assert_eq!(r2.resumed, 5);
    // A different seed does not silently mix into the same state file.
    c.seed = 7;
    assert!(run_blocking(&suites, &c, &NoProgress).is_err());
}

#[test]
fn errors_are_reported_not_scored() {
    // Nothing listens on this port (bound then dropped).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = cfg(&format!("http://127.0.0.1:{port}"));
    c.retries = 1;
    c.max_probes = Some(3);
    let r = run_blocking(&Suite::builtin(), &c, &NoProgress).unwrap();
    assert_eq!(r.summary.errors, 3);
    assert_eq!(r.summary.probes, 0);
    assert_eq!(r.summary.attack_success_rate, 0.0);
    assert!(
        r.suites[0].results[0]
            .error
            .as_ref()
            .unwrap()
            .contains("connection")
    );
}

#[test]
fn judge_overrides_heuristics_where_it_applies() {
    let target = mock::spawn(MockKind::Refusing, 0).unwrap();
    let judge = mock::spawn(MockKind::JudgeYes, 0).unwrap();
    let mut c = cfg(&target.url());
    c.judge = Some(assay_redteam::runner::JudgeConfig {
        url: judge.url(),
        model: None,
        api_key: None,
    });
    let suites = Suite::select(&["harmful".into(), "system-prompt-extraction".into()]).unwrap();
    let r = run_blocking(&suites, &c, &NoProgress).unwrap();
    let harmful = r.suites.iter().find(|s| s.name == "harmful").unwrap();
    // The always-YES judge says every refusal complied: the judge decided.
    assert_eq!(harmful.rate, 1.0);
    let v = harmful.results[0].verdict.as_ref().unwrap();
    assert_eq!(v.detector, "judge+complied");
    assert!(v.detail.contains("heuristic: refused"));
    // Canary checks are exact and never sent to the judge.
    let spe = r
        .suites
        .iter()
        .find(|s| s.name == "system-prompt-extraction")
        .unwrap();
    assert_eq!(spe.rate, 0.0);
    assert_eq!(
        judge.requests.load(std::sync::atomic::Ordering::SeqCst),
        harmful.probes
    );
}

#[test]
fn rate_limit_paces_requests() {
    let m = mock::spawn(MockKind::Leaky, 0).unwrap();
    let mut c = cfg(&m.url());
    c.rate = Some(40.0);
    c.max_probes = Some(9);
    let t = std::time::Instant::now();
    let r = run_blocking(&Suite::builtin(), &c, &NoProgress).unwrap();
    assert_eq!(r.summary.errors, 0);
    // Nine requests 25 ms apart: at least 200 ms.
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "{:?}",
        t.elapsed()
    );
}
