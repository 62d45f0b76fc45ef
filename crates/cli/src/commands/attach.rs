//! `ocistow attach SUBJECT FILE... --artifact-type T`: push files as a referrer of a subject.

use anyhow::Result;
use ocistow_store::artifact::{self, PushRequest};

use crate::context::{
    Context, RecordArgs, check_media_type, file_specs, parse_annotations, referrer_descriptor,
    resolve, source_date_epoch,
};
use crate::exit::Outcome;
use crate::output::Output;
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
    /// Attach to this platform's manifest when the subject is an index.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    #[command(flatten)]
    record: RecordArgs,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    check_media_type("--artifact-type", &args.artifact_type)?;
    let r = ctx.reference(&args.reference)?;
    let layout = ctx.open(&r)?;
    let subject = resolve(&layout, &r, args.platform.as_deref())?;
    let req = PushRequest {
        files: file_specs(&args.files)?,
        artifact_type: Some(args.artifact_type.clone()),
        annotations: parse_annotations(&args.annotations)?,
        config: None,
        subject: Some(subject.clone()),
        created: source_date_epoch()?,
        ..PushRequest::default()
    };
    let pushed = artifact::push(&layout, &req, &progress::bar)?;
    let referrer = referrer_descriptor(&pushed.descriptor);
    let (mode, why) = ctx.record(
        pushed.staged,
        None,
        &referrer,
        subject.digest(),
        &args.record,
    )?;
    eprintln!(
        "Attached to {}@{} (recorded as {} referrer, from {why})",
        r.dir.display(),
        subject.digest(),
        mode.as_str()
    );
    out.descriptor(ctx.format, &referrer)?;
    Ok(Outcome::Ok)
}
