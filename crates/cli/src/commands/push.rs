//! `ocistow push DIR[:TAG] FILE...`: push files as an artifact, as `oras push` builds it.

use anyhow::Result;
use ocistow_store::artifact::{self, PushRequest};
use ocistow_store::{Error, Target};

use crate::context::{
    Context, RecordArgs, check_media_type, file_spec, file_specs, parse_annotations,
    referrer_descriptor, resolve, source_date_epoch,
};
use crate::exit::Outcome;
use crate::output::Output;
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// DIR or DIR:TAG (with --layout: the tag).
    reference: String,
    /// Files or directories, each FILE[:MEDIATYPE]. Directories become tar+gzip layers.
    files: Vec<String>,
    /// The manifest's artifactType.
    #[arg(long)]
    artifact_type: Option<String>,
    /// Manifest annotation KEY=VALUE (repeatable).
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// A config blob, FILE[:MEDIATYPE], instead of the empty config.
    #[arg(long, value_name = "FILE[:MEDIATYPE]")]
    config: Option<String>,
    /// Make the artifact a referrer of this subject (DIR:TAG, DIR@DIGEST, or with --layout a tag/@digest).
    #[arg(long, value_name = "REF")]
    subject: Option<String>,
    #[command(flatten)]
    record: RecordArgs,
}

pub fn run(ctx: &Context, out: &mut Output, args: &Args) -> Result<Outcome> {
    let r = ctx.reference(&args.reference)?;
    let tags = match &r.target {
        Target::Tag(t) => vec![t.clone()],
        Target::Only => vec![],
        Target::Digest(_) => {
            return Err(Error::InvalidReference {
                input: args.reference.clone(),
                reason: "push takes DIR or DIR:TAG, not a digest".into(),
            }
            .into());
        }
    };
    let layout = ctx.open(&r)?;
    let subject = match &args.subject {
        Some(s) => {
            let sr = ctx.reference(s)?;
            if sr.dir != r.dir && !ctx.has_layout_option() {
                return Err(Error::InvalidInput(format!(
                    "--subject {s} is in another layout than {}",
                    r.dir.display()
                ))
                .into());
            }
            Some(resolve(&layout, &sr, None)?)
        }
        None => None,
    };
    if let Some(at) = &args.artifact_type {
        check_media_type("--artifact-type", at)?;
    }
    let req = PushRequest {
        files: file_specs(&args.files)?,
        artifact_type: args.artifact_type.clone(),
        annotations: parse_annotations(&args.annotations)?,
        config: args.config.as_deref().map(file_spec).transpose()?,
        subject: subject.clone(),
        created: source_date_epoch()?,
        ..PushRequest::default()
    };
    let pushed = artifact::push(&layout, &req, &progress::bar)?;
    if let Some(s) = &subject {
        let referrer = referrer_descriptor(&pushed.descriptor);
        let root = Some((&pushed.descriptor, tags.as_slice()));
        let (mode, why) = ctx.record(pushed.staged, root, &referrer, s.digest(), &args.record)?;
        eprintln!(
            "Recorded as a {} referrer of {} (from {why})",
            mode.as_str(),
            s.digest()
        );
    } else {
        pushed.staged.commit(&pushed.descriptor, &tags)?;
    }
    eprintln!(
        "Pushed {} (artifactType {})",
        r.display(),
        pushed.descriptor.artifact_type().unwrap_or("none")
    );
    out.descriptor(ctx.format, &pushed.descriptor)?;
    Ok(Outcome::Ok)
}
