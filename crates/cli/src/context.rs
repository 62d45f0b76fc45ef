//! The state every command shares: the global options, the environment read once, and how
//! arguments become layouts, references and descriptors. The only shared state of the CLI; the
//! library reads no environment variable, so everything taken from the environment is here.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, ValueEnum};
use ocistow_store::artifact::{AttachOptions, FileSpec};
use ocistow_store::layout::{DEFAULT_LOCK_TIMEOUT, OCI_LAYOUT_FILE};
use ocistow_store::model::annotations::{REF_NAME, TITLE};
use ocistow_store::referrers::{Mode, ResponseKey};
use ocistow_store::staged::Staged;
use ocistow_store::{Descriptor, Digest, Error, ImageIndex, Layout, Platform, Reference, Target};

use ocistow_registry::Client;
use ocistow_registry::client::{ClientOptions, CredentialSource, Credentials};

use crate::exit::usage;
use crate::output::Format;

/// Seconds a writer waits for another process's layout lock.
const LOCK_TIMEOUT_VAR: &str = "OCISTOW_LOCK_TIMEOUT";
/// The created time of pushed manifests and the mtime of exported tar entries.
const SOURCE_DATE_EPOCH_VAR: &str = "SOURCE_DATE_EPOCH";
/// Where the docker config lives (`config.json` inside it), as docker reads it.
const DOCKER_CONFIG_VAR: &str = "DOCKER_CONFIG";
/// The default `--referrers-mode` (clap reads its value; this only tells where a mode came from).
const REFERRERS_MODE_VAR: &str = "OCISTOW_REFERRERS_MODE";

/// What every command is given.
pub struct Context {
    /// `--layout DIR`.
    layout: Option<PathBuf>,
    /// `--format`.
    pub format: Format,
    /// `-v/--verbose`: say what each step did (each file pushed or pulled).
    pub verbose: bool,
    lock_timeout: Duration,
    referrers_mode_from_env: bool,
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, if either can be named.
    docker_config: Option<PathBuf>,
}

impl Context {
    /// The global options (`--layout`, `--format`) and the environment; a malformed
    /// `OCISTOW_LOCK_TIMEOUT` is refused rather than replaced by the default.
    pub fn new(layout: Option<PathBuf>, format: Format, verbose: bool) -> Result<Context> {
        let lock_timeout = match std::env::var_os(LOCK_TIMEOUT_VAR) {
            None => DEFAULT_LOCK_TIMEOUT,
            Some(v) => parse_lock_timeout(&v.to_string_lossy())?,
        };
        Ok(Context {
            layout,
            format,
            verbose,
            lock_timeout,
            referrers_mode_from_env: std::env::var_os(REFERRERS_MODE_VAR)
                .is_some_and(|v| !v.is_empty()),
            docker_config: std::env::var_os(DOCKER_CONFIG_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::home_dir().map(|h| h.join(".docker")))
                .map(|d| d.join("config.json")),
        })
    }

    /// A client for `registry` as the flags say: `--username` with the password from stdin,
    /// else the docker config.
    pub fn registry_client(&self, registry: &str, args: &RegistryArgs) -> Result<Client> {
        let credentials = match &args.username {
            Some(username) => CredentialSource::Given(Credentials {
                username: username.clone(),
                password: read_password_stdin()?,
            }),
            None => match &self.docker_config {
                Some(path) => CredentialSource::DockerConfig(path.clone()),
                None => CredentialSource::Anonymous,
            },
        };
        let options = ClientOptions {
            credentials,
            plain_http: args.plain_http,
            ca_file: args.ca_file.clone(),
            ..ClientOptions::default()
        };
        Ok(Client::new(registry, &options)?)
    }

    /// Whether `--format json` was asked for.
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// Refuses `--format json` for a command that prints no data (`what` names it), so a
    /// script never parses an empty stdout as success.
    pub fn refuse_json(&self, what: &str) -> Result<()> {
        if self.json() {
            return Err(usage(format!(
                "--format json does not apply to {what}: it prints no data (see docs/cli.md)"
            )));
        }
        Ok(())
    }

