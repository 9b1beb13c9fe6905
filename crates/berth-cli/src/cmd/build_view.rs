//! `build --progress`: the classic builder's text stream as it comes
//! (`plain`), or on a terminal (`tty`; `auto` picks it when stdout is one)
//! a live, compact view redrawn in place: one line per step with its state
//! (running, `CACHED`, done) and time, the total elapsed time and counts,
//! and the last lines the running step printed. The view is made from the
//! stream's text alone (`Step n/N : …`, ` ---> Using cache`, the stage
//! prefixes of parallel stages), so it works with any classic-builder
//! engine.

use std::io::Write;
use std::time::{Duration, Instant};

/// How many output lines of a running step the view shows.
const LOG_LINES: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Progress {
    Auto,
    Tty,
    Plain,
}

#[derive(Debug, PartialEq)]
enum State {
    Running,
    Cached,
    Done,
}

struct Step {
    /// The stage prefix (`[build] `) or empty.
    stage: String,
    title: String,
    state: State,
    started: Instant,
    took: Option<Duration>,
    log: Vec<String>,
}

/// The live view's state; [`View::render`] is a pure function of it.
pub struct View {
    started: Instant,
    steps: Vec<Step>,
    /// Lines after the steps (`Successfully built …`), printed at the end.
    tail: Vec<String>,
    partial: String,
    drawn: usize,
}

/// Splits `[stage] rest` into its prefix and the rest.
fn split_stage(line: &str) -> (&str, &str) {
    if line.starts_with('[') {
        if let Some(end) = line.find("] ") {
            return line.split_at(end + 2);
        }
    }
    ("", line)
}

impl View {
    pub fn new() -> View {
        View {
            started: Instant::now(),
            steps: Vec::new(),
            tail: Vec::new(),
            partial: String::new(),
            drawn: 0,
        }
    }

    fn finish_running(&mut self, stage: &str) {
        let now = Instant::now();
        for s in self
            .steps
            .iter_mut()
            .filter(|s| s.stage == stage && s.state == State::Running)
        {
            s.state = State::Done;
            s.took = Some(now - s.started);
        }
    }

    /// Takes one line of the stream into the state.
    fn line(&mut self, line: &str) {
        let (stage, rest) = split_stage(line);
        if rest.starts_with("Step ") && rest.contains(" : ") {
            self.finish_running(stage);
            self.steps.push(Step {
                stage: stage.to_string(),
                title: rest.to_string(),
                state: State::Running,
                started: Instant::now(),
                took: None,
                log: Vec::new(),
            });
        } else if rest.starts_with(" ---> Using cache") {
            if let Some(s) = self
                .steps
                .iter_mut()
                .rev()
                .find(|s| s.stage == stage && s.state == State::Running)
            {
                s.state = State::Cached;
                s.took = Some(Duration::ZERO);
            }
        } else if rest.starts_with(" ---> ") || rest.starts_with("Removing intermediate container")
        {
            // The classic builder's bookkeeping: not the step's output.
        } else if rest.starts_with("Successfully ") {
            self.finish_running(stage);
            self.tail.push(line.to_string());
        } else if let Some(s) = self
            .steps
            .iter_mut()
            .rev()
            .find(|s| s.stage == stage && s.state == State::Running)
        {
            s.log.push(rest.to_string());
            if s.log.len() > LOG_LINES {
                s.log.remove(0);
            }
        } else {
            self.tail.push(line.to_string());
        }
    }

