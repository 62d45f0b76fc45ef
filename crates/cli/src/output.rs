//! Everything written to stdout goes through [`Output`]: write errors come back as errors (a
//! closed pipe is then a quiet exit, see `exit::is_broken_pipe`) instead of a panic in
//! `println!`. Also the output formats, the table layout and human-readable sizes.

use std::fmt::Display;
use std::io::{self, Write};

use clap::ValueEnum;
use ocistow_store::Descriptor;
use ocistow_store::model::ImageManifest;
use ocistow_store::model::annotations::TITLE;
use ocistow_store::referrers::Node;
use serde::Serialize;
use serde_json::Value;

/// `--format`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Tree,
    Table,
}

/// The formats of a command that prints no data (only messages, or bytes that are the output).
pub const TEXT: &[Format] = &[Format::Text];
/// The formats of a command that prints data.
pub const TEXT_JSON: &[Format] = &[Format::Text, Format::Json];

/// The process's stdout, buffered; flushed by `main` (or by a command that streams).
pub struct Output {
    out: io::BufWriter<io::Stdout>,
}

impl Output {
    /// Stdout.
    pub fn stdout() -> Output {
        Output {
            out: io::BufWriter::with_capacity(1 << 16, io::stdout()),
        }
    }

    /// One line of text.
    pub fn line(&mut self, text: impl Display) -> io::Result<()> {
        writeln!(self.out, "{text}")
    }

    /// A value as pretty-printed JSON, then a newline.
    pub fn json(&mut self, value: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut self.out, value)?;
        writeln!(self.out)
    }

    /// A descriptor: its digest as text, the whole descriptor as JSON.
    pub fn descriptor(&mut self, format: Format, desc: &Descriptor) -> io::Result<()> {
        if format == Format::Json {
            self.json(desc)
        } else {
            self.line(desc.digest())
        }
    }

    /// Rows under a header, columns two spaces apart and as wide as their widest cell (in
    /// bytes, padded by characters, as `format!("{c:w$}")` does), trailing blanks trimmed.
    pub fn table<R: AsRef<[S]>, S: AsRef<str>>(
        &mut self,
        header: &[&str],
        rows: &[R],
    ) -> io::Result<()> {
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r.as_ref().get(i).map_or(0, |c| c.as_ref().len()))
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        // One line buffer for every row, written straight into the buffered stdout.
        let mut line = String::new();
        let mut put = |out: &mut io::BufWriter<io::Stdout>,
                       cells: &mut dyn Iterator<Item = &str>| {
            line.clear();
            for (i, (c, w)) in cells.zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(c);
                let chars = c.chars().count();
                line.extend(std::iter::repeat_n(' ', w.saturating_sub(chars)));
            }
            out.write_all(line.trim_end().as_bytes())?;
            out.write_all(b"\n")
        };
        put(&mut self.out, &mut header.iter().copied())?;
        for r in rows {
            put(&mut self.out, &mut r.as_ref().iter().map(AsRef::as_ref))?;
        }
        Ok(())
    }

    /// The raw writer, for bytes streamed as they come (a blob, a manifest, a tarball).
    pub fn raw(&mut self) -> &mut dyn Write {
        &mut self.out
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `n` and a noun, in the plural unless `n` is one: `count(1, "entry")` is `1 entry`,
/// `count(2, "entry")` is `2 entries`. The one place counts are worded.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let consonant_y = noun.len() > 1
        && noun.ends_with('y')
        && !noun[..noun.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']);
    if consonant_y {
        format!("{n} {}ies", &noun[..noun.len() - 1])
    } else if noun.ends_with(['s', 'x']) || noun.ends_with("ch") || noun.ends_with("sh") {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}

/// A size in binary (IEC) units, as oras prints them: `999 B`, `1.5 KiB`, `2.0 GiB`. The one
/// unit style of every size a person reads.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// What `push` and `attach` print with `--format json`, as oras does: the manifest's
/// descriptor fields (as `discover` prints them) and `referenceAsTags` (`DIR:TAG` for each tag given).
pub fn pushed_json(dir: &str, desc: &Descriptor, tags: &[String]) -> Value {
    let mut m = Node::oras_descriptor(dir, desc);
    m.insert(
        "referenceAsTags".into(),
        tags.iter()
            .map(|t| Value::from(format!("{dir}:{t}")))
            .collect(),
    );
    Value::Object(m)
}

/// `-v`: one line on stderr for the config and each layer of a manifest just pushed (`verb`
/// `Uploaded`) or pulled: title (or media type), digest, size.
pub fn verbose_layers(verb: &str, manifest: &[u8]) {
    let Ok(m) = ImageManifest::parse(manifest) else {
        return;
    };
    for (what, d) in
        std::iter::once(("config", &m.config)).chain(m.layers.iter().map(|l| ("layer", l)))
    {
        verbose_descriptor(verb, what, d);
    }
}

/// `-v`: one line on stderr for each `index.json` entry `after` lost or gained against
/// `before` (a tag moved is one of each), in `index.json` order.
pub fn verbose_entries(before: &[Descriptor], after: &[Descriptor]) {
    let show = |d: &Descriptor| match d.ref_name() {
        Some(tag) => format!("{} ({}, tag {tag})", d.digest(), d.media_type()),
        None => format!("{} ({})", d.digest(), d.media_type()),
    };
    for d in before.iter().filter(|d| !after.contains(d)) {
        eprintln!("Removed index.json entry {}", show(d));
    }
    for d in after.iter().filter(|d| !before.contains(d)) {
        eprintln!("Added index.json entry {}", show(d));
    }
}

/// `-v`: one line on stderr for one descriptor.
pub fn verbose_descriptor(verb: &str, what: &str, d: &Descriptor) {
    eprintln!(
        "{verb} {what} {} {} ({})",
        d.annotation(TITLE).unwrap_or(d.media_type()),
        d.digest(),
        human_bytes(d.size())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(512 << 20), "512.0 MiB");
        assert_eq!(human_bytes(2 << 30), "2.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(count(1, "entry"), "1 entry");
        assert_eq!(count(0, "entry"), "0 entries");
        assert_eq!(count(2, "blob"), "2 blobs");
        assert_eq!(count(1, "blob"), "1 blob");
        assert_eq!(count(3, "inconsistency"), "3 inconsistencies");
        assert_eq!(count(2, "key"), "2 keys");
        assert_eq!(count(2, "index"), "2 indexes");
    }
}