    /// A reference argument, read against `--layout` when given.
    pub fn reference(&self, arg: &str) -> Result<Reference> {
        Ok(match &self.layout {
            Some(dir) => Reference::in_layout(dir, arg)?,
            None => Reference::parse(arg)?,
        })
    }

    /// Whether references are read against `--layout`.
    pub fn has_layout_option(&self) -> bool {
        self.layout.is_some()
    }

    /// A layout directory argument, or `--layout`.
    pub fn dir(&self, arg: Option<&Path>) -> Result<PathBuf> {
        match (arg, &self.layout) {
            (Some(d), None) => Ok(d.to_path_buf()),
            (None, Some(d)) => Ok(d.clone()),
            (Some(a), Some(b)) if a == b => Ok(a.to_path_buf()),
            (Some(_), Some(_)) => Err(usage(
                "give the layout directory either as an argument or with --layout, not both",
            )),
            (None, None) => Err(usage("which layout? give DIR or --layout DIR")),
        }
    }

    /// Opens the layout of a reference.
    pub fn open(&self, r: &Reference) -> Result<Layout> {
        self.open_dir(&r.dir)
    }

    /// Opens an existing layout.
    pub fn open_dir(&self, dir: &Path) -> Result<Layout> {
        Ok(announce_lock_waits(
            Layout::open(dir)?.with_lock_timeout(self.lock_timeout),
        ))
    }

    /// Opens a layout, creating it when missing.
    pub fn init_dir(&self, dir: &Path) -> Result<Layout> {
        // init takes the lock too: it waits as long as every other writer.
        Ok(announce_lock_waits(Layout::init_with_lock_timeout(
            dir,
            self.lock_timeout,
        )?))
    }

    /// The layout `attach` writes into: the subject must be in it, so a directory that is not
    /// a layout yet is refused with what to do instead.
    pub fn open_for_attach(&self, dir: &Path) -> Result<Layout> {
        if dir.join(OCI_LAYOUT_FILE).exists() {
            return self.open_dir(dir);
        }
        Err(Error::NotALayout {
            path: dir.to_path_buf(),
            reason: "not an OCI layout, so it holds no subject to attach to; put the subject \
                     there first (`ocistow push DIR:TAG FILE...`, `ocistow copy SRC DIR:TAG`)"
                .into(),
        }
        .into())
    }

    /// The layout a push writes into: opened, or created when the directory is missing or
    /// empty (as oras, `copy` and `import` do). A file, or a directory holding anything else, is
    /// refused before anything is written. Give the returned [`Created`] to [`undo_create`] when
    /// the push then fails, so a refused push leaves no trace.
    pub fn open_or_create(&self, dir: &Path) -> Result<(Layout, Created)> {
        if dir.join(OCI_LAYOUT_FILE).exists() {
            return Ok((self.open_dir(dir)?, Created::Existed));
        }
        let created = match fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Created::NewDir,
            Err(e) => return Err(e).with_context(|| dir.display().to_string()),
            Ok(m) if m.is_dir() && fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none()) => {
                Created::InEmptyDir
            }
            Ok(m) if m.is_dir() => {
                // A damaged layout (no oci-layout) or someone's files: never made into a layout.
                let layout = self.open_dir(dir).with_context(|| {
                    format!(
                        "{} is not empty and not a layout: a push creates a layout only in a new or empty directory",
                        dir.display()
                    )
                })?;
                return Ok((layout, Created::Existed));
            }
            Ok(_) => {
                return Err(Error::NotALayout {
                    path: dir.to_path_buf(),
                    reason: "a file, not a layout directory".into(),
                }
                .into());
            }
        };
        Ok((self.init_dir(dir)?, created))
    }

    /// The write mode of a new referrer: the flag (or `OCISTOW_REFERRERS_MODE`), else the
    /// layout's consistent convention, else annotation; with the response key and why.
    pub fn write_mode(
        &self,
        layout: &Layout,
        args: &RecordArgs,
    ) -> Result<(Mode, ResponseKey, &'static str)> {
        let in_use = layout.referrers_mode_in_use()?;
        let key = args
            .response_key
            .map(ResponseKey::from)
            .or(in_use.map(|(_, k)| k))
            .unwrap_or_default();
        Ok(match (args.referrers_mode, in_use) {
            (Some(m), _) => (m.into(), key, self.mode_flag_source()),
            (None, Some((m, _))) => (m, key, "the convention the layout already uses"),
            (None, None) => (Mode::Annotation, key, "the default"),
        })
    }

    /// Records a new referrer in the mode asked for, or else (decided under the layout lock)
    /// the layout's consistent convention, or annotation, in the same transaction that lists
    /// `root` (with its tags) when given. Finishes `staged`, the write that stored them.
    /// Returns the mode and why it was used.
    pub fn record(
        &self,
        staged: Staged,
        root: Option<(&Descriptor, &[String])>,
        referrer: &Descriptor,
        subject: &Digest,
        args: &RecordArgs,
    ) -> Result<(Mode, &'static str)> {
        let asked = args.referrers_mode.map(Mode::from);
        let (mode, _) = staged.commit_batch(
            root,
            &[(referrer.clone(), subject.clone())],
            asked,
            args.response_key.map(ResponseKey::from),
        )?;
        Ok((mode, self.record_why(args)))
    }

    /// How a referrer's mode is chosen with these arguments (for the message).
    pub fn record_why(&self, args: &RecordArgs) -> &'static str {
        match args.referrers_mode {
            Some(_) => self.mode_flag_source(),
            None => "the layout's consistent convention, else the default",
        }
    }

    /// The library's attach options from `--referrers-mode` and `--response-key`.
    pub fn attach_options(args: &RecordArgs) -> AttachOptions {
        AttachOptions::new(args.referrers_mode.map(Mode::from))
            .response_key(args.response_key.map(ResponseKey::from))
    }

    fn mode_flag_source(&self) -> &'static str {
        if self.referrers_mode_from_env {
            "--referrers-mode or OCISTOW_REFERRERS_MODE"
        } else {
            "--referrers-mode"
        }
    }
}

