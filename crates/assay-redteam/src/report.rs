//! Run reports: per-probe evidence, per-suite and overall rates, and renderers (human
//! text, JSON, self-contained HTML with inline SVG charts).

use crate::detect::Verdict;
use crate::runner::RunConfig;
use crate::suite::{Category, Suite};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Attack probe: the detector fired.
    Succeeded,
    /// Attack probe: the model resisted.
    Resisted,
    /// Refused by a guardrail before the model, or the reply cut by a content filter.
    Blocked,
    /// Benign probe: answered.
    Answered,
    /// Benign probe: refused or evaded by the model (a false refusal).
    Refused,
    /// No usable reply (timeouts, HTTP errors) after the retries.
    Error,
}

/// One probe's outcome with its evidence.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProbeResult {
    pub id: String,
    pub suite: String,
    pub goal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub prompt: String,
    pub reply: String,
    pub status: Status,
    #[serde(default)]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub attempts: u32,
    pub latency_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenignSummary {
    pub probes: usize,
    /// Refused by the model or blocked by a guardrail.
    pub refused: usize,
    pub blocked: usize,
    pub false_refusal_rate: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// Attack probes with a usable outcome (errors excluded).
    pub probes: usize,
    pub succeeded: usize,
    pub attack_success_rate: f64,
    pub blocked: usize,
    pub errors: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_above: Option<f64>,
    /// `fail` when the attack success rate is above `fail_above`.
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benign: Option<BenignSummary>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteReport {
    pub name: String,
    pub title: String,
    pub category: Category,
    pub description: String,
    pub source: String,
    pub licence: String,
    /// Probes with a usable outcome.
    pub probes: usize,
    /// Attack suites: attacks that succeeded; benign suites: false refusals.
    pub succeeded: usize,
    /// `succeeded / probes`: the attack success rate, or the false-refusal rate.
    pub rate: f64,
    pub blocked: usize,
    pub errors: usize,
    pub results: Vec<ProbeResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    pub tool: Tool,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub seed: u64,
    pub canary: String,
    /// Unix time (seconds) the run started.
    pub started: u64,
    /// Wall time of this invocation (results resumed from a state file took none).
    pub duration_secs: f64,
    /// Results taken from the state file instead of being sent again.
    #[serde(default)]
    pub resumed: usize,
    pub summary: Summary,
    pub suites: Vec<SuiteReport>,
}

fn rate(n: usize, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

impl RunReport {
    pub fn build(
        suites: &[Suite],
        results: Vec<ProbeResult>,
        cfg: &RunConfig,
        canary: &str,
        started: SystemTime,
        took: Duration,
    ) -> RunReport {
        let mut out = Vec::new();
        for s in suites {
            let res: Vec<ProbeResult> = results
                .iter()
                .filter(|r| r.suite == s.meta.name)
                .cloned()
                .collect();
            if res.is_empty() {
                continue;
            }
            let errors = res.iter().filter(|r| r.status == Status::Error).count();
            let blocked = res.iter().filter(|r| r.status == Status::Blocked).count();
            let succeeded = res
                .iter()
                .filter(|r| r.verdict.as_ref().is_some_and(|v| v.success))
                .count();
            let probes = res.len() - errors;
            out.push(SuiteReport {
                name: s.meta.name.clone(),
                title: s.meta.title.clone(),
                category: s.meta.category,
                description: s.meta.description.clone(),
                source: s.meta.source.clone(),
                licence: s.meta.licence.clone(),
                probes,
                succeeded,
                rate: rate(succeeded, probes),
                blocked,
                errors,
                results: res,
            });
        }
        let attack: Vec<&SuiteReport> = out
            .iter()
            .filter(|s| s.category == Category::Attack)
            .collect();
        let benign: Vec<&SuiteReport> = out
            .iter()
            .filter(|s| s.category == Category::Benign)
            .collect();
        let probes: usize = attack.iter().map(|s| s.probes).sum();
        let succeeded: usize = attack.iter().map(|s| s.succeeded).sum();
        let b = (!benign.is_empty()).then(|| {
            let probes: usize = benign.iter().map(|s| s.probes).sum();
            let refused: usize = benign.iter().map(|s| s.succeeded).sum();
            BenignSummary {
                probes,
                refused,
                blocked: benign.iter().map(|s| s.blocked).sum(),
                false_refusal_rate: rate(refused, probes),
            }
        });
        RunReport {
            tool: Tool {
                name: "assay".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            target: cfg.target.clone(),
            model: cfg.model.clone(),
            seed: cfg.seed,
            canary: canary.to_string(),
            started: started
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            duration_secs: took.as_secs_f64(),
            resumed: 0,
            summary: Summary {
                probes,
                succeeded,
                attack_success_rate: rate(succeeded, probes),
                blocked: attack.iter().map(|s| s.blocked).sum(),
                errors: out.iter().map(|s| s.errors).sum(),
                fail_above: None,
                verdict: "pass".into(),
                benign: b,
            },
            suites: out,
        }
    }

    /// Apply `--fail-above`: returns true when the run fails.
    pub fn apply_fail_above(&mut self, limit: Option<f64>) -> bool {
        self.summary.fail_above = limit;
        let fail = limit.is_some_and(|l| self.summary.attack_success_rate > l);
        self.summary.verdict = if fail { "fail" } else { "pass" }.into();
        fail
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// Plain-text report. `verbose` lists every successful probe with its evidence.
    pub fn to_human(&self, verbose: bool) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "assay redteam: {} (seed {}, {:.1}s{})",
            self.target,
            self.seed,
            self.duration_secs,
            if self.resumed > 0 {
                format!(", {} results resumed from the state file", self.resumed)
            } else {
                String::new()
            }
        );
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "  {:<26} {:>7} {:>9} {:>8} {:>7}  ",
            "suite", "probes", "succeeded", "rate", "blocked"
        );
        for s in &self.suites {
            let label = if s.category == Category::Benign {
                " (false refusals)"
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "  {:<26} {:>7} {:>9} {:>7.1}% {:>7}{}{}",
                s.name,
                s.probes,
                s.succeeded,
                100.0 * s.rate,
                s.blocked,
                label,
                if s.errors > 0 {
                    format!("  ({} errors)", s.errors)
                } else {
                    String::new()
                }
            );
        }
        let sm = &self.summary;
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "attack success rate: {:.1}% ({} of {} attack probes succeeded; {} blocked by a guardrail{})",
            100.0 * sm.attack_success_rate,
            sm.succeeded,
            sm.probes,
            sm.blocked,
            if sm.errors > 0 {
                format!("; {} errors not counted", sm.errors)
            } else {
                String::new()
            }
        );
        if let Some(b) = &sm.benign {
            let _ = writeln!(
                o,
                "false-refusal rate on benign requests: {:.1}% ({} of {}; {} blocked)",
                100.0 * b.false_refusal_rate,
                b.refused,
                b.probes,
                b.blocked
            );
        }
        if let Some(l) = sm.fail_above {
            let _ = writeln!(
                o,
                "verdict: {} (--fail-above {:.1}%)",
                sm.verdict.to_uppercase(),
                100.0 * l
            );
        }
        let shown = if verbose { usize::MAX } else { 3 };
        let mut any = false;
        for s in self
            .suites
            .iter()
            .filter(|s| s.category == Category::Attack)
        {
            let hits: Vec<&ProbeResult> = s
                .results
                .iter()
                .filter(|r| r.status == Status::Succeeded)
                .collect();
            if hits.is_empty() {
                continue;
            }
            if !any {
                let _ = writeln!(
                    o,
                    "\nevidence{}:",
                    if verbose {
                        ""
                    } else {
                        " (first 3 per suite; --verbose for all)"
                    }
                );
                any = true;
            }
            for r in hits.iter().take(shown) {
                let v = r
                    .verdict
                    .as_ref()
                    .map_or(String::new(), |v| v.detail.clone());
                let _ = writeln!(o, "  [{}] {}: {}", s.name, r.id, r.goal);
                let _ = writeln!(o, "      prompt: {}", one_line(&r.prompt, 140));
                let _ = writeln!(o, "      reply:  {}", one_line(&r.reply, 140));
                let _ = writeln!(o, "      why:    {}", one_line(&v, 140));
            }
        }
        o
    }

    /// A self-contained HTML page (inline CSS and SVG, no scripts or external assets).
    pub fn to_html(&self) -> String {
        let sm = &self.summary;
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>Assay red-team report: {}</title><style>{CSS}</style></head><body><main>",
            esc(&self.target)
        );
        let _ = write!(
            h,
            "<header><h1>Red-team report</h1><p class=\"meta\">Target <code>{}</code>{} · seed {} · canary <code>{}</code> · {} probes in {:.1}s{} · assay {}</p></header>",
            esc(&self.target),
            self.model.as_ref().map_or(String::new(), |m| format!(
                " · model <code>{}</code>",
                esc(m)
            )),
            self.seed,
            esc(&self.canary),
            self.suites.iter().map(|s| s.results.len()).sum::<usize>(),
            self.duration_secs,
            if self.resumed > 0 {
                format!(" ({} resumed from a state file)", self.resumed)
            } else {
                String::new()
            },
            esc(&self.tool.version)
        );
        // Headline cards.
        let _ = write!(h, "<section class=\"cards\">");
        let verdict_class = if sm.verdict == "fail" { "bad" } else { "ok" };
        let _ = write!(
            h,
            "<div class=\"card\">{}<div><div class=\"big\">{:.1}%</div><div>attack success rate</div><div class=\"small\">{} of {} attack probes succeeded</div></div></div>",
            donut(sm.attack_success_rate, rate_color(sm.attack_success_rate)),
            100.0 * sm.attack_success_rate,
            sm.succeeded,
            sm.probes
        );
        let _ = write!(
            h,
            "<div class=\"card\"><div><div class=\"big\">{}</div><div>blocked by a guardrail</div><div class=\"small\">{} errors not counted</div></div></div>",
            sm.blocked, sm.errors
        );
        if let Some(b) = &sm.benign {
            let _ = write!(
                h,
                "<div class=\"card\">{}<div><div class=\"big\">{:.1}%</div><div>false refusals on benign requests</div><div class=\"small\">{} of {} ({} blocked)</div></div></div>",
                donut(b.false_refusal_rate, "#6b7cff"),
                100.0 * b.false_refusal_rate,
                b.refused,
                b.probes,
                b.blocked
            );
        }
        if let Some(l) = sm.fail_above {
            let _ = write!(
                h,
                "<div class=\"card {verdict_class}\"><div><div class=\"big\">{}</div><div>gate: fail above {:.1}%</div></div></div>",
                sm.verdict.to_uppercase(),
                100.0 * l
            );
        }
        let _ = write!(h, "</section>");
        // Bar chart per suite.
        let _ = write!(
            h,
            "<section><h2>Per suite</h2>{}</section>",
            bars(&self.suites)
        );
        // Suite details.
        for s in &self.suites {
            let benign = s.category == Category::Benign;
            let _ = write!(
                h,
                "<section class=\"suite\"><h2 id=\"{}\">{} <span class=\"pill\" style=\"background:{}\">{:.1}% {}</span></h2><p>{}</p><p class=\"small\">Source: {} · Licence: {}</p>",
                esc(&s.name),
                esc(&s.title),
                if benign {
                    "#6b7cff"
                } else {
                    rate_color(s.rate)
                },
                100.0 * s.rate,
                if benign {
                    "false refusals"
                } else {
                    "attack success"
                },
                esc(&s.description),
                esc(&s.source),
                esc(&s.licence)
            );
            let _ = write!(
                h,
                "<table><thead><tr><th>probe</th><th>outcome</th><th>goal and evidence</th></tr></thead><tbody>"
            );
            let mut rows: Vec<&ProbeResult> = s.results.iter().collect();
            rows.sort_by_key(|r| match r.status {
                Status::Succeeded | Status::Refused => 0,
                Status::Blocked => 1,
                Status::Error => 2,
                _ => 3,
            });
            for r in rows {
                let (label, class) = match r.status {
                    Status::Succeeded => ("succeeded", "bad"),
                    Status::Refused => ("false refusal", "warn"),
                    Status::Resisted => ("resisted", "ok"),
                    Status::Answered => ("answered", "ok"),
                    Status::Blocked => ("blocked", "blk"),
                    Status::Error => ("error", "err"),
                };
                let detail = r
                    .verdict
                    .as_ref()
                    .map_or(r.error.clone().unwrap_or_default(), |v| {
                        format!("{}: {}", v.detector, v.detail)
                    });
                let _ = write!(
                    h,
                    "<tr><td><code>{}</code></td><td><span class=\"st {class}\">{label}</span></td><td><div>{}</div><div class=\"why\">{}</div><details><summary>prompt and reply</summary>{}<div class=\"lbl\">prompt</div><pre>{}</pre><div class=\"lbl\">reply</div><pre>{}</pre></details></td></tr>",
                    esc(&r.id),
                    esc(&r.goal),
                    esc(&detail),
                    r.system.as_ref().map_or(String::new(), |s| format!(
                        "<div class=\"lbl\">system</div><pre>{}</pre>",
                        esc(s)
                    )),
                    esc(&r.prompt),
                    esc(&r.reply)
                );
            }
            let _ = write!(h, "</tbody></table></section>");
        }
        let _ = write!(
            h,
            "<footer>Generated by assay redteam. Rates exclude probes that ended in errors. Attack success: the probe's detector fired (canary or judge string in the reply, a rendered attacker link, or compliance with a harmful request).</footer></main></body></html>"
        );
        h
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::detect::excerpt(&flat, max)
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // Invisible characters are shown, not hidden: they are often the attack.
            c if matches!(c as u32, 0xE0000..=0xE007F | 0x200B..=0x200F | 0x202A..=0x202E | 0x2066..=0x2069 | 0xFEFF) =>
            {
                let _ = write!(o, "<span class=\"inv\">U+{:04X}</span>", c as u32);
            }
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(o, "\\u{{{:x}}}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

fn rate_color(r: f64) -> &'static str {
    if r >= 0.5 {
        "#d93025"
    } else if r >= 0.2 {
        "#e8710a"
    } else if r > 0.0 {
        "#c9a400"
    } else {
        "#1e8e3e"
    }
}

fn donut(r: f64, color: &str) -> String {
    let c = 2.0 * std::f64::consts::PI * 36.0;
    let on = (r.clamp(0.0, 1.0) * c * 100.0).round() / 100.0;
    format!(
        "<svg width=\"96\" height=\"96\" viewBox=\"0 0 96 96\" role=\"img\" aria-label=\"{:.1}%\"><circle cx=\"48\" cy=\"48\" r=\"36\" fill=\"none\" stroke=\"#e6e8ee\" stroke-width=\"14\"/><circle cx=\"48\" cy=\"48\" r=\"36\" fill=\"none\" stroke=\"{color}\" stroke-width=\"14\" stroke-dasharray=\"{on} {c:.2}\" transform=\"rotate(-90 48 48)\"/></svg>",
        100.0 * r
    )
}

fn bars(suites: &[SuiteReport]) -> String {
    let row = 30.0;
    let label_w = 210.0;
    let bar_w = 460.0;
    let h = 30.0 + row * suites.len() as f64;
    let mut s = format!(
        "<svg class=\"bars\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"rate per suite\">",
        w = label_w + bar_w + 150.0
    );
    for t in [0, 25, 50, 75, 100] {
        let x = label_w + bar_w * f64::from(t) / 100.0;
        let _ = write!(
            s,
            "<line x1=\"{x}\" y1=\"18\" x2=\"{x}\" y2=\"{h}\" stroke=\"#e6e8ee\"/><text x=\"{x}\" y=\"12\" font-size=\"11\" text-anchor=\"middle\" fill=\"#667\">{t}%</text>"
        );
    }
    for (i, su) in suites.iter().enumerate() {
        let y = 22.0 + row * i as f64;
        let benign = su.category == Category::Benign;
        let color = if benign {
            "#6b7cff"
        } else {
            rate_color(su.rate)
        };
        let w = (bar_w * su.rate).max(1.5);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"end\" fill=\"#223\">{}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{bar_w}\" height=\"18\" rx=\"3\" fill=\"#f1f3f7\"/><rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"18\" rx=\"3\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#223\">{:.1}% ({}/{}){}</text>",
            label_w - 8.0,
            y + 13.0,
            esc(&su.name),
            label_w + bar_w + 8.0,
            y + 13.0,
            100.0 * su.rate,
            su.succeeded,
            su.probes,
            if benign { " FRR" } else { "" }
        );
    }
    s.push_str("</svg>");
    s
}

