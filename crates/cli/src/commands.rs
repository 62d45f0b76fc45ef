//! One function per command. Layout logic lives in `ocistow-store`; this file parses arguments
//! into library calls and prints results.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use ocistow_store::artifact::{self, FileSpec, PushRequest};
use ocistow_store::layout::Expected;
use ocistow_store::{Descriptor, Digest, Error, Layout, Platform, Reference, Target};

use crate::cli::{BlobCommand, Cli, Command, Format, ManifestCommand, PushArgs};
use crate::progress;
use crate::referrers_cmd::referrer_descriptor;
use ocistow_store::referrers::ScanOptions;

/// What `main` exits with when a command ran to its end.
pub enum Outcome {
    Ok,
    /// A negative answer that is not an error (`blob exists` of an absent blob).
    No,
}

pub fn run(cli: &Cli) -> Result<Outcome> {
    let ctx = Ctx { cli };
    match &cli.command {
        Command::Init { dir } => ctx.init(dir.as_deref()),
        Command::Push(args) => ctx.push(args),
        Command::Pull {
            reference,
            output,
            platform,
        } => ctx.pull(reference, output, platform.as_deref()),
        Command::Tag { reference, tags } => ctx.tag(reference, tags),
        Command::Untag { reference } => ctx.untag(reference),
        Command::Tags { dir } => ctx.tags(dir.as_deref()),
        Command::Resolve {
            reference,
            platform,
        } => ctx.resolve_cmd(reference, platform.as_deref()),
        Command::Ls { dir } => ctx.ls(dir.as_deref()),
        Command::Attach(args) => ctx.attach(args),
        Command::Discover {
            reference,
            artifact_type,
            depth,
            deep,
            platform,
        } => ctx.discover(reference, artifact_type, *depth, *deep, platform.as_deref()),
        Command::Referrers(cmd) => ctx.referrers(cmd),
        Command::Copy { .. } | Command::Export { .. } | Command::Import { .. } => {
            crate::transfer_cmd::run(cli)
        }
        Command::Gc { .. } | Command::Fsck { .. } => crate::maintenance_cmd::run(cli),
        Command::Manifest(m) => match m {
            ManifestCommand::Get {
                reference,
                platform,
            } => ctx.manifest_get(reference, platform.as_deref()),
            ManifestCommand::Put {
                reference,
                file,
                media_type,
                allow_sparse,
            } => ctx.manifest_put(reference, file, media_type.as_deref(), *allow_sparse),
            ManifestCommand::Delete {
                reference,
                with_referrers,
            } => ctx.manifest_delete(reference, *with_referrers),
        },
        Command::Blob(b) => match b {
            BlobCommand::Get { reference, output } => ctx.blob_get(reference, output.as_deref()),
            BlobCommand::Put {
                dir,
                file,
                digest,
                size,
            } => ctx.blob_put(dir, file, digest.as_deref(), *size),
            BlobCommand::Delete { reference } => ctx.blob_delete(reference),
            BlobCommand::Exists { reference } => ctx.blob_exists(reference),
        },
    }
}

/// What every command needs: the parsed command line, and helpers to read its references.
pub(crate) struct Ctx<'a> {
    pub(crate) cli: &'a Cli,
}