/// How the layout of [`Context::open_or_create`] came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// It was a layout already.
    Existed,
    /// The directory was made for it.
    NewDir,
    /// It was made in a directory that was empty.
    InEmptyDir,
}

impl Created {
    /// Whether the layout is new.
    pub fn is_new(self) -> bool {
        self != Created::Existed
    }
}

/// Removes a layout [`Context::open_or_create`] just made, after the write it was made for
/// failed: the directory it created, or what it put in a directory that was empty. A layout
/// that existed is never touched. Best effort: the write's own error is what is reported.
pub fn undo_create(dir: &Path, created: Created) {
    match created {
        Created::Existed => {}
        Created::NewDir => {
            let _ = fs::remove_dir_all(dir);
        }
        Created::InEmptyDir => {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let _ = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }
}

/// A small input file (an annotation file, a manifest), or stdin for `-`, refused when larger
/// than `limit` (at most one byte past it is read) or when it is not a regular file (a FIFO
/// would block, a directory cannot be read).
pub fn read_input(file: &str, limit: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if file == "-" {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .context("stdin")?;
    } else {
        let meta = fs::metadata(file).with_context(|| file.to_string())?;
        if !meta.is_file() {
            return Err(Error::InvalidInput(format!("{file}: not a regular file")).into());
        }
        fs::File::open(file)
            .with_context(|| file.to_string())?
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .with_context(|| file.to_string())?;
    }
    if bytes.len() as u64 > limit {
        return Err(Error::InvalidInput(format!("{file}: larger than {limit} bytes")).into());
    }
    Ok(bytes)
}

/// `--annotation-file` in oras's format: a JSON object whose `$manifest` and `$config` keys
/// hold the annotations of the manifest and the config, and whose other keys name pushed files
/// (as given on the command line, without `:MEDIATYPE`) and hold their layer's annotations.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AnnotationFile {
    /// `$manifest`.
    pub manifest: BTreeMap<String, String>,
    /// `$config`.
    pub config: BTreeMap<String, String>,
    /// Every other key: a file and its layer's annotations.
    pub files: BTreeMap<PathBuf, BTreeMap<String, String>>,
}

