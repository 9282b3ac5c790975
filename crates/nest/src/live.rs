//! What a run shows while it runs: a live table on a terminal, a plain line every 10 s elsewhere, or nothing.
//!
//! On a terminal (stderr), a table is redrawn in place about once a second: elapsed and remaining time, users,
//! req/s and failures/s, and per request name the rate and the p50/p95 of the last few seconds (exact: the
//! difference of cumulative histograms), with a progress bar over the run time below. Nothing is switched into a
//! raw or alternate mode, so the only terminal state to restore is the hidden cursor; a guard restores it on
//! every exit, including a panic. In CI, hooks and pipes a plain line is printed every 10 s instead.

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::time::Duration;

use crossterm::{cursor, execute, queue, style, terminal};
use nest_core::stats::{Aggregate, LatencyMs, RequestCounts};

use nest_report::table::clip;

/// Seconds between two plain progress lines.
const PLAIN_EVERY: u64 = 10;
/// The window of the live per-name figures, in seconds.
const WINDOW: usize = 5;

/// How progress is shown.
pub enum Display {
    /// The live table.
    Live(Box<Live>),
    /// One line every 10 s.
    Plain {
        /// The next elapsed second at which to print.
        next: u64,
    },
    /// Nothing until the verdict.
    Quiet,
}

impl Display {
    /// Chooses the display: quiet when asked, live on a terminal, plain otherwise.
    pub fn new(quiet: bool, run_time: Option<Duration>) -> Display {
        if quiet {
            Display::Quiet
        } else if std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb") {
            Display::Live(Box::new(Live::new(run_time)))
        } else {
            Display::Plain { next: PLAIN_EVERY }
        }
    }

    /// Shows the run's progress.
    pub fn update(&mut self, agg: &Aggregate, elapsed: Duration) {
        match self {
            Display::Live(live) => live.update(agg, elapsed),
            Display::Plain { next } if elapsed.as_secs() >= *next => {
                *next = elapsed.as_secs() / PLAIN_EVERY * PLAIN_EVERY + PLAIN_EVERY;
                let total = agg.total();
                let _ = writeln!(
                    std::io::stderr(),
                    "[{:>4}s] {} users, {} requests, {} failures, {:.1} req/s overall",
                    elapsed.as_secs(),
                    current_users(agg),
                    total.count,
                    total.failures,
                    total.count as f64 / elapsed.as_secs_f64().max(1e-9)
                );
            }
            Display::Plain { .. } | Display::Quiet => {}
        }
    }

    /// Prints a message without breaking the live table.
    pub fn message(&mut self, text: &str) {
        match self {
            Display::Live(live) => live.message(text),
            _ => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }

    /// Clears the live table before the final summary.
    pub fn finish(&mut self) {
        if let Display::Live(live) = self {
            live.clear();
        }
    }
}

/// Active users now, from every worker's latest report; the timeline's users are complete only once a second is
/// sealed, which comes up to two seconds later (the live view would show 0 users that long).
fn current_users(agg: &Aggregate) -> u64 {
    agg.live_users
}

/// Cumulative counts per (name, method) at one moment.
type Snapshot = BTreeMap<(String, String), RequestCounts>;

/// The live table's state.
pub struct Live {
    run_time: Option<Duration>,
    /// Cumulative counts once a second, for the last `WINDOW` seconds.
    snapshots: VecDeque<(Duration, Snapshot)>,
    /// Lines drawn last time (to move back over them).
    drawn: u16,
    last_draw: Option<Duration>,
    /// The users shown by the last draw.
    drawn_users: u64,
    color: bool,
    _cursor: CursorGuard,
}

impl Live {
    fn new(run_time: Option<Duration>) -> Live {
        Live {
            run_time,
            snapshots: VecDeque::new(),
            drawn: 0,
            last_draw: None,
            drawn_users: 0,
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            _cursor: CursorGuard::hide(),
        }
    }

