//! Agreement of the refusal detector with the human labels shipped in PyRIT 1.1.0.
//! The thresholds are floors well under the measured figures (README "Red teaming"),
//! so a regression in the detector fails here.
use assay_redteam::refusal::{
    self, PYRIT_REFUSAL, PYRIT_REFUSAL_EXTRA, evaluate, evaluate_with, parse_labelled_csv,
};

#[test]
fn refusal_detector_agrees_with_human_labels() {
    let mut all = parse_labelled_csv(PYRIT_REFUSAL);
    let extra = parse_labelled_csv(PYRIT_REFUSAL_EXTRA);
    all.extend(extra.iter().cloned());
    let ours = evaluate(&all, true);
    let no_obj = evaluate(&all, false);
    let base = evaluate_with(&all, |l| refusal::substring_baseline(&l.response));
    let held = evaluate(&extra, true);
    eprintln!(
        "detector (with objective): {ours:?}\ndetector (reply only): {no_obj:?}\nsubstring baseline: {base:?}\nheld-out refusal_extra.csv: {held:?}"
    );
    assert_eq!(ours.examples, 169);
    assert!(ours.accuracy >= 0.85, "{ours:?}");
    assert!(ours.precision >= 0.85 && ours.recall >= 0.80, "{ours:?}");
    assert!(ours.accuracy > base.accuracy + 0.1, "{ours:?} vs {base:?}");
}