impl AnnotationFile {
    /// Reads and checks `path` against the files pushed: every key a file pushed, every value an
    /// object of strings, no title (it is the file name).
    pub fn read(path: &str, files: &[FileSpec]) -> Result<AnnotationFile> {
        let bytes = read_input(path, ocistow_store::layout::MAX_MANIFEST_SIZE)?;
        Self::parse(&bytes, files).map_err(|e| usage(format!("--annotation-file {path}: {e}")))
    }

    fn parse(bytes: &[u8], files: &[FileSpec]) -> std::result::Result<AnnotationFile, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
        let serde_json::Value::Object(top) = value else {
            return Err("not a JSON object".into());
        };
        let mut out = AnnotationFile::default();
        for (key, v) in top {
            let serde_json::Value::Object(pairs) = v else {
                return Err(format!("{key:?} does not hold an object of annotations"));
            };
            let mut map = BTreeMap::new();
            for (k, v) in pairs {
                let serde_json::Value::String(v) = v else {
                    return Err(format!("{key:?}: the value of {k:?} is not a string"));
                };
                map.insert(k, v);
            }
            match key.as_str() {
                "$manifest" => out.manifest = map,
                "$config" => out.config = map,
                name => {
                    let Some(spec) = files.iter().find(|f| f.path == Path::new(name)) else {
                        return Err(format!(
                            "{name:?} is not a file being pushed (keys are $manifest, $config or a FILE argument)"
                        ));
                    };
                    if map.contains_key(TITLE) {
                        return Err(format!(
                            "{name:?}: {TITLE} is the file name and cannot be set"
                        ));
                    }
                    out.files.insert(spec.path.clone(), map);
                }
            }
        }
        Ok(out)
    }
}

/// `SOURCE_DATE_EPOCH` in seconds, when set; a value that is not a whole number of seconds
/// is refused (reproducible-builds.org: a malformed value is an error, not "now").
pub fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var_os(SOURCE_DATE_EPOCH_VAR) {
        None => Ok(None),
        Some(v) => {
            let text = v.to_string_lossy();
            text.trim().parse::<u64>().map(Some).map_err(|_| {
                usage(format!(
                    "{SOURCE_DATE_EPOCH_VAR}={text:?} is not a number of seconds since 1970"
                ))
            })
        }
    }
}

/// What a reference names, or with `platform` that platform's manifest of the index it names.
pub fn resolve(layout: &Layout, r: &Reference, platform: Option<&str>) -> Result<Descriptor> {
    resolve_in(layout, &layout.read_index()?, r, platform)
}

/// [`resolve`] against the layout's index.json as the caller already read it.
pub fn resolve_in(
    layout: &Layout,
    index: &ImageIndex,
    r: &Reference,
    platform: Option<&str>,
) -> Result<Descriptor> {
    let desc = layout.resolve_in(index, &r.target)?;
    match platform {
        None => Ok(desc),
        Some(p) => Ok(layout.select_platform(&desc, &parse_platform(p)?)?),
    }
}

