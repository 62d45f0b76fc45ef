//! The referrer commands: attach, discover, referrers status and convert, and how a new
//! referrer is recorded (shared with `push --subject` and `copy`).

use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;
use serde_json::{Value, json};

use ocistow_store::artifact::{self, FileSpec, PushRequest};
use ocistow_store::referrers::{Mode, Node, ResponseKey, ScanOptions};
use ocistow_store::{Descriptor, Digest, Error, Layout, Target};

use crate::cli::{AttachArgs, Format, KeyArg, ModeArg, RecordArgs, ReferrersCommand};
use crate::commands::{Ctx, Outcome, parse_annotations};
use crate::progress;

pub(crate) fn mode_of(m: ModeArg) -> Mode {
    match m {
        ModeArg::Annotation => Mode::Annotation,
        ModeArg::Response => Mode::Response,
        ModeArg::Tag => Mode::Tag,
    }
}

pub(crate) fn key_of(k: KeyArg) -> ResponseKey {
    match k {
        KeyArg::Oci => ResponseKey::Oci,
        KeyArg::Olareg => ResponseKey::Olareg,
    }
}

impl Ctx<'_> {
    /// The write mode: flag or `OCISTOW_REFERRERS_MODE`, else the layout's consistent
    /// convention, else annotation. Says which on stderr.
    pub(crate) fn write_mode(
        &self,
        layout: &Layout,
        args: &RecordArgs,
    ) -> Result<(Mode, ResponseKey, &'static str)> {
        let in_use = layout.referrers_mode_in_use()?;
        let key = args
            .response_key
            .map(key_of)
            .or(in_use.map(|(_, k)| k))
            .unwrap_or_default();
        Ok(match (args.referrers_mode, in_use) {
            (Some(m), _) => {
                let from_env = std::env::var("OCISTOW_REFERRERS_MODE").is_ok_and(|v| !v.is_empty());
                (
                    mode_of(m),
                    key,
                    if from_env {
                        "--referrers-mode or OCISTOW_REFERRERS_MODE"
                    } else {
                        "--referrers-mode"
                    },
                )
            }
            (None, Some((m, _))) => (m, key, "the convention the layout already uses"),
            (None, None) => (Mode::Annotation, key, "the default"),
        })
    }

    /// Records a new referrer in the mode asked for, or else (decided under the layout lock)
    /// the layout's consistent convention, or annotation. Returns the mode and why it was used.
    pub(crate) fn record(
        &self,
        layout: &Layout,
        referrer: &Descriptor,
        subject: &Digest,
        args: &RecordArgs,
    ) -> Result<(Mode, &'static str)> {
        let asked = args.referrers_mode.map(mode_of);
        let (mode, _) =
            layout.record_referrer_auto(referrer, subject, asked, args.response_key.map(key_of))?;
        let why = match asked {
            Some(_) if std::env::var("OCISTOW_REFERRERS_MODE").is_ok_and(|v| !v.is_empty()) => {
                "--referrers-mode or OCISTOW_REFERRERS_MODE"
            }
            Some(_) => "--referrers-mode",
            None => "the layout's consistent convention, else the default",
        };
        Ok((mode, why))
    }

    pub(crate) fn attach(&self, args: &AttachArgs) -> Result<Outcome> {
        let r = self.reference(&args.reference)?;
        let layout = self.open(&r)?;
        let subject = self.resolve(&layout, &r, args.platform.as_deref())?;
        let req = PushRequest {
            files: args.files.iter().map(|f| FileSpec::parse(f)).collect(),
            artifact_type: Some(args.artifact_type.clone()),
            annotations: parse_annotations(&args.annotations)?,
            config: None,
            subject: Some(subject.clone()),
        };
        let pushed = artifact::push(&layout, &req, &progress::bar)?;
        let referrer = referrer_descriptor(&pushed.descriptor);
        let (mode, why) = self.record(&layout, &referrer, subject.digest(), &args.record)?;
        eprintln!(
            "Attached to {}@{} (recorded as {} referrer, from {why})",
            r.dir.display(),
            subject.digest(),
            mode.as_str()
        );
        self.print_descriptor(&referrer)?;
        Ok(Outcome::Ok)
    }

    pub(crate) fn discover(
        &self,
        reference: &str,
        types: &[String],
        depth: Option<usize>,
        deep: bool,
        platform: Option<&str>,
    ) -> Result<Outcome> {
        let r = self.reference(reference)?;
        let layout = self.open(&r)?;
        let graph = layout.scan_referrers(ScanOptions { deep })?;
        let root = match (self.resolve(&layout, &r, platform), &r.target) {
            (Ok(d), _) => d,
            // A subject whose blob is absent still has an answer: describe it from what its
            // referrers say about it.
            (Err(e), Target::Digest(d)) if is_not_found(&e) && platform.is_none() => graph
                .referrers_of(d)
                .first()
                .map(|first| first.subject.plain())
                .unwrap_or_else(|| Descriptor::new("application/octet-stream", d.clone(), 0)),
            (Err(e), _) => return Err(e),
        };
        let tree = graph.tree(&root, types, depth);
        let prefix = r.dir.display().to_string();
        match self.cli.format {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&tree.to_oras_json(&prefix))?
            ),
            Format::Table => print_table(&tree),
            Format::Text | Format::Tree => {
                let mut out = io::stdout().lock();
                writeln!(out, "{prefix}@{}", tree.descriptor.digest())?;
                draw(&mut out, &tree, "")?;
            }
        }
        Ok(Outcome::Ok)
    }

    pub(crate) fn referrers(&self, cmd: &ReferrersCommand) -> Result<Outcome> {
        match cmd {
            ReferrersCommand::Status { dir } => self.referrers_status(dir.as_deref()),
            ReferrersCommand::Convert {
                dir,
                to,
                response_key,
                keep,
                dry_run,
            } => {
                let layout = Layout::open(self.dir(dir.as_deref())?)?;
                let report = layout.convert_referrers(
                    mode_of(*to),
                    key_of(*response_key),
                    *keep,
                    *dry_run,
                )?;
                if self.json() {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    println!(
                        "{} {} referrers as {}: {} records added, {} updated, {} removed{}",
                        if report.dry_run {
                            "Would record"
                        } else {
                            "Recorded"
                        },
                        report.referrers,
                        report.mode.as_str(),
                        report.added,
                        report.updated,
                        report.removed,
                        if report.changed {
                            ""
                        } else {
                            " (index.json unchanged)"
                        }
                    );
                }
                Ok(Outcome::Ok)
            }
        }
    }

    fn referrers_status(&self, dir: Option<&Path>) -> Result<Outcome> {
        use ocistow_store::referrers::Convention as C;
        let layout = Layout::open(self.dir(dir)?)?;
        let graph = layout.scan_referrers(ScanOptions { deep: true })?;
        let conventions = [
            C::Plain,
            C::FallbackTag,
            C::Response,
            C::SubjectAnnotation,
            C::Attestation,
            C::Nested,
            C::DeepScan,
        ];
        let counts: Vec<(C, usize)> = conventions
            .iter()
            .map(|&c| (c, graph.count(c)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let mode = layout.referrers_mode_in_use()?;
        if self.json() {
            let conv: serde_json::Map<String, Value> = counts
                .iter()
                .map(|(c, n)| (c.as_str().to_string(), json!(n)))
                .collect();
            let issues: Vec<Value> = graph
                .issues()
                .iter()
                .map(|i| json!({"kind": i.kind(), "message": i.to_string()}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "referrers": graph.referrers().len(),
                    "subjects": graph.subjects().len(),
                    "conventions": conv,
                    "records": {
                        "response": graph.record_count(C::Response),
                        "fallback-tag": graph.record_count(C::FallbackTag),
                    },
                    "mode": mode.map(|(m, _)| m.as_str()),
                    "issues": issues,
                }))?
            );
        } else {
            println!(
                "{} referrers of {} subjects",
                graph.referrers().len(),
                graph.subjects().len()
            );
            for (c, n) in &counts {
                println!("  {:<20} {n}", c.as_str());
            }
            match mode {
                Some((m, _)) => println!("write mode in use: {}", m.as_str()),
                None => {
                    println!("write mode in use: none consistently (writes default to annotation)")
                }
            }
            if graph.issues().is_empty() {
                println!("no inconsistencies");
            } else {
                println!("{} inconsistencies:", graph.issues().len());
                for i in graph.issues() {
                    println!("  {}: {i}", i.kind());
                }
            }
        }
        Ok(if graph.issues().is_empty() {
            Outcome::Ok
        } else {
            Outcome::No
        })
    }
}

