//! Progress of a long command (`train`, `eval`, `calibrate`, `data synth`): a bar on a terminal,
//! and where stderr is not one (a log file, nohup, CI, a container) a plain line every
//! [`EVERY`] (the first update at once; `label: 120/4000 (3 %), loss 2.31, 14.2 samples/s, 1m40s elapsed, 53m left`), so
//! that a log shows the run moving. Lines printed beside the bar reach stderr either way.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain line is written when stderr is not a terminal.
pub const EVERY: Duration = Duration::from_secs(10);

/// A progress report over `total` units of work.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Mutex<Plain>,
}

struct Plain {
    label: String,
    total: u64,
    first: u64,
    pos: u64,
    msg: String,
    start: Instant,
    /// When the last plain line was written (none yet: the first update writes one).
    last: Option<Instant>,
}

/// `95s` -> `1m35s`, `4000s` -> `1h06m`.
fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

impl Plain {
    fn line(&self) -> String {
        let elapsed = self.start.elapsed();
        let done = self.pos.saturating_sub(self.first);
        let left = if done > 0 && self.total > self.pos {
            let per = elapsed.as_secs_f64() / done as f64;
            format!(
                ", {} left",
                span(Duration::from_secs_f64(
                    per * (self.total - self.pos) as f64
                ))
            )
        } else {
            String::new()
        };
        let pct = (100 * self.pos).checked_div(self.total).unwrap_or(100);
        let msg = if self.msg.is_empty() {
            String::new()
        } else {
            format!(", {}", self.msg)
        };
        format!(
            "{}: {}/{} ({pct} %){msg}, {} elapsed{left}",
            self.label,
            self.pos,
            self.total,
            span(elapsed)
        )
    }
}

impl Progress {
    /// A report named `label` over `total` units, starting at `pos` (a resumed run).
    pub fn new(label: &str, total: u64, pos: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total).with_position(pos);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} {bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}]",
                )
                .expect("a valid template"),
            );
            bar.set_prefix(label.to_string());
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            plain: Mutex::new(Plain {
                label: label.into(),
                total,
                first: pos,
                pos,
                msg: String::new(),
                start: now,
                last: None,
            }),
        }
    }

    fn plain(&self) -> std::sync::MutexGuard<'_, Plain> {
        self.plain.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the plain line when stderr is no terminal and [`EVERY`] has passed.
    fn tick(&self, p: &mut Plain) {
        if self.bar.is_none() && p.last.is_none_or(|t| t.elapsed() >= EVERY) {
            p.last = Some(Instant::now());
            eprintln!("{}", p.line());
        }
    }

    pub fn set_position(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
        let mut p = self.plain();
        p.pos = pos;
        self.tick(&mut p);
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
        let mut p = self.plain();
        p.pos += n;
        self.tick(&mut p);
    }

    /// What follows the count (loss, rate): on the bar, and in the next plain line.
    pub fn set_message(&self, msg: String) {
        if let Some(b) = &self.bar {
            b.set_message(msg.clone());
        }
        self.plain().msg = msg;
    }

    /// A line of its own (a validation score), above the bar or in the log.
    pub fn println(&self, line: String) {
        match &self.bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// The end: the bar is cleared; a log gets the last count.
    pub fn finish(&self) {
        match &self.bar {
            Some(b) => b.finish_and_clear(),
            None => eprintln!("{}", self.plain().line()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_count_and_estimate_what_is_left() {
        assert_eq!(span(Duration::from_secs(95)), "1m35s");
        assert_eq!(span(Duration::from_secs(4000)), "1h06m");
        let p = Progress::new("train", 100, 20);
        p.set_position(60);
        p.set_message("loss 1.5".into());
        let line = p.plain().line();
        assert!(
            line.starts_with("train: 60/100 (60 %), loss 1.5, "),
            "{line}"
        );
        assert!(line.contains(" left"), "{line}");
    }
}