    fn update(&mut self, agg: &Aggregate, elapsed: Duration) {
        // Workers report once a second each: redraw once per second, and also when the users changed (the workers'
        // reports of one second arrive a few milliseconds apart, and the first one alone holds only its share).
        let users = current_users(agg);
        let due = self.last_draw.is_none_or(|d| elapsed >= d + Duration::from_millis(900));
        if !due && users == self.drawn_users {
            return;
        }
        self.drawn_users = users;
        if due {
            // Only the once-a-second draws move the window, so it keeps covering `WINDOW` seconds.
            self.last_draw = Some(elapsed);
            self.snapshots.push_back((elapsed, agg.requests.clone()));
            while self.snapshots.len() > WINDOW + 1 {
                self.snapshots.pop_front();
            }
        }
        let lines = self.render(agg, elapsed, screen_size());
        let mut err = std::io::stderr().lock();
        let _ = self.erase(&mut err);
        for line in &lines {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        self.drawn = lines.len() as u16;
    }

    fn render(&self, agg: &Aggregate, elapsed: Duration, (width, height): (u16, u16)) -> Vec<String> {
        let width = usize::from(width).max(40);
        let Some((since, old)) = self.snapshots.front() else { return Vec::new() };
        let window = (elapsed.saturating_sub(*since)).as_secs_f64();
        // (name, req/s, failures/s, latency of the window)
        type Row = (String, f64, f64, Option<LatencyMs>);
        let mut rows: Vec<Row> = agg
            .requests
            .iter()
            .map(|((name, method), now)| {
                let recent = window_counts(now, old.get(&(name.clone(), method.clone())));
                let per_sec = |n: u64| if window > 0.0 { n as f64 / window } else { 0.0 };
                let latency = (recent.count > 0).then(|| LatencyMs::of(&recent.latency));
                (format!("{method} {name}"), per_sec(recent.count), per_sec(recent.failures), latency)
            })
            .collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (rps, fps): (f64, f64) = rows.iter().fold((0.0, 0.0), |(r, f), row| (r + row.1, f + row.2));
        let left = match self.run_time {
            Some(t) => format!(", {} left", fmt_secs(t.saturating_sub(elapsed))),
            None => String::new(),
        };
        let bold = |s: String| if self.color { format!("{}", style::Stylize::bold(s)) } else { s };
        let mut lines = vec![bold(format!(
            "nest  {} elapsed{left}  |  {} users  |  {rps:.1} req/s  |  {fps:.1} failures/s",
            fmt_secs(elapsed),
            current_users(agg),
        ))];
        let name_width =
            rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(4).clamp(4, width.saturating_sub(40).max(4));
        lines.push(format!(
            "{:<name_width$} {:>9} {:>8} {:>8} {:>8}   (last {}s, ms)",
            "Name",
            "req/s",
            "fail/s",
            "p50",
            "p95",
            window.round()
        ));
        let room = usize::from(height).saturating_sub(5).max(3);
        for (name, r, f, latency) in rows.iter().take(room) {
            let (p50, p95) =
                latency.map_or(("-".into(), "-".into()), |l| (format!("{:.1}", l.p50), format!("{:.1}", l.p95)));
            let fails = format!("{f:.1}");
            let fails = if *f > 0.0 && self.color { format!("{}", style::Stylize::red(fails)) } else { fails };
            lines.push(format!("{:<name_width$} {r:>9.1} {fails:>8} {p50:>8} {p95:>8}", clip(name, name_width)));
        }
        if rows.len() > room {
            lines.push(format!("... and {} more", rows.len() - room));
        }
        if let Some(total) = self.run_time.filter(|t| !t.is_zero()) {
            let done = (elapsed.as_secs_f64() / total.as_secs_f64()).clamp(0.0, 1.0);
            let bar = width.saturating_sub(8).min(60);
            let filled = (done * bar as f64).round() as usize;
            lines.push(format!("[{}{}] {:>3.0}%", "#".repeat(filled), "-".repeat(bar - filled), done * 100.0));
        }
        lines
    }

    fn message(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = self.erase(&mut err);
        let _ = writeln!(err, "{text}");
        self.drawn = 0;
    }

    fn clear(&mut self) {
        let mut err = std::io::stderr().lock();
        let _ = self.erase(&mut err);
        let _ = err.flush();
        self.drawn = 0;
    }

    fn erase(&self, out: &mut impl Write) -> std::io::Result<()> {
        if self.drawn > 0 {
            queue!(out, cursor::MoveToPreviousLine(self.drawn), terminal::Clear(terminal::ClearType::FromCursorDown))?;
        }
        Ok(())
    }
}

/// The terminal's columns and rows; a terminal that reports no size (0 x 0, as some pseudo-terminals do) gets a
/// common one.
fn screen_size() -> (u16, u16) {
    match terminal::size() {
        Ok((w, h)) if w > 0 && h > 0 => (w, h),
        _ => (100, 30),
    }
}

/// The counts of the window: the cumulative counts now minus those at the window's start.
fn window_counts(now: &RequestCounts, before: Option<&RequestCounts>) -> RequestCounts {
    let Some(before) = before else { return now.clone() };
    let mut recent = now.clone();
    recent.count -= before.count;
    recent.failures -= before.failures;
    recent.latency.count -= before.latency.count;
    recent.latency.sum_us -= before.latency.sum_us;
    // The window's min and max are not recoverable from cumulative values; the histogram's are close enough here.
    if recent.latency.histogram.subtract(&before.latency.histogram).is_ok() && recent.latency.count > 0 {
        recent.latency.min_us = recent.latency.histogram.min();
        recent.latency.max_us = recent.latency.histogram.max();
    }
    recent
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Hides the cursor while alive; shows it again when dropped, and from a panic hook, so no exit leaves the user's
/// terminal without a cursor.
struct CursorGuard;

impl CursorGuard {
    fn hide() -> CursorGuard {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = execute!(std::io::stderr(), cursor::Show);
            previous(info);
        }));
        let _ = execute!(std::io::stderr(), cursor::Hide);
        CursorGuard
    }
}

