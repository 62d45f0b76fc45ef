//! Artifacts as `oras push` builds them, and pulling their files back out.
//!
//! A pushed manifest is byte-for-byte what oras 1.3 writes for the same inputs: the empty config
//! (with `data: "e30="`) unless a config is given, one layer per file titled with
//! `org.opencontainers.image.title`, annotations sorted by key (as Go marshals maps), and
//! `org.opencontainers.image.created` unless the caller set it.

mod attach;
mod confined;
mod pull;
mod push;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::layout::{NoProgress, Progress};

pub use attach::{AttachOptions, attach, attach_in};
pub use pull::{PullOptions, Pulled, pull, pull_with, safe_relative_path};
pub use push::{PushRequest, Pushed, push};

/// One file (or directory) to push, with an optional media type.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FileSpec {
    /// The file or directory; its file name becomes the layer's title.
    pub path: PathBuf,
    /// The layer's media type (oras's defaults when absent: a tar+gzip for a directory,
    /// `application/vnd.oci.image.layer.v1.tar` for a file).
    pub media_type: Option<String>,
}

impl FileSpec {
    /// `path` with the default media type (see the `media_type` field).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSpec {
            path: path.into(),
            media_type: None,
        }
    }

    /// Parses `PATH[:MEDIATYPE]` as oras does: the media type follows the last `:` when the part
    /// before it names an existing path; otherwise the whole string is the path.
    pub fn parse(input: &str) -> FileSpec {
        if !Path::new(input).exists()
            && let Some((path, mt)) = input.rsplit_once(':')
            && !path.is_empty()
        {
            return FileSpec {
                path: path.into(),
                media_type: (!mt.is_empty()).then(|| mt.to_string()),
            };
        }
        FileSpec::new(input)
    }
}

setters!(FileSpec {
    media_type: Option<String>,
});

/// Makes a progress reporter for one named input of known size.
pub type ProgressFactory<'a> = &'a dyn Fn(&str, u64) -> Box<dyn Progress>;

/// Seconds since the epoch now (0 for a clock before 1970).
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `secs` since the epoch as RFC 3339 in UTC, as `org.opencontainers.image.created` has it.
pub fn format_rfc3339(secs: u64) -> String {
    let secs = i64::try_from(secs).unwrap_or(i64::MAX / 2);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A progress factory that reports nothing.
pub fn no_progress(_: &str, _: u64) -> Box<dyn Progress> {
    Box::new(NoProgress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339(1_577_836_800), "2020-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn file_spec_parsing() {
        let f = FileSpec::parse("no-such-file.txt:text/plain");
        assert_eq!(f.path, Path::new("no-such-file.txt"));
        assert_eq!(f.media_type.as_deref(), Some("text/plain"));
        assert_eq!(FileSpec::parse("plain.txt").media_type, None);
    }
}