/// The first line of stdin, without its line end: `--password-stdin`.
fn read_password_stdin() -> Result<String> {
    use std::io::BufRead;
    let mut line = String::new();
    // Bounded: a password is a line, not a stream.
    std::io::stdin()
        .lock()
        .take(64 << 10)
        .read_line(&mut line)
        .map_err(|e| usage(format!("--password-stdin: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(usage("--password-stdin: stdin gave no password"));
    }
    Ok(password.to_string())
}

/// A destination that may name several tags, `DIR:T1,T2` (oras's habit), read by `parse`
/// (a plain reference parser: with or without `--layout`, or a layout path), with every tag checked
/// as the reference grammar checks one. Gives the reference of the first tag and all the tags:
/// none for a plain `DIR`; a digest is refused (`what` says which form the command takes).
pub fn reference_with_tags(
    arg: &str,
    parse: impl Fn(&str) -> Result<Reference>,
    what: &str,
) -> Result<(Reference, Vec<String>)> {
    // The tag list follows the last ':' that has no '/' after it (as a tag does).
    let split = arg
        .rfind(':')
        .filter(|&i| !arg[i..].contains('/') && arg[i..].contains(','));
    let r = match split {
        Some(i) => {
            let (head, list) = (&arg[..i], &arg[i + 1..]);
            let tags = split_tags(list, arg)?;
            let refs = tags
                .iter()
                .map(|t| parse(&format!("{head}:{t}")))
                .collect::<Result<Vec<_>>>()?;
            let first = refs
                .into_iter()
                .next()
                .ok_or_else(|| usage("no tag given"))?;
            return Ok((first, tags));
        }
        None => parse(arg)?,
    };
    let tags = match &r.target {
        Target::Tag(t) => vec![t.clone()],
        Target::Only => Vec::new(),
        Target::Digest(_) => {
            return Err(Error::InvalidReference {
                input: arg.into(),
                reason: what.into(),
            }
            .into());
        }
    };
    Ok((r, tags))
}

/// `T1,T2,...` as tags; an empty one (`v1,,v2`, a trailing comma) is refused.
pub fn split_tags(list: &str, input: &str) -> Result<Vec<String>> {
    let tags: Vec<String> = list.split(',').map(str::to_string).collect();
    if tags.iter().any(String::is_empty) {
        return Err(usage(format!(
            "{input:?} holds an empty tag (tags are separated by single commas)"
        )));
    }
    Ok(tags)
}

/// `OCISTOW_LOCK_TIMEOUT`: seconds, optionally fractional and suffixed `s` (`10`, `0.5`, `30s`).
/// Our command line goes into the lock file while we hold it, and a wait for someone else's
/// lock is said once on stderr: who holds it and how long we wait.
fn announce_lock_waits(layout: Layout) -> Layout {
    let command: Vec<String> = std::env::args().collect();
    layout
        .with_lock_holder(command.join(" "))
        .with_lock_wait_notice(|w| {
            let who = w
                .holder
                .map_or_else(|| "another process".to_string(), |h| format!("{h:?}"));
            eprintln!(
                "ocistow: {} is held by {who}; waiting up to {}s for it",
                w.path.display(),
                w.timeout.as_secs_f64()
            );
        })
}

fn parse_lock_timeout(text: &str) -> Result<Duration> {
    text.trim()
        .strip_suffix('s')
        .unwrap_or(text.trim())
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| {
            usage(format!(
                "{LOCK_TIMEOUT_VAR}={text:?} is not a number of seconds (e.g. 10, 0.5, 30s)"
            ))
        })
}

/// `OS/ARCH[/VARIANT]`.
pub fn parse_platform(text: &str) -> Result<Platform> {
    Platform::parse(text).map_err(|e| Error::InvalidInput(e.to_string()).into())
}

/// `KEY=VALUE` pairs added to `out` (the `$manifest` keys of an annotation file); a key given
/// twice, here or there, is an error rather than a silent overwrite.
pub fn merge_annotations(
    mut out: BTreeMap<String, String>,
    items: &[String],
) -> Result<BTreeMap<String, String>> {
    for item in items {
        let Some((k, v)) = item.split_once('=') else {
            return Err(usage(format!("annotation {item:?} is not KEY=VALUE")));
        };
        if k.trim().is_empty() {
            return Err(usage(format!("annotation {item:?} has an empty key")));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(usage(format!("annotation {k:?} is given twice")));
        }
    }
    Ok(out)
}

/// A media type or artifact type given on the command line: `type/subtype` with no whitespace or
/// control characters (RFC 6838), so that a typo like `"text/ plain"` is refused instead of
/// stored in a manifest.
pub fn check_media_type(what: &str, value: &str) -> Result<()> {
    let well_formed = value
        .split_once('/')
        .is_some_and(|(t, sub)| !t.is_empty() && !sub.is_empty() && !sub.contains('/'))
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if well_formed {
        Ok(())
    } else {
        Err(usage(format!(
            "{what} {value:?} is not a media type (type/subtype, without spaces)"
        )))
    }
}

/// `FILE[:MEDIATYPE]` arguments, as oras reads them, with their media types checked.
pub fn file_specs(items: &[String]) -> Result<Vec<FileSpec>> {
    items.iter().map(|item| file_spec(item)).collect()
}

/// One `FILE[:MEDIATYPE]` argument.
pub fn file_spec(item: &str) -> Result<FileSpec> {
    let spec = FileSpec::parse(item);
    if let Some(mt) = &spec.media_type {
        check_media_type(&format!("the media type of {item:?}:"), mt)?;
    }
    Ok(spec)
}

/// The referrers-response form of a pushed manifest's entry: no tag, its annotations, artifactType.
pub fn referrer_descriptor(entry: &Descriptor) -> Descriptor {
    let mut d = entry.clone();
    d.remove_annotation(REF_NAME);
    d
}

/// How to reach a registry named `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]` (`copy`,
/// `discover`, `resolve`, `tags`, `manifest get`, `blob get`). Without `--username`,
/// credentials come from the docker config (`$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`, with its credential helpers), else none.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Registry")]
pub struct RegistryArgs {
    /// User name for the registry; the password comes from --password-stdin.
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password (or token) for --username from the first line of stdin.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Trust the certificates in this PEM file instead of the system's roots.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Speak plain HTTP to the registry (loopback, a lab network).
    #[arg(long)]
    pub plain_http: bool,
}

/// How a new referrer is recorded (`push --subject`, `attach`, `copy`).
#[derive(Args, Debug, Clone)]
pub struct RecordArgs {
    /// Record referrers as subject annotations, referrers responses or fallback tags
    /// [default: what the layout already uses consistently, else annotation].
    #[arg(long, value_enum, env = "OCISTOW_REFERRERS_MODE", value_name = "MODE")]
    pub referrers_mode: Option<ModeArg>,
    /// Annotation key for response records: oci (org.opencontainers.image.referrer.subject)
    /// or olareg (org.olareg.referrer.subject) [default: what the layout uses, else oci].
    #[arg(long, value_enum, value_name = "KEY")]
    pub response_key: Option<KeyArg>,
}

/// A referrer write mode on the command line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    Annotation,
    Response,
    Tag,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Mode {
        match m {
            ModeArg::Annotation => Mode::Annotation,
            ModeArg::Response => Mode::Response,
            ModeArg::Tag => Mode::Tag,
        }
    }
}

