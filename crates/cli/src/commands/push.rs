//! `ocistow push DIR[:TAG[,TAG...]] FILE...`: push files as an artifact, as `oras push` builds it.

use anyhow::Result;
use ocistow_store::artifact::{self, PushRequest};

use crate::context::{
    AnnotationFile, Context, RecordArgs, check_media_type, file_spec, file_specs,
    merge_annotations, reference_with_tags, referrer_descriptor, resolve, source_date_epoch,
    undo_create,
};
use crate::exit::{Outcome, usage};
use crate::output::{Output, pushed_json, verbose_layers};
use crate::progress;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// DIR, DIR:TAG or DIR:TAG1,TAG2 (with --layout: the tags). DIR is created when missing
    /// or empty.
    reference: String,
    /// Files or directories, each FILE[:MEDIATYPE]. Directories become tar+gzip layers.
    files: Vec<String>,
    /// The manifest's artifactType.
    #[arg(long)]
    artifact_type: Option<String>,
    /// Manifest annotation KEY=VALUE (repeatable).
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Annotations from a JSON file, as oras reads it: `$manifest`, `$config`, and per-file
    /// keys naming FILE arguments.
    #[arg(long, value_name = "FILE")]
    annotation_file: Option<String>,
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
    let (r, tags) = reference_with_tags(
        &args.reference,
        |a| ctx.reference(a),
        "push takes DIR or DIR:TAG, not a digest",
    )?;
    // Everything the command line can get wrong is checked before the layout is created.
    if let Some(at) = &args.artifact_type {
        check_media_type("--artifact-type", at)?;
    }
    let files = file_specs(&args.files)?;
    let from_file = match &args.annotation_file {
        Some(path) => AnnotationFile::read(path, &files)?,
        None => AnnotationFile::default(),
    };
    let req = PushRequest::new(files)
        .artifact_type(args.artifact_type.clone())
        .annotations(merge_annotations(from_file.manifest, &args.annotations)?)
        .layer_annotations(from_file.files)
        .config(args.config.as_deref().map(file_spec).transpose()?)
        .config_annotations(from_file.config)
        .created(source_date_epoch()?);
    if let Some(s) = &args.subject {
        let sr = ctx.reference(s)?;
        if sr.dir != r.dir && !ctx.has_layout_option() {
            return Err(usage(format!(
                "--subject {s} is in another layout than {}",
                r.dir.display()
            )));
        }
    }
    let (layout, created) = ctx.open_or_create(&r.dir)?;
    let result = (|| {
        let subject = match &args.subject {
            Some(s) => Some(resolve(&layout, &ctx.reference(s)?, None)?),
            None => None,
        };
        let req = req.subject(subject.clone());
        let pushed = artifact::push(&layout, &req, &progress::bar)?;
        let recorded = if let Some(s) = &subject {
            let referrer = referrer_descriptor(&pushed.descriptor);
            let root = Some((&pushed.descriptor, tags.as_slice()));
            let how = ctx.record(pushed.staged, root, &referrer, s.digest(), &args.record)?;
            Some((how, s.digest().clone()))
        } else {
            pushed.staged.commit(&pushed.descriptor, &tags)?;
            None
        };
        Ok::<_, anyhow::Error>((pushed.descriptor, pushed.manifest, recorded))
    })();
    let (descriptor, manifest, recorded) = result.inspect_err(|_| undo_create(&r.dir, created))?;
    if ctx.verbose {
        verbose_layers("Uploaded", &manifest);
    }
    if let Some(((mode, why), subject)) = &recorded {
        eprintln!(
            "Recorded as a {} referrer of {subject} (from {why})",
            mode.as_str()
        );
    }
    eprintln!(
        "Pushed {}{} (artifactType {})",
        r.display(),
        if created.is_new() {
            " (layout created)"
        } else {
            ""
        },
        descriptor.artifact_type().unwrap_or("none")
    );
    if ctx.json() {
        let dir = r.dir.display().to_string();
        out.json(&pushed_json(&dir, &descriptor, &tags))?;
    } else {
        out.line(descriptor.digest())?;
    }
    Ok(Outcome::Ok)
}
