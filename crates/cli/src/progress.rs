//! Progress bars on a terminal; nothing when stderr is not one, `--no-tty` was given, or the
//! input is small.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use ocistow_store::Progress;

/// Inputs smaller than this finish too fast for a bar to help.
const MIN_BAR_SIZE: u64 = 32 << 20;

/// Off with `--no-tty`; set once by `main` before any command runs.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns bars on or off for the rest of the process.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A progress reporter for `name` of `size` bytes.
pub fn bar(name: &str, size: u64) -> Box<dyn Progress> {
    if size < MIN_BAR_SIZE || !ENABLED.load(Ordering::Relaxed) || !std::io::stderr().is_terminal() {
        return Box::new(ocistow_store::layout::NoProgress);
    }
    let pb = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:30!} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style);
    }
    pb.set_message(name.to_string());
    Box::new(Bar(pb))
}