/// The annotation key of referrers-response records on the command line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyArg {
    Oci,
    Olareg,
}

impl From<KeyArg> for ResponseKey {
    fn from(k: KeyArg) -> ResponseKey {
        match k {
            KeyArg::Oci => ResponseKey::Oci,
            KeyArg::Olareg => ResponseKey::Olareg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{USAGE, code_of};

    #[test]
    fn lock_timeout_takes_seconds_and_refuses_anything_else() {
        assert_eq!(parse_lock_timeout("10").unwrap(), Duration::from_secs(10));
        assert_eq!(
            parse_lock_timeout("0.3").unwrap(),
            Duration::from_millis(300)
        );
        assert_eq!(
            parse_lock_timeout(" 30s ").unwrap(),
            Duration::from_secs(30)
        );
        for bad in ["", "ten", "-1", "NaN", "inf", "1e400", "5m"] {
            let err = parse_lock_timeout(bad).unwrap_err();
            assert_eq!(code_of(&err), USAGE, "{bad:?}");
            assert!(err.to_string().contains(LOCK_TIMEOUT_VAR), "{err}");
        }
    }

    #[test]
    fn media_types_are_type_slash_subtype_without_spaces() {
        for good in [
            "text/plain",
            "application/vnd.oci.image.manifest.v1+json",
            "a/b;c=d",
        ] {
            assert!(check_media_type("--artifact-type", good).is_ok(), "{good}");
        }
        for bad in [
            "text/ plain",
            "text plain",
            "textplain",
            "/x",
            "x/",
            "a/b/c",
            "a/b\n",
        ] {
            let err = check_media_type("--artifact-type", bad).unwrap_err();
            assert_eq!(code_of(&err), USAGE, "{bad:?}");
        }
    }

    #[test]
    fn annotations_refuse_missing_values_empty_and_repeated_keys() {
        let parse_annotations = |items: &[String]| merge_annotations(BTreeMap::new(), items);
        let ok = parse_annotations(&["a=1".into(), "b==2".into()]).unwrap();
        assert_eq!(ok["b"], "=2");
        for bad in [vec!["novalue"], vec!["=x"], vec!["a=1", "a=2"]] {
            let items: Vec<String> = bad.iter().map(ToString::to_string).collect();
            assert_eq!(code_of(&parse_annotations(&items).unwrap_err()), USAGE);
        }
    }
}
