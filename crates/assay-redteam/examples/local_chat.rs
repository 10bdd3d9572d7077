//! Load a GGUF chat model and answer a few prompts, printing tokens per second.
//! `cargo run --release -p assay-redteam --features local-model --example local_chat -- MODEL.gguf [MAX_TOKENS]`
use assay_redteam::local::{LocalModel, Sampling};
use assay_redteam::openai::ChatMessage;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: local_chat MODEL.gguf [MAX_TOKENS]")?;
    let max_tokens = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let t = Instant::now();
    let mut m = LocalModel::load(path.as_ref())?;
    if let Ok(t) = std::env::var("LOCAL_CHAT_TOKENS") {
        println!("{:?}", m.prompt_ids(&[ChatMessage::new("user", t)]));
        return Ok(());
    }
    println!("loaded {} in {:.2}s", m.name, t.elapsed().as_secs_f64());
    let prompts = [
        "What is the capital of France?",
        "Write a haiku about the sea.",
        "Give me three tips for staying healthy.",
    ];
    let (mut ptok, mut psec, mut gtok, mut gsec) = (0, 0.0, 0, 0.0);
    for p in prompts {
        let s = Sampling {
            max_tokens,
            temperature: 0.0,
            top_p: None,
            seed: 1,
        };
        let c = m.complete(&[ChatMessage::new("user", p)], &s, |_| {})?;
        println!(
            "> {p}\n{}\n[{} prompt tokens in {:.2}s, {} tokens in {:.2}s, {}]\n",
            c.text.trim(),
            c.prompt_tokens,
            c.prompt_secs,
            c.completion_tokens,
            c.gen_secs,
            c.finish_reason
        );
        ptok += c.prompt_tokens;
        psec += c.prompt_secs;
        gtok += c.completion_tokens;
        gsec += c.gen_secs;
    }
    println!(
        "prompt: {:.1} tokens/s, generation: {:.1} tokens/s",
        ptok as f64 / psec,
        gtok as f64 / gsec
    );
    Ok(())
}