impl Drop for CursorGuard {
    fn drop(&mut self) {
        let _ = execute!(std::io::stderr(), cursor::Show);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nest_core::stats::{Recorder, Sample};

    #[test]
    fn the_window_holds_only_recent_requests() {
        let r = Recorder::new();
        let ms = Duration::from_millis;
        for _ in 0..100 {
            r.request("GET", "/a", Sample { latency: ms(100), ..Default::default() });
        }
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        let before = agg.requests.clone();
        for _ in 0..10 {
            r.request("GET", "/a", Sample { latency: ms(2), ..Default::default() });
        }
        agg.merge(r.take());
        let key = ("/a".to_owned(), "GET".to_owned());
        let recent = window_counts(&agg.requests[&key], before.get(&key));
        assert_eq!(recent.count, 10);
        assert!((LatencyMs::of(&recent.latency).p95 - 2.0).abs() < 0.01, "only the fast requests are in the window");
    }

    #[test]
    fn a_narrow_terminal_gets_a_table_and_the_live_users() {
        let r = Recorder::new();
        r.request(
            "GET",
            "/a-rather-long-request-name",
            Sample { latency: Duration::from_millis(3), ..Default::default() },
        );
        let mut agg = Aggregate::default();
        agg.merge(r.take());
        agg.live_users = 4;
        let mut live = Live {
            run_time: Some(Duration::from_secs(3)),
            snapshots: VecDeque::new(),
            drawn: 0,
            last_draw: None,
            drawn_users: 0,
            color: false,
            _cursor: CursorGuard,
        };
        live.snapshots.push_back((Duration::ZERO, Default::default()));
        for size in [(40, 0), (42, 10), (1, 1), (200, 50)] {
            let lines = live.render(&agg, Duration::from_secs(1), size);
            assert!(lines[0].contains("|  4 users  |"), "{size:?}: {lines:?}");
            assert!(lines.iter().any(|l| l.starts_with("GET")), "{size:?}: {lines:?}");
        }
    }

    #[test]
    fn formats_durations() {
        assert_eq!(fmt_secs(Duration::from_secs(42)), "42s");
        assert_eq!(fmt_secs(Duration::from_secs(125)), "2m05s");
        assert_eq!(fmt_secs(Duration::from_secs(3725)), "1h02m05s");
    }
}
