use crate::{Report, Severity, Verdict};
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, Default)]
pub struct HumanOptions {
    /// ANSI colours (only when writing to a terminal).
    pub color: bool,
    /// Only the summary line and findings at or above `fail_on`.
    pub quiet: bool,
}

fn paint(color: bool, sev: Severity, text: &str) -> String {
    if !color {
        return text.to_string();
    }
    let code = match sev {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Plain text for people: one block per finding, worst first, then a summary.
pub fn render_human(report: &Report, opts: HumanOptions, out: &mut dyn Write) -> io::Result<()> {
    let fail_on = report.summary.fail_on;
    for f in &report.findings {
        if opts.quiet && f.severity < fail_on {
            continue;
        }
        let mut place = f.path.clone();
        if let Some(m) = &f.member {
            place.push_str("!/");
            place.push_str(m);
        }
        if let Some(o) = f.offset {
            place.push_str(&format!(" @{o}"));
        }
        let sev = paint(
            opts.color,
            f.severity,
            &format!("{:<8}", f.severity.as_str()),
        );
        writeln!(out, "{sev} {} [{}] {}", f.rule, f.stage, place)?;
        writeln!(out, "         {}", f.message)?;
        if let Some(e) = &f.evidence {
            writeln!(out, "         evidence: {}", one_line(e, 300))?;
        }
    }
    let s = &report.summary;
    if !(report.findings.is_empty() || opts.quiet && s.verdict == Verdict::Pass) {
        writeln!(out)?;
    }
    let counts: Vec<String> = Severity::ALL
        .iter()
        .map(|sev| format!("{} {}", s.findings.get(sev).copied().unwrap_or(0), sev))
        .collect();
    let verdict = match s.verdict {
        Verdict::Pass => paint(opts.color, Severity::Info, "PASS"),
        Verdict::Fail => paint(opts.color, Severity::Critical, "FAIL"),
    };
    writeln!(
        out,
        "{verdict}: {} file(s), {} scanned; findings: {} (fail on {fail_on} and above)",
        s.files_scanned,
        human_bytes(s.bytes_scanned),
        counts.join(", ")
    )?;
    if !opts.quiet {
        let incomplete: Vec<&str> = s
            .stages
            .iter()
            .filter(|(_, st)| **st != crate::StageStatus::Complete)
            .map(|(stage, _)| stage.as_str())
            .collect();
        if !incomplete.is_empty() {
            writeln!(
                out,
                "stages not complete: {} (see `summary.stages` in --format json)",
                incomplete.join(", ")
            )?;
        }
    }
    Ok(())
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