impl Ctx<'_> {
    pub(crate) fn json(&self) -> bool {
        self.cli.format == Format::Json
    }

    /// A reference argument, read against `--layout` when given.
    pub(crate) fn reference(&self, arg: &str) -> Result<Reference> {
        Ok(match &self.cli.layout {
            Some(dir) => Reference::in_layout(dir, arg)?,
            None => Reference::parse(arg)?,
        })
    }

    /// A layout directory argument, or `--layout`.
    pub(crate) fn dir(&self, arg: Option<&Path>) -> Result<PathBuf> {
        match (arg, &self.cli.layout) {
            (Some(d), None) => Ok(d.to_path_buf()),
            (None, Some(d)) => Ok(d.clone()),
            (Some(a), Some(b)) if a == b => Ok(a.to_path_buf()),
            (Some(_), Some(_)) => {
                bail!("give the layout directory either as an argument or with --layout, not both")
            }
            (None, None) => bail!("which layout? give DIR or --layout DIR"),
        }
    }

    pub(crate) fn open(&self, r: &Reference) -> Result<Layout> {
        Ok(Layout::open(&r.dir)?)
    }

    pub(crate) fn resolve(
        &self,
        layout: &Layout,
        r: &Reference,
        platform: Option<&str>,
    ) -> Result<Descriptor> {
        let desc = layout.resolve(&r.target)?;
        match platform {
            None => Ok(desc),
            Some(p) => {
                let p = Platform::parse(p).map_err(|e| anyhow!(Error::InvalidInput(e)))?;
                Ok(layout.select_platform(&desc, &p)?)
            }
        }
    }

    pub(crate) fn print_descriptor(&self, desc: &Descriptor) -> Result<()> {
        if self.json() {
            println!("{}", serde_json::to_string_pretty(desc)?);
        } else {
            println!("{}", desc.digest());
        }
        Ok(())
    }

    fn init(&self, dir: Option<&Path>) -> Result<Outcome> {
        let dir = self.dir(dir)?;
        let existed = dir.join(ocistow_store::layout::OCI_LAYOUT_FILE).exists();
        Layout::init(&dir)?;
        if existed {
            eprintln!("{} is already an OCI layout", dir.display());
        } else {
            eprintln!("Initialized an empty OCI layout in {}", dir.display());
        }
        Ok(Outcome::Ok)
    }

    fn push(&self, args: &PushArgs) -> Result<Outcome> {
        let r = self.reference(&args.reference)?;
        let tags = match &r.target {
            Target::Tag(t) => vec![t.clone()],
            Target::Only => vec![],
            Target::Digest(_) => bail!(Error::InvalidReference {
                input: args.reference.clone(),
                reason: "push takes DIR or DIR:TAG, not a digest".into()
            }),
        };
        let layout = self.open(&r)?;
        let subject = match &args.subject {
            Some(s) => {
                let sr = self.reference(s)?;
                if sr.dir != r.dir && self.cli.layout.is_none() {
                    bail!(Error::InvalidInput(format!(
                        "--subject {s} is in another layout than {}",
                        r.dir.display()
                    )));
                }
                Some(self.resolve(&layout, &sr, None)?)
            }
            None => None,
        };
        let req = PushRequest {
            files: args.files.iter().map(|f| FileSpec::parse(f)).collect(),
            artifact_type: args.artifact_type.clone(),
            annotations: parse_annotations(&args.annotations)?,
            config: args.config.as_deref().map(FileSpec::parse),
            subject: subject.clone(),
        };
        let pushed = artifact::push(&layout, &req, &progress::bar)?;
        layout.add_entry(&pushed.descriptor, &tags)?;
        if let Some(s) = &subject {
            let referrer = referrer_descriptor(&pushed.descriptor);
            let (mode, why) = self.record(&layout, &referrer, s.digest(), &args.record)?;
            eprintln!(
                "Recorded as a {} referrer of {} (from {why})",
                mode.as_str(),
                s.digest()
            );
        }
        eprintln!(
            "Pushed {} (artifactType {})",
            r.display(),
            pushed.descriptor.artifact_type().unwrap_or("none")
        );
        self.print_descriptor(&pushed.descriptor)?;
        Ok(Outcome::Ok)
    }

    fn pull(&self, reference: &str, output: &Path, platform: Option<&str>) -> Result<Outcome> {
        let r = self.reference(reference)?;
        let layout = self.open(&r)?;
        let desc = self.resolve(&layout, &r, platform)?;
        let written = artifact::pull(&layout, &desc, output, &progress::bar)?;
        if self.json() {
            let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"digest": desc.digest(), "files": files}))?
            );
        } else {
            for p in &written {
                println!("{}", p.display());
            }
            eprintln!("Pulled {} ({})", r.display(), desc.digest());
        }
        Ok(Outcome::Ok)
    }

    fn tag(&self, reference: &str, tags: &[String]) -> Result<Outcome> {
        let r = self.reference(reference)?;
        let layout = self.open(&r)?;
        let desc = self.resolve(&layout, &r, None)?;
        layout.add_entry(&desc, tags)?;
        for t in tags {
            eprintln!("Tagged {} as {t}", desc.digest());
        }
        Ok(Outcome::Ok)
    }

    fn untag(&self, reference: &str) -> Result<Outcome> {
        let r = self.reference(reference)?;
        let Target::Tag(tag) = &r.target else {
            bail!(Error::InvalidReference {
                input: reference.into(),
                reason: "untag needs DIR:TAG".into()
            });
        };
        let layout = self.open(&r)?;
        let removed = layout.untag(tag)?;
        for d in removed {
            eprintln!("Untagged {tag} ({})", d.digest());
        }
        Ok(Outcome::Ok)
    }

    fn tags(&self, dir: Option<&Path>) -> Result<Outcome> {
        let layout = Layout::open(self.dir(dir)?)?;
        let tags = layout.tags()?;
        if self.json() {
            let list: Vec<Value> = tags
                .iter()
                .map(|(t, d)| json!({"tag": t, "digest": d.digest()}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        } else {
            for (t, _) in tags {
                println!("{t}");
            }
        }
        Ok(Outcome::Ok)
    }

    fn resolve_cmd(&self, reference: &str, platform: Option<&str>) -> Result<Outcome> {
        let r = self.reference(reference)?;
        let layout = self.open(&r)?;
        let desc = self.resolve(&layout, &r, platform)?;
        self.print_descriptor(&desc)?;
        Ok(Outcome::Ok)
    }

    fn ls(&self, dir: Option<&Path>) -> Result<Outcome> {
        let layout = Layout::open(self.dir(dir)?)?;
        let index = layout.read_index()?;
        let rows: Vec<Value> = index
            .manifests()
            .iter()
            .map(|d| {
                json!({
                    "ref": d.ref_name(),
                    "digest": d.digest(),
                    "mediaType": d.media_type(),
                    "artifactType": d.artifact_type(),
                    "platform": d.platform().map(|p| p.to_string()),
                    "size": d.size(),
                    "annotations": d.annotations(),
                })
            })
            .collect();
        if self.json() {
            println!("{}", serde_json::to_string_pretty(&rows)?);
            return Ok(Outcome::Ok);
        }
        let cell = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".into(),
            other => other.to_string(),
        };
        let header = [
            "REF",
            "DIGEST",
            "MEDIATYPE",
            "ARTIFACTTYPE",
            "PLATFORM",
            "SIZE",
        ];
        let keys = [
            "ref",
            "digest",
            "mediaType",
            "artifactType",
            "platform",
            "size",
        ];
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|r| keys.iter().map(|k| cell(&r[k])).collect())
            .collect();
        let widths: Vec<usize> = (0..keys.len())
            .map(|i| {
                table
                    .iter()
                    .map(|r| r[i].len())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:w$}"))
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        let mut out = io::stdout().lock();
        writeln!(out, "{}", line(header.to_vec()))?;
        for r in &table {
            writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
        }
        Ok(Outcome::Ok)
    }

    fn manifest_get(&self, reference: &str, platform: Option<&str>) -> Result<Outcome> {
        let r = self.reference(reference)?;
        let layout = self.open(&r)?;
        let desc = self.resolve(&layout, &r, platform)?;
        let (bytes, _) = layout.read_manifest(&desc)?;
        io::stdout().write_all(&bytes)?;
        Ok(Outcome::Ok)
    }

    fn manifest_put(
        &self,
        reference: &str,
        file: &str,
        media_type: Option<&str>,
        sparse: bool,
    ) -> Result<Outcome> {
        let r = self.reference(reference)?;
        let tags = match &r.target {
            Target::Tag(t) => vec![t.clone()],
            Target::Only => vec![],
            Target::Digest(_) => bail!(Error::InvalidReference {
                input: reference.into(),
                reason: "manifest put takes DIR or DIR:TAG".into()
            }),
        };
        let layout = self.open(&r)?;
        let bytes = read_input(file, ocistow_store::layout::MAX_MANIFEST_SIZE)?;
        let what = if file == "-" { "stdin" } else { file };
        // Everything that can fail on input is checked before the first write.
        layout.check_index()?;
        layout
            .validate_manifest(&bytes, media_type, sparse)
            .with_context(|| what.to_string())?;
        let _pin = layout.pin()?;
        let desc = layout
            .put_manifest(&bytes, media_type, sparse)
            .with_context(|| what.to_string())?;
        layout.add_entry(&desc, &tags)?;
        self.print_descriptor(&desc)?;
        Ok(Outcome::Ok)
    }

    fn manifest_delete(&self, reference: &str, with_referrers: bool) -> Result<Outcome> {
        let r = self.reference(reference)?;
        let layout = self.open(&r)?;
        let desc = self.resolve(&layout, &r, None)?;
        let graph = layout.scan_referrers(ScanOptions { deep: false })?;
        let mut doomed = std::collections::BTreeSet::from([desc.digest().clone()]);
        let direct: Vec<String> = graph
            .referrers_of(desc.digest())
            .iter()
            .map(|r| r.digest().to_string())
            .collect();
        if !direct.is_empty() && !with_referrers {
            bail!(Error::Conflict(format!(
                "{} has referrers ({}); delete them first or pass --with-referrers",
                desc.digest(),
                direct.join(", ")
            )));
        }
        let mut queue = vec![desc.digest().clone()];
        while let Some(d) = queue.pop() {
            for child in graph.referrers_of(&d) {
                if doomed.insert(child.digest().clone()) {
                    queue.push(child.digest().clone());
                }
            }
        }
        let n = layout.delete_manifests(&doomed)?;
        for d in &doomed {
            eprintln!("Deleted {d}");
        }
        eprintln!("({n} index.json entries removed or rewritten)");
        Ok(Outcome::Ok)
    }

    /// A `DIR@DIGEST` argument.
    fn blob_ref(&self, reference: &str) -> Result<(Layout, Digest)> {
        let r = self.reference(reference)?;
        let Target::Digest(d) = &r.target else {
            bail!(Error::InvalidReference {
                input: reference.into(),
                reason: "blobs are named DIR@DIGEST".into()
            });
        };
        Ok((self.open(&r)?, d.clone()))
    }

    fn blob_get(&self, reference: &str, output: Option<&Path>) -> Result<Outcome> {
        let (layout, digest) = self.blob_ref(reference)?;
        // get verifies, so an algorithm we cannot compute is an error whether or not the file exists.
        digest.known_algorithm()?;
        let size = layout.blob_size(&digest)?.ok_or_else(|| Error::NotFound {
            what: format!("blob {digest} in {}", layout.root().display()),
            hint: String::new(),
        })?;
        let bar = progress::bar(&digest.to_string(), size);
        match output {
            None => {
                let mut out = io::BufWriter::new(io::stdout().lock());
                layout.copy_blob_to(&digest, None, &mut out, bar.as_ref())?;
                out.flush()?;
            }
            // A device or pipe (`-o /dev/null`) is written to directly: renaming a temp file over
            // it would replace the device.
            Some(path) if fs::metadata(path).is_ok_and(|m| !m.is_file()) => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .with_context(|| format!("{}", path.display()))?;
                layout.copy_blob_to(&digest, None, &mut f, bar.as_ref())?;
            }
            Some(path) => {
                let dir = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                let mut temp = tempfile::NamedTempFile::new_in(dir)
                    .with_context(|| format!("{}", dir.display()))?;
                {
                    let mut w = io::BufWriter::new(temp.as_file_mut());
                    layout.copy_blob_to(&digest, None, &mut w, bar.as_ref())?;
                    w.flush()?;
                }
                temp.persist(path)
                    .with_context(|| format!("{}", path.display()))?;
            }
        }
        Ok(Outcome::Ok)
    }

    fn blob_put(
        &self,
        dir: &str,
        file: &str,
        digest: Option<&str>,
        size: Option<u64>,
    ) -> Result<Outcome> {
        let layout = Layout::open(self.dir(Some(Path::new(dir)))?)?;
        let expected = Expected {
            digest: digest.map(Digest::parse).transpose()?,
            size,
        };
        let (digest, size) = if file == "-" {
            layout
                .write_blob(&mut io::stdin().lock(), expected)
                .context("storing stdin as a blob")?
        } else {
            let path = Path::new(file);
            let mut f = fs::File::open(path).with_context(|| format!("{}", path.display()))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = progress::bar(file, len);
            layout
                .write_blob_with_progress(&mut f, expected, bar.as_ref())
                .with_context(|| format!("storing {file} as a blob"))?
        };
        if self.json() {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"digest": digest, "size": size}))?
            );
        } else {
            println!("{digest}");
        }
        Ok(Outcome::Ok)
    }

    fn blob_delete(&self, reference: &str) -> Result<Outcome> {
        let (layout, digest) = self.blob_ref(reference)?;
        layout.delete_blob(&digest)?;
        eprintln!("Deleted blob {digest}");
        Ok(Outcome::Ok)
    }

    fn blob_exists(&self, reference: &str) -> Result<Outcome> {
        let (layout, digest) = self.blob_ref(reference)?;
        let size = layout.blob_size(&digest)?;
        if self.json() {
            println!(
                "{}",
                json!({"digest": digest, "exists": size.is_some(), "size": size})
            );
        }
        Ok(if size.is_some() {
            Outcome::Ok
        } else {
            Outcome::No
        })
    }
}

/// `KEY=VALUE` pairs; a key given twice is an error rather than a silent overwrite.
pub(crate) fn parse_annotations(items: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some((k, v)) = item.split_once('=') else {
            bail!(Error::InvalidInput(format!(
                "annotation {item:?} is not KEY=VALUE"
            )));
        };
        if k.trim().is_empty() {
            bail!(Error::InvalidInput(format!(
                "annotation {item:?} has an empty key"
            )));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            bail!(Error::InvalidInput(format!(
                "annotation {k:?} is given twice"
            )));
        }
    }
    Ok(out)
}

fn read_input(file: &str, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file == "-" {
        io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .context("stdin")?;
    } else {
        fs::File::open(file)
            .with_context(|| file.to_string())?
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .with_context(|| file.to_string())?;
    }
    if bytes.len() as u64 > limit {
        bail!(Error::InvalidInput(format!(
            "{file}: larger than {limit} bytes"
        )));
    }
    Ok(bytes)
}