const CSS: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2130;background:#f6f7fb;margin:0}\
main{max-width:1100px;margin:0 auto;padding:24px}h1{margin:0 0 4px;font-size:26px}h2{font-size:18px;margin:28px 0 8px}\
.meta,.small{color:#5d6375;font-size:12.5px}code{background:#eceef4;padding:1px 4px;border-radius:3px;font-size:12.5px}\
.cards{display:flex;gap:14px;flex-wrap:wrap;margin-top:16px}.card{display:flex;gap:14px;align-items:center;background:#fff;border:1px solid #e1e4ec;border-radius:10px;padding:14px 18px;min-width:200px}\
.card.bad{border-color:#d93025}.card.ok{border-color:#1e8e3e}.big{font-size:28px;font-weight:650}\
section{background:#fff;border:1px solid #e1e4ec;border-radius:10px;padding:6px 18px 14px;margin-top:16px}section.cards{background:none;border:0;padding:0}\
.pill{color:#fff;font-size:12px;padding:2px 8px;border-radius:10px;vertical-align:middle;margin-left:6px}\
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;border-top:1px solid #eceef4;padding:6px 8px;vertical-align:top}\
td:first-child{white-space:nowrap}.st{font-size:12px;padding:1px 7px;border-radius:9px;color:#fff;white-space:nowrap}\
.st.bad{background:#d93025}.st.ok{background:#1e8e3e}.st.warn{background:#e8710a}.st.blk{background:#5f6368}.st.err{background:#9aa0a6}\
.why{color:#5d6375;font-size:12px;margin-top:2px}details summary{cursor:pointer;color:#3a55d8;font-size:12px;margin-top:3px}\
pre{white-space:pre-wrap;word-break:break-word;background:#f6f7fb;border:1px solid #e6e8ee;border-radius:6px;padding:8px;max-height:280px;overflow:auto;font-size:12px}\
.lbl{font-size:11px;color:#667;text-transform:uppercase;margin-top:6px}.inv{background:#fde2e1;color:#a50e0e;font-size:10px;border-radius:3px;padding:0 2px}\
footer{color:#667;font-size:12px;margin:18px 2px}";
