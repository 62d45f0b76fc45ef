//! Everything written to stdout goes through [`Output`]: write errors come back as errors (a
//! closed pipe is then a quiet exit, see `exit::is_broken_pipe`) instead of a panic in
//! `println!`. Also the output formats, the table layout and human-readable sizes.

use std::fmt::Display;
use std::io::{self, Write};

use clap::ValueEnum;
use ocistow_store::Descriptor;
use serde::Serialize;

/// `--format`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Tree,
    Table,
}

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

    /// A value as JSON on one line.
    pub fn json_line(&mut self, value: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
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

    /// Rows under a header, columns two spaces apart and as wide as their widest cell.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
        let widths: Vec<usize> = (0..header.len())
            .map(|i| {
                rows.iter()
                    .map(|r| r.get(i).map_or(0, String::len))
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &mut dyn Iterator<Item = &str>| {
            let parts: Vec<String> = cells.zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
            parts.join("  ").trim_end().to_string()
        };
        let head = line(&mut header.iter().copied());
        self.line(head)?;
        for r in rows {
            let text = line(&mut r.iter().map(String::as_str));
            self.line(text)?;
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

/// `""` for one, `"s"` otherwise.
pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A size in decimal units (`999 B`, `1.5 MB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_decimal_units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1500), "1.5 kB");
        assert_eq!(human_bytes(2_000_000_000), "2.0 GB");
    }
}
