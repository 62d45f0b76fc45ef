//! `ocistow attach SUBJECT FILE... --artifact-type T`: push files as a referrer of a subject.

use anyhow::Result;
use ocistow_store::artifact::{self, PushRequest};

use crate::context::{
    AnnotationFile, Context, RecordArgs, check_media_type, file_specs, merge_annotations,
    resolve_in, source_date_epoch,
};
use crate::exit::Outcome;
use crate::output::{Output, pushed_json, verbose_layers};
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The subject: DIR:TAG, DIR@DIGEST or DIR.
    reference: String,
    /// Files, each FILE[:MEDIATYPE].
    files: Vec<String>,
    /// The referrer's artifactType (required).
    #[arg(long, required = true)]
    artifact_type: String,
    /// Manifest annotation KEY=VALUE (repeatable).
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Annotations from a JSON file, as oras reads it: `$manifest`, `$config`, and per-file
    /// keys naming FILE arguments.
    #[arg(long, value_name = "FILE")]
    annotation_file: Option<String>,
    /// Attach to this platform's manifest when the subject is an index.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    #[command(flatten)]
    record: RecordArgs,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    check_media_type("--artifact-type", &args.artifact_type)?;
    let r = ctx.reference(&args.reference)?;
    let files = file_specs(&args.files)?;
    let from_file = match &args.annotation_file {
        Some(path) => AnnotationFile::read(path, &files)?,
        None => AnnotationFile::default(),
    };
    let annotations = merge_annotations(from_file.manifest, &args.annotations)?;
    let layout = ctx.open_for_attach(&r.dir)?;
    // Read once: the record's transaction starts from this parse when index.json is unchanged.
    let index = layout.read_index()?;
    let subject = resolve_in(&layout, &index, &r, args.platform.as_deref())?;
    let req = PushRequest::new(files)
        .artifact_type(Some(args.artifact_type.clone()))
        .annotations(annotations)
        .layer_annotations(from_file.files)
        .config_annotations(from_file.config)
        .subject(Some(subject.clone()))
        .created(source_date_epoch()?);
    let options = Context::attach_options(&args.record);
    let attached = artifact::attach_in(&layout, index, &req, &options, &progress::bar)?;
    if ctx.verbose {
        verbose_layers("Uploaded", &layout.read_blob(attached.descriptor.digest())?);
    }
    let referrer = &attached.descriptor;
    eprintln!(
        "Attached to {}@{} (recorded as {} referrer, from {})",
        r.dir.display(),
        subject.digest(),
        attached.mode.as_str(),
        ctx.record_why(&args.record)
    );
    if ctx.json() {
        let dir = r.dir.display().to_string();
        out.json(&pushed_json(&dir, referrer, &[]))?;
    } else {
        out.line(referrer.digest())?;
    }
    Ok(Outcome::Ok)
}