pub(crate) fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| matches!(c.downcast_ref::<Error>(), Some(Error::NotFound { .. })))
}

/// The referrers-response form of a pushed manifest's entry: no tag, its annotations, artifactType.
pub(crate) fn referrer_descriptor(entry: &Descriptor) -> Descriptor {
    let mut d = entry.clone();
    d.remove_annotation(ocistow_store::model::annotations::REF_NAME);
    d
}

/// Draws a discover tree as oras does: referrers grouped by artifact type, each with its
/// annotations and its own referrers.
fn draw(out: &mut dyn Write, node: &Node, indent: &str) -> io::Result<()> {
    let mut groups: Vec<(&str, Vec<&Node>)> = Vec::new();
    for child in &node.referrers {
        let at = child.descriptor.artifact_type().unwrap_or("<unknown>");
        match groups.iter_mut().find(|(t, _)| *t == at) {
            Some((_, list)) => list.push(child),
            None => groups.push((at, vec![child])),
        }
    }
    for (gi, (at, children)) in groups.iter().enumerate() {
        let last_group = gi + 1 == groups.len();
        writeln!(
            out,
            "{indent}{}{at}",
            if last_group {
                "└── "
            } else {
                "├── "
            }
        )?;
        let gindent = format!("{indent}{}", if last_group { "    " } else { "│   " });
        for (ci, child) in children.iter().enumerate() {
            let last_child = ci + 1 == children.len();
            writeln!(
                out,
                "{gindent}{}{}",
                if last_child {
                    "└── "
                } else {
                    "├── "
                },
                child.descriptor.digest()
            )?;
            let cindent = format!("{gindent}{}", if last_child { "    " } else { "│   " });
            let annotations: Vec<(String, String)> = child
                .descriptor
                .annotations()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
                .unwrap_or_default();
            if !annotations.is_empty() {
                let last = child.referrers.is_empty();
                writeln!(
                    out,
                    "{cindent}{}[annotations]",
                    if last { "└── " } else { "├── " }
                )?;
                let aindent = format!("{cindent}{}", if last { "    " } else { "│   " });
                for (ai, (k, v)) in annotations.iter().enumerate() {
                    let l = ai + 1 == annotations.len();
                    writeln!(out, "{aindent}{}{k}: {v}", if l { "└── " } else { "├── " })?;
                }
            }
            draw(out, child, &cindent)?;
        }
    }
    Ok(())
}

fn print_table(root: &Node) {
    fn rows(node: &Node, depth: usize, out: &mut Vec<[String; 4]>) {
        for c in &node.referrers {
            out.push([
                depth.to_string(),
                c.descriptor.digest().to_string(),
                c.descriptor.artifact_type().unwrap_or("-").to_string(),
                node.descriptor.digest().to_string(),
            ]);
            rows(c, depth + 1, out);
        }
    }
    let mut table = Vec::new();
    rows(root, 1, &mut table);
    println!(
        "{:<5}  {:<71}  {:<40}  SUBJECT",
        "DEPTH", "DIGEST", "ARTIFACTTYPE"
    );
    for [d, dg, at, s] in table {
        println!("{d:<5}  {dg:<71}  {at:<40}  {s}");
    }
}
