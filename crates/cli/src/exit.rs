//! Every exit code of `ocistow`, what maps an error to one, and the CLI's own errors.
//!
//! A negative answer ("the blob is absent", "the layout has inconsistencies") is not an error:
//! it exits [`NO`], so scripts can tell it from a failure to answer.

use std::fmt;
use std::io;

use ocistow_registry::Error as RegistryError;
use ocistow_store::Error;

/// The command did what was asked; a question's answer is yes.
pub const OK: u8 = 0;
/// A question's answer is no: `blob exists` of an absent blob, `referrers status` or `fsck`
/// that found problems.
pub const NO: u8 = 1;
/// Invalid input: a bad reference, digest, manifest, annotation, environment value or command line.
pub const USAGE: u8 = 2;
/// Not found: a tag, digest, blob, platform, or a directory that is not a layout.
pub const NOT_FOUND: u8 = 3;
/// A reference that matches more than one entry.
pub const AMBIGUOUS: u8 = 4;
/// Integrity: a digest or size mismatch, a corrupt `index.json` or blob.
pub const INTEGRITY: u8 = 5;
/// Timed out waiting for another process's lock.
pub const LOCKED: u8 = 6;
/// The operation would overwrite something it was not asked to.
pub const CONFLICT: u8 = 7;
/// Any other failure (I/O, permissions, a full disk).
pub const ERROR: u8 = 8;

/// The exit codes as the top-level `--help` lists them (docs/cli.md has the same table).
pub const HELP: &str = "Example:
  ocistow init ./layout
  ocistow push ./layout:v1 ./app.bin --artifact-type application/vnd.example.app
  ocistow pull ./layout:v1 -o ./out

Exit codes:
  0  success; a question's answer is yes
  1  a question's answer is no (blob exists: absent; referrers status, fsck: problems found)
  2  invalid input: reference, digest, manifest, annotation, environment or command line
  3  not found: tag, digest, blob, platform, or not a layout
  4  ambiguous reference
  5  integrity: digest or size mismatch, corrupt index.json or blob
  6  timed out waiting for another process's lock (OCISTOW_LOCK_TIMEOUT)
  7  conflict: would overwrite something not asked for
  8  other error (I/O)";

/// What a command that ran to its end answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; yes.
    Ok,
    /// A negative answer that is not an error.
    No,
}

impl Outcome {
    /// `Ok` when `yes`, else `No`.
    pub fn from_answer(yes: bool) -> Outcome {
        if yes { Outcome::Ok } else { Outcome::No }
    }

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => OK,
            Outcome::No => NO,
        }
    }
}

/// A command line or environment the CLI refuses before any library call.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error as an `anyhow::Error`, for `bail!`-style returns.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Whether the failure is only that stdout's reader went away (`ocistow ls | head -1`): the
/// process then exits quietly with success, as Unix tools do.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The message for an error: each cause of its chain once. A library error whose text already
/// ends with its source's (`Error::Io` says "path: cause" and also gives the cause as its
/// source, as callers of the library expect) does not get the cause printed a second time.
pub fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.is_empty() {
            text = part;
        } else if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}

/// The exit code for an error: the first library error or CLI usage error in its chain decides.
pub fn code_of(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<UsageError>() {
            return USAGE;
        }
        if let Some(e) = cause.downcast_ref::<Error>() {
            return library_code(e);
        }
        if let Some(e) = cause.downcast_ref::<RegistryError>() {
            return registry_code(e);
        }
    }
    ERROR
}

fn registry_code(e: &RegistryError) -> u8 {
    match e {
        RegistryError::Store(inner) => library_code(inner),
        RegistryError::InvalidReference { .. } | RegistryError::Config { .. } => USAGE,
        RegistryError::Status { status: 404, .. } => NOT_FOUND,
        RegistryError::DigestMismatch { .. }
        | RegistryError::TooLarge { .. }
        | RegistryError::BadResponse { .. } => INTEGRITY,
        _ => ERROR,
    }
}

fn library_code(e: &Error) -> u8 {
    match e {
        Error::NotFound { .. } | Error::NotALayout { .. } => NOT_FOUND,
        Error::Ambiguous { .. } => AMBIGUOUS,
        Error::DigestMismatch { .. } | Error::SizeMismatch { .. } | Error::Corrupt { .. } => {
            INTEGRITY
        }
        Error::InvalidDigest { .. }
        | Error::InvalidReference { .. }
        | Error::InvalidManifest { .. }
        | Error::InvalidInput(_)
        | Error::RefusedEntry { .. }
        | Error::UnsupportedAlgorithm { .. } => USAGE,
        Error::Locked { .. } => LOCKED,
        Error::Conflict(_) | Error::TagIsNotARecord { .. } => CONFLICT,
        _ => ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_already_says_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let err = anyhow::Error::from(ocistow_store::Error::Io {
            path: "/proc/x/y".into(),
            source: io,
        });
        let text = message(&err);
        assert_eq!(text.matches("not found").count(), 1, "{text}");
        assert!(text.starts_with("/proc/x/y: "), "{text}");
        let wrapped = anyhow::anyhow!("inner cause").context("outer");
        assert_eq!(message(&wrapped), "outer: inner cause");
    }

    #[test]
    fn usage_errors_and_library_errors_have_their_codes() {
        assert_eq!(code_of(&usage("bad flag")), USAGE);
        let not_found = anyhow::Error::new(Error::NotFound {
            what: ocistow_store::Subject::Tag {
                tag: "v1".into(),
                layout: "layout".into(),
            },
            hint: String::new(),
        });
        assert_eq!(code_of(&not_found.context("resolving")), NOT_FOUND);
        let nothing = Error::InvalidInput(ocistow_store::InputProblem::NothingToExport);
        assert_eq!(code_of(&anyhow::Error::new(nothing)), USAGE);
        assert_eq!(code_of(&anyhow::anyhow!("disk full")), ERROR);
        assert_ne!(ERROR, NO, "an error must not read as a negative answer");
    }

    #[test]
    fn a_closed_pipe_is_recognised_through_context() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("stdout");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("other")));
    }
}