    /// Takes a `stream` text (any part of a line or several).
    pub fn push(&mut self, text: &str) {
        self.partial.push_str(text);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.line(line.trim_end_matches(['\n', '\r']));
        }
    }

    /// The view's lines, `width` columns at most each.
    pub fn render(&self, width: usize, done: bool) -> Vec<String> {
        let now = Instant::now();
        let cached = self
            .steps
            .iter()
            .filter(|s| s.state == State::Cached)
            .count();
        let finished = self
            .steps
            .iter()
            .filter(|s| s.state != State::Running)
            .count();
        let header = format!(
            "[+] Building {:.1}s ({finished}/{} steps, {cached} cached){}",
            (now - self.started).as_secs_f64(),
            self.steps.len(),
            if done { " FINISHED" } else { "" }
        );
        let mut out = vec![fit(&header, "", width)];
        for s in &self.steps {
            let (mark, time) = match s.state {
                State::Cached => ("CACHED ", String::new()),
                State::Done => (
                    "",
                    format!(" {:.1}s", s.took.unwrap_or_default().as_secs_f64()),
                ),
                State::Running => ("", format!(" {:.1}s", (now - s.started).as_secs_f64())),
            };
            let head = format!(" => {}{mark}{}", s.stage, s.title);
            out.push(fit(&head, &time, width));
            if s.state == State::Running && !done {
                for l in &s.log {
                    out.push(fit(&format!("    | {l}"), "", width));
                }
            }
        }
        out
    }

    /// Redraws the view in place on `w` (a terminal).
    pub fn draw(&mut self, w: &mut impl Write, width: usize, done: bool) -> std::io::Result<()> {
        let lines = self.render(width, done);
        let mut buf = String::new();
        if self.drawn > 0 {
            // Up to the view's first line, and clear from there down.
            buf.push_str(&format!("\x1b[{}F", self.drawn));
        }
        buf.push_str("\x1b[J");
        for l in &lines {
            buf.push_str(l);
            buf.push('\n');
        }
        self.drawn = lines.len();
        if done {
            for l in self.tail.drain(..) {
                buf.push_str(&l);
                buf.push('\n');
            }
            if !self.partial.is_empty() {
                buf.push_str(&std::mem::take(&mut self.partial));
                buf.push('\n');
            }
            self.drawn = 0;
        }
        w.write_all(buf.as_bytes())?;
        w.flush()
    }
}

impl Default for View {
    fn default() -> Self {
        View::new()
    }
}

/// `head` cut to leave room for `time` within `width` columns, then `time`.
fn fit(head: &str, time: &str, width: usize) -> String {
    let room = width.saturating_sub(time.chars().count()).max(10);
    let head: String = if head.chars().count() > room {
        let mut h: String = head.chars().take(room.saturating_sub(1)).collect();
        h.push('…');
        h
    } else {
        head.to_string()
    };
    format!("{head}{time}")
}

/// The terminal's width (`COLUMNS`, else 100).
pub fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c: &usize| c >= 20)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_cache_hits_and_last_lines() {
        let mut v = View::new();
        v.push("Step 1/3 : FROM busybox\n ---> 1234\nStep 2/3 : COPY a /a\n ---> Using cache\n");
        v.push(" ---> 5678\nStep 3/3 : RUN seq 7\n ---> Running in abc\n");
        for i in 1..=7 {
            v.push(&format!("{i}\n"));
        }
        let r = v.render(80, false);
        assert!(r[0].starts_with("[+] Building "), "{r:?}");
        assert!(r[0].ends_with("(2/3 steps, 1 cached)"), "{r:?}");
        assert!(r[1].starts_with(" => Step 1/3 : FROM busybox "), "{r:?}");
        assert_eq!(r[2], " => CACHED Step 2/3 : COPY a /a");
        assert!(r[3].starts_with(" => Step 3/3 : RUN seq 7 "), "{r:?}");
        // Only the last five lines of the running step.
        assert_eq!(
            &r[4..],
            ["    | 3", "    | 4", "    | 5", "    | 6", "    | 7"]
        );
        v.push("Removing intermediate container abc\n ---> 9abc\nSuccessfully built 9abc\n");
        let r = v.render(80, true);
        assert_eq!(r.len(), 4, "{r:?}");
        assert!(r[0].contains("(3/3 steps, 1 cached) FINISHED"), "{r:?}");
        let mut out = Vec::new();
        v.draw(&mut out, 80, true).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with("Successfully built 9abc\n"), "{out}");
    }

    #[test]
    fn parallel_stages_and_narrow_terminals() {
        let mut v = View::new();
        v.push("[a] Step 1/4 : FROM busybox AS a\n[b] Step 2/4 : FROM busybox AS b\n");
        v.push("[a] Step 3/4 : RUN make\n[a] compiling\n[b]  ---> Using cache\n");
        let r = v.render(30, false);
        assert!(r.iter().any(|l| l == "    | compiling"), "{r:?}");
        assert!(r.iter().all(|l| l.chars().count() <= 30), "{r:?}");
        assert!(
            r.iter().any(|l| l.starts_with(" => [a] Step 3/4 : RUN")),
            "{r:?}"
        );
        assert!(
            r.iter().any(|l| l.starts_with(" => [b] CACHED Step 2/4")),
            "{r:?}"
        );
        // Redrawing goes back up over what was drawn.
        let mut out = Vec::new();
        v.draw(&mut out, 80, false).unwrap();
        v.draw(&mut out, 80, false).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains(&format!("\x1b[{}F\x1b[J", v.drawn)), "{out:?}");
    }
}
