//! Print the refusal detector's agreement with PyRIT's human labels, and the disagreements.
//! `cargo run -p assay-redteam --example refusal_eval [-- --errors]`
use assay_redteam::refusal::*;

fn main() {
    let show = std::env::args().any(|a| a == "--errors");
    for (name, text) in [
        ("refusal.csv", PYRIT_REFUSAL),
        ("refusal_extra.csv", PYRIT_REFUSAL_EXTRA),
    ] {
        let data = parse_labelled_csv(text);
        let a = evaluate(&data, true);
        let r = evaluate(&data, false);
        let b = evaluate_with(&data, |l| substring_baseline(&l.response));
        println!(
            "{name}: {} examples ({} refusals)",
            data.len(),
            data.iter().filter(|l| l.refused).count()
        );
        for (what, m) in [
            ("detector + objective", a),
            ("detector, reply only", r),
            ("substring baseline", b),
        ] {
            println!(
                "  {what:<22} accuracy {:.3} precision {:.3} recall {:.3} f1 {:.3}",
                m.accuracy, m.precision, m.recall, m.f1
            );
        }
        if show {
            for l in &data {
                let v = classify(&l.response, Some(&l.objective));
                if v.refused != l.refused {
                    println!(
                        "  MISS human={} score={:.2} {:?} rel={:?}\n    obj: {}\n    rep: {:?}",
                        l.refused,
                        v.score,
                        v.reasons,
                        relevance(&l.objective, &l.response),
                        l.objective,
                        l.response.chars().take(160).collect::<String>()
                    );
                }
            }
        }
    }
}
