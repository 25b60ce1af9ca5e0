//! A one-line progress display: redrawn in place on stderr while a phase runs (on a
//! terminal), then one final line on stdout, so logs read in order.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

/// Progress of one phase over a known number of items.
pub struct Progress {
    label: &'static str,
    total: usize,
    state: Mutex<(usize, Instant)>,
    live: bool,
}

impl Progress {
    /// Starts a phase.
    pub fn start(label: &'static str, total: usize) -> Self {
        let progress = Self {
            label,
            total,
            state: Mutex::new((0, Instant::now())),
            live: std::io::stderr().is_terminal(),
        };
        progress.draw(0, 0.0);
        progress
    }

    /// One more item done.
    pub fn tick(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 += 1;
        let done = state.0;
        let seconds = state.1.elapsed().as_secs_f64();
        drop(state);
        if self.live {
            self.draw(done, seconds);
        }
    }

    /// Ends the phase with its final line.
    pub fn finish(self) {
        let (done, started) = *self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.live_draw_final(done, started.elapsed().as_secs_f64());
    }

    fn bar(&self, done: usize) -> String {
        const WIDTH: usize = 24;
        let filled = (done * WIDTH).checked_div(self.total).unwrap_or(WIDTH);
        format!("{}{}", "█".repeat(filled), "·".repeat(WIDTH - filled))
    }

    fn draw(&self, done: usize, seconds: f64) {
        if !self.live {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r  {:<34} {} {done:>3}/{:<3} {seconds:5.1} s",
            self.label,
            self.bar(done),
            self.total
        );
        let _ = err.flush();
    }

    fn live_draw_final(&self, done: usize, seconds: f64) {
        if self.live {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
        println!(
            "   {:<34} {} {done:>3}/{:<3} {seconds:5.1} s",
            self.label,
            self.bar(done),
            self.total
        );
    }
}
