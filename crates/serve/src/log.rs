//! Messages on stderr, filtered by level: one line per request at `Info`.

use std::fmt;

/// Which messages the server writes to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Only errors (a failed write, a layout that cannot be read).
    Error,
    /// Errors and warnings (a directory skipped because its name is not a repository name).
    Warn,
    /// Also one line per request and startup/shutdown notes.
    Info,
    /// Also what each answer was built from.
    Debug,
}

/// The logger every handler shares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Log {
    pub level: LogLevel,
}

impl Log {
    fn emit(self, level: LogLevel, tag: &str, message: fmt::Arguments<'_>) {
        if level <= self.level {
            eprintln!("ocistow serve: {tag}{message}");
        }
    }

    pub fn error(self, message: fmt::Arguments<'_>) {
        self.emit(LogLevel::Error, "error: ", message);
    }

    pub fn warn(self, message: fmt::Arguments<'_>) {
        self.emit(LogLevel::Warn, "warning: ", message);
    }

    pub fn info(self, message: fmt::Arguments<'_>) {
        self.emit(LogLevel::Info, "", message);
    }

    pub fn debug(self, message: fmt::Arguments<'_>) {
        self.emit(LogLevel::Debug, "debug: ", message);
    }
}
