//! Inline snapshots of what users read: every command's help, `ls` tables, `discover` trees,
//! tables and JSON, `referrers status` text and JSON, every command's JSON on a layout and on a
//! registry. A change to any of them shows here as a
//! diff; after checking it, `SNAPSHOTS=overwrite cargo test --test tests snapshots::` rewrites
//! the literals in this file.

// snapbox writes the literals as r#"..."# whatever they hold; rewriting them by hand would be
// undone by the next overwrite.
#![allow(clippy::needless_raw_string_hashes)]

use std::path::Path;

use snapbox::{assert_data_eq, str};

use crate::common::{cmd, writable_fixture};

/// Stdout of `ocistow ARGS` run in `cwd` (so the layout is named by a short relative path),
/// with the exit code it must have.
fn stdout_in(cwd: &Path, args: &[&str], code: i32) -> String {
    let out = cmd().current_dir(cwd).args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "`ocistow {}`: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `ocistow ARGS --help`.
fn help(args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--help");
    stdout_in(Path::new("."), &all, 0)
}

/// Stdout of `ocistow ARGS` (exit `code`) on a copy of fixture `name`, reachable as `layout`.
fn on_fixture(name: &str, args: &[&str], code: i32) -> String {
    let (tmp, _dir) = writable_fixture(name);
    stdout_in(tmp.path(), args, code)
}

// ---- help texts --------------------------------------------------------------------------------

#[test]
fn help_top_level() {
    assert_data_eq!(
        help(&[]),
        str![[r#"
Work with OCI image layout directories (oci-layout, index.json, blobs/) offline.

References: DIR:TAG, DIR@DIGEST, or a plain DIR when its index.json has exactly one entry.
For tags containing ':' or '/', name the layout separately: --layout DIR REF.

Usage: ocistow [OPTIONS] <COMMAND>

Commands:
  init        Create an empty layout (the directory too, if needed)
  push        Push files as an artifact, as `oras push` builds it
  pull        Write the titled files of an artifact into a directory, verifying every digest
  tag         Give existing content more tags
  untag       Remove a tag (the content stays until `gc`)
  tags        List the tags of a layout
  resolve     Print the digest a reference resolves to (json: its descriptor)
  manifest    Get, put or delete manifests
  blob        Get, put, delete or check blobs
  attach      Attach files to a subject as a referrer (an SBOM, a signature, a scan result)
  discover    List the referrers of a subject, recursively, from every convention a layout may use
  referrers   Inspect and convert how referrers are recorded
  normalize   Make a layout written by other tools canonical, never rewriting a blob
  copy        Copy a manifest or index and everything it reaches between layouts and registries [alias: cp]
  export      Write references (and what they reach) as a tarball that is itself a layout
  import      Merge a tarball (OCI layout or docker save; tar, tar+gzip, tar+zstd) into a layout
  gc          Delete blobs nothing reaches; a referrer lives as long as its subject does
  fsck        Verify every blob and descriptor and the referrer records
  ls          List the entries of index.json: tag, digest, media type, artifact type, platform, size
  serve       Serve layouts as an OCI distribution registry (referrers answered from every convention)
  completion  Print a shell completion script (bash, zsh, fish, elvish, powershell)
  man         Print the manual page (roff) of ocistow or of one of its commands
  help        Print this message or the help of the given subcommand(s)

Options:
      --layout <DIR>
          Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)

      --format <FORMAT>
          Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2)
          
          [default: text]
          [possible values: text, json, tree, table]

      --no-tty
          Draw no progress bars, even on a terminal

  -v, --verbose
          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)

  -h, --help
          Print help (see a summary with '-h')

  -V, --version
          Print version

Example:
  ocistow init ./layout
  ocistow push ./layout:v1 ./app.bin --artifact-type application/vnd.example.app
  ocistow pull ./layout:v1 -o ./out

Exit codes:
  0  success; a question's answer is yes
  1  a question's answer is no (blob exists: absent; referrers status, fsck: problems found)
  2  invalid input: reference, digest, manifest, annotation, environment or command line
  3  not found: tag, digest, blob, platform, or not a layout
  4  ambiguous reference
  5  integrity: digest or size mismatch, corrupt index.json or blob
  6  timed out waiting for another process's lock (OCISTOW_LOCK_TIMEOUT)
  7  conflict: would overwrite something not asked for
  8  other error (I/O)

"#]]
    );
}

#[test]
fn help_init() {
    assert_data_eq!(
        help(&["init"]),
        str![[r#"
Create an empty layout (the directory too, if needed)

Usage: ocistow init [OPTIONS] [DIR]

Arguments:
  [DIR]  Directory to create the layout in

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Example:
  ocistow init ./layout

"#]]
    );
}

#[test]
fn help_push() {
    assert_data_eq!(
        help(&["push"]),
        str![[r#"
Push files as an artifact, as `oras push` builds it

Usage: ocistow push [OPTIONS] <REFERENCE> [FILES]...

Arguments:
  <REFERENCE>  DIR, DIR:TAG or DIR:TAG1,TAG2 (with --layout: the tags). DIR is created when missing or empty
  [FILES]...   Files or directories, each FILE[:MEDIATYPE]. Directories become tar+gzip layers

Options:
      --artifact-type <ARTIFACT_TYPE>  The manifest's artifactType
      --layout <DIR>                   Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
  -a, --annotation <KEY=VALUE>         Manifest annotation KEY=VALUE (repeatable)
      --format <FORMAT>                Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --annotation-file <FILE>         Annotations from a JSON file, as oras reads it: `$manifest`, `$config`, and per-file keys naming FILE arguments
      --no-tty                         Draw no progress bars, even on a terminal
      --config <FILE[:MEDIATYPE]>      A config blob, FILE[:MEDIATYPE], instead of the empty config
  -v, --verbose                        Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
      --subject <REF>                  Make the artifact a referrer of this subject (DIR:TAG, DIR@DIGEST, or with --layout a tag/@digest)
      --referrers-mode <MODE>          Record referrers as subject annotations, referrers responses or fallback tags [default: what the layout already uses consistently, else annotation] [env: OCISTOW_REFERRERS_MODE=] [possible values: annotation, response, tag]
      --response-key <KEY>             Annotation key for response records: oci (org.opencontainers.image.referrer.subject) or olareg (org.olareg.referrer.subject) [default: what the layout uses, else oci] [possible values: oci, olareg]
  -h, --help                           Print help

Examples:
  ocistow push ./layout:v1 app.tar.gz:application/gzip --artifact-type application/vnd.example.app
  ocistow push ./layout:v1 ./docs/ -a org.opencontainers.image.source=https://example.com
  ocistow push ./layout:cfg layer.tar --config config.json:application/vnd.oci.image.config.v1+json

"#]]
    );
}

#[test]
fn help_pull() {
    assert_data_eq!(
        help(&["pull"]),
        str![[r#"
Write the titled files of an artifact into a directory, verifying every digest

Usage: ocistow pull [OPTIONS] <REFERENCE>

Arguments:
  <REFERENCE>  DIR:TAG, DIR@DIGEST or DIR

Options:
      --layout <DIR>                  Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
  -o, --output <OUTDIR>               Directory to write the files to (created if needed) [default: .]
      --format <FORMAT>               Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --platform <OS/ARCH[/VARIANT]>  Pick this platform's manifest when the reference is an index
  -k, --keep-old-files                Do not replace existing files that differ: refuse the pull (exit 7) and write nothing (oras's flag). Without it such files are replaced, each named on stderr
      --no-tty                        Draw no progress bars, even on a terminal
  -v, --verbose                       Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help                          Print help

Examples:
  ocistow pull ./layout:v1 -o ./out
  ocistow pull ./layout:multi --platform linux/arm64 -o ./out

"#]]
    );
}

#[test]
fn help_tag() {
    assert_data_eq!(
        help(&["tag"]),
        str![[r#"
Give existing content more tags

Usage: ocistow tag [OPTIONS] <REFERENCE> <TAGS>...

Arguments:
  <REFERENCE>  The content to tag: DIR:TAG, DIR@DIGEST or DIR
  <TAGS>...    New tags; each may be a comma-separated list (`v1,latest`), as oras reads them

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Examples:
  ocistow tag ./layout:v1 latest stable
  ocistow tag ./layout:v1 v1.0,v1.0.1
  ocistow tag ./layout@sha256:0ac2… v1

"#]]
    );
}

#[test]
fn help_untag() {
    assert_data_eq!(
        help(&["untag"]),
        str![[r#"
Remove a tag (the content stays until `gc`)

Usage: ocistow untag [OPTIONS] <REFERENCE>

Arguments:
  <REFERENCE>  DIR:TAG

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Example:
  ocistow untag ./layout:old

"#]]
    );
}

#[test]
fn help_tags() {
    assert_data_eq!(
        help(&["tags"]),
        str![[r#"
List the tags of a layout

Usage: ocistow tags [OPTIONS] [DIR]

Arguments:
  [DIR]  The layout directory, or `docker://HOST[:PORT]/REPO`

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Registry:
      --username <USERNAME>  User name for the registry; the password comes from --password-stdin
      --password-stdin       Read the password (or token) for --username from the first line of stdin
      --ca-file <FILE>       Trust the certificates in this PEM file instead of the system's roots
      --plain-http           Speak plain HTTP to the registry (loopback, a lab network)

Example:
  ocistow tags ./layout

"#]]
    );
}

#[test]
fn help_resolve() {
    assert_data_eq!(
        help(&["resolve"]),
        str![[r#"
Print the digest a reference resolves to (json: its descriptor)

Usage: ocistow resolve [OPTIONS] <REFERENCE>

Arguments:
  <REFERENCE>  DIR:TAG, DIR@DIGEST, DIR, or `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`

Options:
      --layout <DIR>                  Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --platform <OS/ARCH[/VARIANT]>  Resolve to this platform's manifest when the reference is an index
      --format <FORMAT>               Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty                        Draw no progress bars, even on a terminal
  -v, --verbose                       Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help                          Print help

Registry:
      --username <USERNAME>  User name for the registry; the password comes from --password-stdin
      --password-stdin       Read the password (or token) for --username from the first line of stdin
      --ca-file <FILE>       Trust the certificates in this PEM file instead of the system's roots
      --plain-http           Speak plain HTTP to the registry (loopback, a lab network)

Examples:
  ocistow resolve ./layout:v1
  ocistow resolve ./layout:multi --platform linux/amd64 --format json

"#]]
    );
}

#[test]
fn help_ls() {
    assert_data_eq!(
        help(&["ls"]),
        str![[r#"
List the entries of index.json: tag, digest, media type, artifact type, platform, size

Usage: ocistow ls [OPTIONS] [DIR]

Arguments:
  [DIR]  The layout directory

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Examples:
  ocistow ls ./layout
  ocistow ls ./layout --format json

"#]]
    );
}

#[test]
fn help_manifest() {
    assert_data_eq!(
        help(&["manifest"]),
        str![[r#"
Get, put or delete manifests

Usage: ocistow manifest [OPTIONS] <COMMAND>

Commands:
  get     Print a manifest's exact bytes [alias: fetch]
  put     Store a manifest from a file or stdin, exactly as given, and list it in index.json [alias: push]
  delete  Remove a manifest's index.json entries, its records as a referrer, and its blob
  help    Print this message or the help of the given subcommand(s)

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

"#]]
    );
}

#[test]
fn help_manifest_get() {
    assert_data_eq!(
        help(&["manifest", "get"]),
        str![[r#"
Print a manifest's exact bytes

Usage: ocistow manifest get [OPTIONS] <REFERENCE>

Arguments:
  <REFERENCE>  DIR:TAG, DIR@DIGEST, DIR, or `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`

Options:
      --layout <DIR>                  Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --platform <OS/ARCH[/VARIANT]>  Get this platform's manifest when the reference is an index
      --format <FORMAT>               Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty                        Draw no progress bars, even on a terminal
  -v, --verbose                       Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help                          Print help

Registry:
      --username <USERNAME>  User name for the registry; the password comes from --password-stdin
      --password-stdin       Read the password (or token) for --username from the first line of stdin
      --ca-file <FILE>       Trust the certificates in this PEM file instead of the system's roots
      --plain-http           Speak plain HTTP to the registry (loopback, a lab network)

Example:
  ocistow manifest get ./layout:v1 | jq .

"#]]
    );
}

#[test]
fn help_manifest_put() {
    assert_data_eq!(
        help(&["manifest", "put"]),
        str![[r#"
Store a manifest from a file or stdin, exactly as given, and list it in index.json

Usage: ocistow manifest put [OPTIONS] <REFERENCE> [FILE]

Arguments:
  <REFERENCE>  DIR or DIR:TAG
  [FILE]       File with the manifest JSON, or - for stdin [default: -]

Options:
      --layout <DIR>             Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --media-type <MEDIA_TYPE>  The media type, when the JSON has no mediaType field
      --allow-sparse             Accept a manifest whose blobs are not (all) in the layout
      --format <FORMAT>          Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty                   Draw no progress bars, even on a terminal
  -v, --verbose                  Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help                     Print help

Examples:
  ocistow manifest put ./layout:v2 manifest.json
  cat index.json | ocistow manifest put ./layout:multi - --media-type application/vnd.oci.image.index.v1+json

"#]]
    );
}

#[test]
fn help_manifest_delete() {
    assert_data_eq!(
        help(&["manifest", "delete"]),
        str![[r#"
Remove a manifest's index.json entries, its records as a referrer, and its blob

Usage: ocistow manifest delete [OPTIONS] <REFERENCE>

Arguments:
  <REFERENCE>  

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --with-referrers   Also delete its referrers, recursively (otherwise a subject with referrers is refused)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Examples:
  ocistow manifest delete ./layout:old
  ocistow manifest delete ./layout:v1 --with-referrers

"#]]
    );
}

#[test]
fn help_blob() {
    assert_data_eq!(
        help(&["blob"]),
        str![[r#"
Get, put, delete or check blobs

Usage: ocistow blob [OPTIONS] <COMMAND>

Commands:
  get     Write a blob to stdout or a file, verifying its digest [alias: fetch]
  put     Store a blob from a file or stdin and print its digest [alias: push]
  delete  Delete a blob (even one still referenced: see `gc` for safe cleanup)
  exists  Exit 0 if the blob exists, 1 if not
  help    Print this message or the help of the given subcommand(s)

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

"#]]
    );
}

#[test]
fn help_blob_get() {
    assert_data_eq!(
        help(&["blob", "get"]),
        str![[r#"
Write a blob to stdout or a file, verifying its digest

Usage: ocistow blob get [OPTIONS] <REFERENCE>

Arguments:
  <REFERENCE>  DIR@DIGEST, or `docker://HOST[:PORT]/REPO@DIGEST`

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
  -o, --output <OUTPUT>  Write here instead of stdout
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Registry:
      --username <USERNAME>  User name for the registry; the password comes from --password-stdin
      --password-stdin       Read the password (or token) for --username from the first line of stdin
      --ca-file <FILE>       Trust the certificates in this PEM file instead of the system's roots
      --plain-http           Speak plain HTTP to the registry (loopback, a lab network)

Example:
  ocistow blob get ./layout@sha256:51bc… -o file.txt

"#]]
    );
}

#[test]
fn help_blob_put() {
    assert_data_eq!(
        help(&["blob", "put"]),
        str![[r#"
Store a blob from a file or stdin and print its digest

Usage: ocistow blob put [OPTIONS] <DIR> [FILE]

Arguments:
  <DIR>   The layout directory
  [FILE]  File, or - for stdin [default: -]

Options:
      --digest <DIGEST>  Expected digest (its algorithm is used: sha256 or sha512)
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --size <SIZE>      Expected size in bytes
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Examples:
  ocistow blob put ./layout file.bin
  ocistow blob put ./layout - --digest sha256:51bc… < file.bin

"#]]
    );
}

#[test]
fn help_blob_delete() {
    assert_data_eq!(
        help(&["blob", "delete"]),
        str![[r#"
Delete a blob (even one still referenced: see `gc` for safe cleanup)

Usage: ocistow blob delete [OPTIONS] <REFERENCE>

Arguments:
  <REFERENCE>  

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Example:
  ocistow blob delete ./layout@sha256:51bc…

"#]]
    );
}

#[test]
fn help_blob_exists() {
    assert_data_eq!(
        help(&["blob", "exists"]),
        str![[r#"
Exit 0 if the blob exists, 1 if not

Usage: ocistow blob exists [OPTIONS] <REFERENCE>

Arguments:
  <REFERENCE>  

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Example:
  ocistow blob exists ./layout@sha256:51bc… && echo present

"#]]
    );
}

#[test]
fn help_attach() {
    assert_data_eq!(
        help(&["attach"]),
        str![[r#"
Attach files to a subject as a referrer (an SBOM, a signature, a scan result)

Usage: ocistow attach [OPTIONS] --artifact-type <ARTIFACT_TYPE> <REFERENCE> [FILES]...

Arguments:
  <REFERENCE>  The subject: DIR:TAG, DIR@DIGEST or DIR
  [FILES]...   Files, each FILE[:MEDIATYPE]

Options:
      --artifact-type <ARTIFACT_TYPE>  The referrer's artifactType (required)
      --layout <DIR>                   Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
  -a, --annotation <KEY=VALUE>         Manifest annotation KEY=VALUE (repeatable)
      --format <FORMAT>                Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --annotation-file <FILE>         Annotations from a JSON file, as oras reads it: `$manifest`, `$config`, and per-file keys naming FILE arguments
      --no-tty                         Draw no progress bars, even on a terminal
      --platform <OS/ARCH[/VARIANT]>   Attach to this platform's manifest when the subject is an index
  -v, --verbose                        Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
      --referrers-mode <MODE>          Record referrers as subject annotations, referrers responses or fallback tags [default: what the layout already uses consistently, else annotation] [env: OCISTOW_REFERRERS_MODE=] [possible values: annotation, response, tag]
      --response-key <KEY>             Annotation key for response records: oci (org.opencontainers.image.referrer.subject) or olareg (org.olareg.referrer.subject) [default: what the layout uses, else oci] [possible values: oci, olareg]
  -h, --help                           Print help

Examples:
  ocistow attach ./layout:v1 sbom.spdx.json:application/spdx+json --artifact-type application/vnd.example.sbom
  ocistow attach ./layout:multi sig.bin --artifact-type application/vnd.example.sig --platform linux/arm64
  ocistow attach ./layout:v1 scan.json --artifact-type application/vnd.example.scan --referrers-mode tag

"#]]
    );
}

#[test]
fn help_discover() {
    assert_data_eq!(
        help(&["discover"]),
        str![[r#"
List the referrers of a subject, recursively, from every convention a layout may use.

--format tree (default) draws like oras, table lists one referrer a line, json has the shape of `oras discover --format json`.

Usage: ocistow discover [OPTIONS] <REFERENCE>

Arguments:
  <REFERENCE>
          The subject: DIR:TAG, DIR@DIGEST (the blob may be absent) or DIR

Options:
      --artifact-type <ARTIFACT_TYPE>
          Only referrers of this artifact type (repeatable)

      --layout <DIR>
          Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)

      --depth <DEPTH>
          Levels of referrers to show, 1 or more (all when not given)

      --format <FORMAT>
          Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2)
          
          [default: text]
          [possible values: text, json, tree, table]

      --deep
          Also scan every manifest blob under blobs/, so referrers reachable from nothing are found

      --no-tty
          Draw no progress bars, even on a terminal

      --platform <OS/ARCH[/VARIANT]>
          Discover from this platform's manifest when the subject is an index

  -v, --verbose
          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)

  -h, --help
          Print help (see a summary with '-h')

Registry:
      --username <USERNAME>
          User name for the registry; the password comes from --password-stdin

      --password-stdin
          Read the password (or token) for --username from the first line of stdin

      --ca-file <FILE>
          Trust the certificates in this PEM file instead of the system's roots

      --plain-http
          Speak plain HTTP to the registry (loopback, a lab network)

Examples:
  ocistow discover ./layout:v1
  ocistow discover ./layout@sha256:0ac2… --format json --artifact-type application/vnd.example.sbom
  ocistow discover ./layout:v1 --deep --depth 1

"#]]
    );
}

#[test]
fn help_referrers() {
    assert_data_eq!(
        help(&["referrers"]),
        str![[r#"
Inspect and convert how referrers are recorded

Usage: ocistow referrers [OPTIONS] <COMMAND>

Commands:
  status   Which referrer conventions the layout uses, and every inconsistency
  convert  Record every referrer in one convention (and, unless --keep, drop the others' records)
  help     Print this message or the help of the given subcommand(s)

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

"#]]
    );
}

#[test]
fn help_referrers_status() {
    assert_data_eq!(
        help(&["referrers", "status"]),
        str![[r#"
Which referrer conventions the layout uses, and every inconsistency

Usage: ocistow referrers status [OPTIONS] [DIR]

Arguments:
  [DIR]  The layout directory

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Example:
  ocistow referrers status ./layout --format json

"#]]
    );
}

#[test]
fn help_referrers_convert() {
    assert_data_eq!(
        help(&["referrers", "convert"]),
        str![[r#"
Record every referrer in one convention (and, unless --keep, drop the others' records)

Usage: ocistow referrers convert [OPTIONS] --to <TO> [DIR]

Arguments:
  [DIR]  The layout directory

Options:
      --layout <DIR>                 Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --to <TO>                      The target convention [possible values: annotation, response, tag]
      --format <FORMAT>              Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --response-key <RESPONSE_KEY>  Annotation key for response records [default: oci] [possible values: oci, olareg]
      --keep                         Keep the records of other conventions too
      --no-tty                       Draw no progress bars, even on a terminal
      --dry-run                      Report what would change; write nothing
  -v, --verbose                      Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help                         Print help

Examples:
  ocistow referrers convert ./layout --to tag          # for regctl
  ocistow referrers convert ./layout --to response --response-key olareg
  ocistow referrers convert ./layout --to annotation --keep --dry-run

"#]]
    );
}

#[test]
fn help_copy() {
    assert_data_eq!(
        help(&["copy"]),
        str![[r#"
Copy a manifest or index and everything it reaches between layouts and registries

Usage: ocistow copy [OPTIONS] <SOURCE> <DESTINATION>

Arguments:
  <SOURCE>       SRC:REF, SRC@DIGEST, SRC, or `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`
  <DESTINATION>  DST, DST:TAG or DST:TAG1,TAG2 (DST is created when missing), or `docker://HOST[:PORT]/REPO[:TAG]`

Options:
      --layout <DIR>                  Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
  -r, --referrers                     Also copy the referrers of the root and of every child, recursively
      --format <FORMAT>               Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --platform <OS/ARCH[/VARIANT]>  Copy only these platforms of an index (repeatable)
      --no-tty                        Draw no progress bars, even on a terminal
      --referrers-mode <MODE>         Record referrers as subject annotations, referrers responses or fallback tags [default: what the layout already uses consistently, else annotation] [env: OCISTOW_REFERRERS_MODE=] [possible values: annotation, response, tag]
      --response-key <KEY>            Annotation key for response records: oci (org.opencontainers.image.referrer.subject) or olareg (org.olareg.referrer.subject) [default: what the layout uses, else oci] [possible values: oci, olareg]
  -v, --verbose                       Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
      --concurrency <CONCURRENCY>     Blobs moved at once to or from a registry [default: 4]
  -h, --help                          Print help

Registry:
      --username <USERNAME>  User name for the registry; the password comes from --password-stdin
      --password-stdin       Read the password (or token) for --username from the first line of stdin
      --ca-file <FILE>       Trust the certificates in this PEM file instead of the system's roots
      --plain-http           Speak plain HTTP to the registry (loopback, a lab network)

Examples:
  ocistow copy ./build:v1 ./cache:v1 -r
  ocistow cp ./build:multi ./arm:latest --platform linux/arm64
  ocistow copy ./build:v1 docker://registry.example:5000/team/app:v1 -r
  ocistow copy docker://registry.example:5000/team/app:v1 ./mirror -r

"#]]
    );
}

#[test]
fn help_export() {
    assert_data_eq!(
        help(&["export"]),
        str![[r#"
Write references (and what they reach) as a tarball that is itself a layout

Usage: ocistow export [OPTIONS] --output <OUTPUT> <REFERENCES>...

Arguments:
  <REFERENCES>...  DIR:REF, DIR@DIGEST or DIR (repeatable)

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
  -o, --output <OUTPUT>  Output file, or - for stdout. Its extension sets the compression: .tar, .tar.gz or .tgz, .tar.zst or .tzst (a flag that contradicts it is refused)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --referrers        Include the referrers of what is exported, recursively, with their records
      --gzip             Compress with gzip (the default for .tar.gz and .tgz)
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
      --zstd             Compress with zstd (the default for .tar.zst and .tzst)
      --docker-manifest  Add manifest.json so `docker load` accepts a single-platform image
  -h, --help             Print help

Examples:
  ocistow export ./layout:v1 -o v1.tar --referrers
  ocistow export ./layout:v1 ./layout:v2 -o - --gzip | ssh host ocistow import - ./layout

"#]]
    );
}

#[test]
fn help_import() {
    assert_data_eq!(
        help(&["import"]),
        str![[r#"
Merge a tarball (OCI layout or docker save; tar, tar+gzip, tar+zstd) into a layout

Usage: ocistow import [OPTIONS] <INPUT> <DIR>

Arguments:
  <INPUT>  The tarball, or - for stdin
  <DIR>    The layout to merge into (created when missing)

Options:
      --force                    Let tags in the tarball replace existing tags that point elsewhere
      --layout <DIR>             Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>          Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --skip-unreferenced        Leave out blobs that nothing in the tarball references instead of refusing it
      --no-tty                   Draw no progress bars, even on a terminal
      --undeclared-limit <SIZE>  From stdin or a pipe, the most bytes staged of members nothing before them declares (blobs before index.json, as docker save writes them): 512M by default; K, M, G suffixes
  -v, --verbose                  Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help                     Print help

Examples:
  ocistow import v1.tar ./layout
  curl -s … | ocistow import - ./layout --force

"#]]
    );
}

#[test]
fn help_gc() {
    assert_data_eq!(
        help(&["gc"]),
        str![[r#"
Delete blobs nothing reaches; a referrer lives as long as its subject does

Usage: ocistow gc [OPTIONS] [DIR]

Arguments:
  [DIR]  The layout directory

Options:
      --dry-run                Report what would be removed; remove nothing
      --layout <DIR>           Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>        Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --keep-orphan-referrers  Keep referrers whose subject is gone
      --grace <GRACE>          Keep stale ingest/ files younger than this (e.g. 30s, 10m, 1h) [default: 1h]
      --no-tty                 Draw no progress bars, even on a terminal
  -v, --verbose                Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help                   Print help

Examples:
  ocistow gc ./layout --dry-run
  ocistow gc ./layout --grace 10m

"#]]
    );
}

#[test]
fn help_fsck() {
    assert_data_eq!(
        help(&["fsck"]),
        str![[r#"
Verify every blob and descriptor and the referrer records

Usage: ocistow fsck [OPTIONS] [DIR]

Arguments:
  [DIR]  The layout directory

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --repair           Rebuild referrer records
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --remove-missing   With --repair: also remove index.json entries whose blobs are missing
      --no-tty           Draw no progress bars, even on a terminal
      --record-unlisted  With --repair: also record referrers no record lists (usually an interrupted write)
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Examples:
  ocistow fsck ./layout
  ocistow fsck ./layout --repair --format json

"#]]
    );
}

#[test]
fn help_completion() {
    assert_data_eq!(
        help(&["completion"]),
        str![[r#"
Print a shell completion script (bash, zsh, fish, elvish, powershell)

Usage: ocistow completion [OPTIONS] <SHELL>

Arguments:
  <SHELL>  The shell to complete for [possible values: bash, elvish, fish, powershell, zsh]

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Examples:
  ocistow completion bash > /etc/bash_completion.d/ocistow
  ocistow completion zsh > "${fpath[1]}/_ocistow"

"#]]
    );
}

#[test]
fn help_man() {
    assert_data_eq!(
        help(&["man"]),
        str![[r#"
Print the manual page (roff) of ocistow or of one of its commands

Usage: ocistow man [OPTIONS] [COMMAND]...

Arguments:
  [COMMAND]...  A command (and subcommand) to show the page of, e.g. `push` or `blob get`

Options:
      --layout <DIR>     Take references as names inside this layout (`--layout DIR docker.io/library/alpine:3.20`)
      --format <FORMAT>  Output format: json for every command that prints data; tree and table are `discover`'s views. A format the command cannot print is refused (exit 2) [default: text] [possible values: text, json, tree, table]
      --no-tty           Draw no progress bars, even on a terminal
  -v, --verbose          Say what each step did on stderr (each file pushed or pulled, blob checked or removed, tag given, index.json entry changed)
  -h, --help             Print help

Examples:
  ocistow man | man -l -
  ocistow man blob get > ocistow-blob-get.1

"#]]
    );
}

// ---- ls ----------------------------------------------------------------------------------------

#[test]
fn ls_table_oras_referrers() {
    assert_data_eq!(
        on_fixture("oras-referrers", &["ls", "layout"], 0),
        str![[r#"
REF  DIGEST                                                                   MEDIATYPE                                   ARTIFACTTYPE                       PLATFORM  SIZE
v1   sha256:0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08  application/vnd.oci.image.manifest.v1+json  application/vnd.example.thing      -         553
-    sha256:245b20da980ec3a3cf6c2497c1e438c73bef771d7f4c0516c0acd45b0af99ce7  application/vnd.oci.image.manifest.v1+json  application/vnd.example.sbom       -         889
-    sha256:05b00ba403a9b75b39c89d9af47d1cb8243592d2023f3d332c1ae8e51a21046d  application/vnd.oci.image.manifest.v1+json  application/vnd.example.signature  -         907
-    sha256:562ec1f717c0be965c24a36c175fb4810bfcea2c267e9f0ba01c72f99dc6b4f9  application/vnd.oci.image.manifest.v1+json  application/vnd.example.sbom-scan  -         727

"#]]
    );
}

#[test]
fn ls_table_oras_multiplatform() {
    assert_data_eq!(
        on_fixture("oras-multiplatform", &["ls", "layout"], 0),
        str![[r#"
REF          DIGEST                                                                   MEDIATYPE                                   ARTIFACTTYPE                              PLATFORM  SIZE
multi        sha256:ddcdba15d9370e5b54f2fddf0d86ed5b07bf6878cb228eca400077b53fb13239  application/vnd.oci.image.index.v1+json     -                                         -         565
linux-amd64  sha256:b7ef1ab818cd74500834da9af00d1bf75606f3a093a3a85b7a2427903c8d5581  application/vnd.oci.image.manifest.v1+json  application/vnd.oci.image.config.v1+json  -         539
linux-arm64  sha256:089951e64311bfa9b1c4e34382765867e0c49e93f03cd1f1e0ed384d0904704b  application/vnd.oci.image.manifest.v1+json  application/vnd.oci.image.config.v1+json  -         539
-            sha256:e43d87b6f3bc2f9d93fd5bc49729680b37ac2d171077d830b7dc5013dfbf5dab  application/vnd.oci.image.manifest.v1+json  application/vnd.example.sbom              -         770
-            sha256:9aedf9a813b2ab17a322e341f5f99c8fa9359258b2cf0d66487243c7336e5b91  application/vnd.oci.image.manifest.v1+json  application/vnd.example.sbom              -         778
-            sha256:1acc12dca0dc2fef46d765670739a6f67dfeef6663359128b69994f0c8f0ed22  application/vnd.oci.image.manifest.v1+json  application/vnd.example.signature         -         782

"#]]
    );
}

#[test]
fn ls_json_oras_multiplatform() {
    assert_data_eq!(
        on_fixture(
            "oras-multiplatform",
            &["ls", "layout", "--format", "json"],
            0
        ),
        str![[r#"
[
  {
    "ref": "multi",
    "digest": "sha256:ddcdba15d9370e5b54f2fddf0d86ed5b07bf6878cb228eca400077b53fb13239",
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "artifactType": null,
    "platform": null,
    "size": 565,
    "annotations": {
      "org.opencontainers.image.ref.name": "multi"
    }
  },
  {
    "ref": "linux-amd64",
    "digest": "sha256:b7ef1ab818cd74500834da9af00d1bf75606f3a093a3a85b7a2427903c8d5581",
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.oci.image.config.v1+json",
    "platform": null,
    "size": 539,
    "annotations": {
      "org.opencontainers.image.created": "2020-01-01T00:00:00Z",
      "org.opencontainers.image.ref.name": "linux-amd64"
    }
  },
  {
    "ref": "linux-arm64",
    "digest": "sha256:089951e64311bfa9b1c4e34382765867e0c49e93f03cd1f1e0ed384d0904704b",
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.oci.image.config.v1+json",
    "platform": null,
    "size": 539,
    "annotations": {
      "org.opencontainers.image.created": "2020-01-01T00:00:00Z",
      "org.opencontainers.image.ref.name": "linux-arm64"
    }
  },
  {
    "ref": null,
    "digest": "sha256:e43d87b6f3bc2f9d93fd5bc49729680b37ac2d171077d830b7dc5013dfbf5dab",
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.example.sbom",
    "platform": null,
    "size": 770,
    "annotations": {
      "org.opencontainers.image.created": "2020-01-01T00:00:00Z"
    }
  },
  {
    "ref": null,
    "digest": "sha256:9aedf9a813b2ab17a322e341f5f99c8fa9359258b2cf0d66487243c7336e5b91",
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.example.sbom",
    "platform": null,
    "size": 778,
    "annotations": {
      "org.opencontainers.image.created": "2020-01-01T00:00:00Z"
    }
  },
  {
    "ref": null,
    "digest": "sha256:1acc12dca0dc2fef46d765670739a6f67dfeef6663359128b69994f0c8f0ed22",
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.example.signature",
    "platform": null,
    "size": 782,
    "annotations": {
      "org.opencontainers.image.created": "2020-01-01T00:00:00Z"
    }
  }
]

"#]]
    );
}

// ---- discover ----------------------------------------------------------------------------------

#[test]
fn discover_tree_oras_referrers() {
    assert_data_eq!(
        on_fixture("oras-referrers", &["discover", "layout:v1"], 0),
        str![[r#"
layout@sha256:0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08
├── application/vnd.example.sbom
│   └── sha256:245b20da980ec3a3cf6c2497c1e438c73bef771d7f4c0516c0acd45b0af99ce7
│       ├── [annotations]
│       │   └── org.opencontainers.image.created: "2020-01-01T00:00:00Z"
│       └── application/vnd.example.sbom-scan
│           └── sha256:562ec1f717c0be965c24a36c175fb4810bfcea2c267e9f0ba01c72f99dc6b4f9
│               └── [annotations]
│                   └── org.opencontainers.image.created: "2020-01-01T00:00:00Z"
└── application/vnd.example.signature
    └── sha256:05b00ba403a9b75b39c89d9af47d1cb8243592d2023f3d332c1ae8e51a21046d
        └── [annotations]
            └── org.opencontainers.image.created: "2020-01-01T00:00:00Z"

"#]]
    );
}

#[test]
fn discover_tree_oras_multiplatform_index() {
    assert_data_eq!(
        on_fixture("oras-multiplatform", &["discover", "layout:multi"], 0),
        str![[r#"
layout@sha256:ddcdba15d9370e5b54f2fddf0d86ed5b07bf6878cb228eca400077b53fb13239
├── application/vnd.example.sbom
│   └── sha256:9aedf9a813b2ab17a322e341f5f99c8fa9359258b2cf0d66487243c7336e5b91
│       └── [annotations]
│           └── org.opencontainers.image.created: "2020-01-01T00:00:00Z"
└── application/vnd.example.signature
    └── sha256:1acc12dca0dc2fef46d765670739a6f67dfeef6663359128b69994f0c8f0ed22
        └── [annotations]
            └── org.opencontainers.image.created: "2020-01-01T00:00:00Z"

"#]]
    );
}

#[test]
fn discover_tree_regctl_fallback_tags() {
    assert_data_eq!(
        on_fixture("regctl-referrers", &["discover", "layout:v1"], 0),
        str![[r#"
layout@sha256:27f1f751817422972d13028a01edcfa732b50a764f546fc63583ffe11d08126e
├── application/vnd.example.sbom
│   └── sha256:a77f96a7f36bef3be972622da2163f5ecc6b6756dadf99f8213afdc8f92078c9
│       ├── [annotations]
│       │   └── org.opencontainers.image.created: "2020-01-01T00:00:00Z"
│       └── application/vnd.example.sbom-scan
│           └── sha256:7f91a63f1fef2cad4207d774d94aaa795967b0c656f63968b44f3f339b041f05
│               └── [annotations]
│                   └── org.opencontainers.image.created: "2020-01-01T00:00:00Z"
└── application/vnd.example.signature
    └── sha256:e4443ce3475c61c731df4bf6c305d369923e241c654328b824f90680997da252
        └── [annotations]
            └── org.opencontainers.image.created: "2020-01-01T00:00:00Z"

"#]]
    );
}

#[test]
fn discover_table_oras_referrers() {
    assert_data_eq!(
        on_fixture(
            "oras-referrers",
            &["discover", "layout:v1", "--format", "table"],
            0
        ),
        str![[r#"
DEPTH  DIGEST                                                                   ARTIFACTTYPE                              SUBJECT
1      sha256:245b20da980ec3a3cf6c2497c1e438c73bef771d7f4c0516c0acd45b0af99ce7  application/vnd.example.sbom              sha256:0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08
2      sha256:562ec1f717c0be965c24a36c175fb4810bfcea2c267e9f0ba01c72f99dc6b4f9  application/vnd.example.sbom-scan         sha256:245b20da980ec3a3cf6c2497c1e438c73bef771d7f4c0516c0acd45b0af99ce7
1      sha256:05b00ba403a9b75b39c89d9af47d1cb8243592d2023f3d332c1ae8e51a21046d  application/vnd.example.signature         sha256:0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08

"#]]
    );
}

#[test]
fn discover_json_oras_referrers() {
    assert_data_eq!(
        on_fixture(
            "oras-referrers",
            &["discover", "layout:v1", "--format", "json"],
            0
        ),
        str![[r#"
{
  "reference": "layout@sha256:0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08",
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "digest": "sha256:0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08",
  "size": 553,
  "annotations": {
    "org.opencontainers.image.created": "2020-01-01T00:00:00Z",
    "org.opencontainers.image.ref.name": "v1"
  },
  "artifactType": "application/vnd.example.thing",
  "referrers": [
    {
      "reference": "layout@sha256:245b20da980ec3a3cf6c2497c1e438c73bef771d7f4c0516c0acd45b0af99ce7",
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:245b20da980ec3a3cf6c2497c1e438c73bef771d7f4c0516c0acd45b0af99ce7",
      "size": 889,
      "annotations": {
        "org.opencontainers.image.created": "2020-01-01T00:00:00Z"
      },
      "artifactType": "application/vnd.example.sbom",
      "referrers": [
        {
          "reference": "layout@sha256:562ec1f717c0be965c24a36c175fb4810bfcea2c267e9f0ba01c72f99dc6b4f9",
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "digest": "sha256:562ec1f717c0be965c24a36c175fb4810bfcea2c267e9f0ba01c72f99dc6b4f9",
          "size": 727,
          "annotations": {
            "org.opencontainers.image.created": "2020-01-01T00:00:00Z"
          },
          "artifactType": "application/vnd.example.sbom-scan",
          "referrers": []
        }
      ]
    },
    {
      "reference": "layout@sha256:05b00ba403a9b75b39c89d9af47d1cb8243592d2023f3d332c1ae8e51a21046d",
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:05b00ba403a9b75b39c89d9af47d1cb8243592d2023f3d332c1ae8e51a21046d",
      "size": 907,
      "annotations": {
        "org.opencontainers.image.created": "2020-01-01T00:00:00Z"
      },
      "artifactType": "application/vnd.example.signature",
      "referrers": []
    }
  ]
}

"#]]
    );
}

// ---- referrers status --------------------------------------------------------------------------

#[test]
fn referrers_status_text_oras_referrers() {
    assert_data_eq!(
        on_fixture("oras-referrers", &["referrers", "status", "layout"], 0),
        str![[r#"
3 referrers of 2 subjects
  plain                3
write mode in use: none consistently (writes default to annotation)
no inconsistencies

"#]]
    );
}

#[test]
fn referrers_status_json_olareg_referrers() {
    assert_data_eq!(
        on_fixture(
            "olareg-referrers",
            &["referrers", "status", "layout", "--format", "json"],
            0
        ),
        str![[r#"
{
  "referrers": 3,
  "subjects": 2,
  "conventions": {
    "response": 3
  },
  "records": {
    "response": 2,
    "fallbackTag": 0
  },
  "mode": "response",
  "issues": []
}

"#]]
    );
}

#[test]
fn referrers_status_text_buildkit_attestations() {
    assert_data_eq!(
        on_fixture(
            "buildkit-attestations",
            &["referrers", "status", "layout"],
            0
        ),
        str![[r#"
2 referrers of 2 subjects
  attestation          2
write mode in use: none consistently (writes default to annotation)
no inconsistencies

"#]]
    );
}

// ---- JSON of the commands that write (docs/cli.md lists every shape) ---------------------------

/// A work directory (`SOURCE_DATE_EPOCH=0`, so digests are fixed) with `hello.txt` pushed as
/// `layout:v1`; `run` gives the stdout of `ocistow ARGS --format json` in it, the directory's
/// path replaced by `[TMP]`.
struct Work {
    tmp: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("hello.txt"), "hello\n").unwrap();
        let work = Work { tmp };
        work.json(&["push", "layout:v1", "hello.txt:text/plain"]);
        work
    }

    fn json(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        let out = cmd()
            .current_dir(self.tmp.path())
            .env("SOURCE_DATE_EPOCH", "0")
            .args(&all)
            .output()
            .unwrap();
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "`ocistow {}`: {}",
            all.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        let root = self.tmp.path().canonicalize().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .replace(&root.display().to_string(), "[TMP]")
    }
}

#[test]
fn push_json_is_oras_shape() {
    let w = Work::new();
    assert_data_eq!(
        w.json(&["push", "layout:v2,latest", "hello.txt", "-a", "team=core"]),
        str![[r#"
{
  "reference": "layout@sha256:31731733c90f4ae5a57a75ff7ef716863ef4fe14449e1c5ba2e5711f6a4cfb69",
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "digest": "sha256:31731733c90f4ae5a57a75ff7ef716863ef4fe14449e1c5ba2e5711f6a4cfb69",
  "size": 601,
  "annotations": {
    "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
    "team": "core"
  },
  "artifactType": "application/vnd.unknown.artifact.v1",
  "referenceAsTags": [
    "layout:v2",
    "layout:latest"
  ]
}

"#]]
    );
}

#[test]
fn attach_json_is_oras_shape() {
    let w = Work::new();
    assert_data_eq!(
        w.json(&[
            "attach",
            "layout:v1",
            "hello.txt",
            "--artifact-type",
            "application/vnd.example.sbom"
        ]),
        str![[r#"
{
  "reference": "layout@sha256:42b4aca6fca6f18e639eb310d6e888add8bb80eb52a410e345a8104cc14b485d",
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "digest": "sha256:42b4aca6fca6f18e639eb310d6e888add8bb80eb52a410e345a8104cc14b485d",
  "size": 743,
  "annotations": {
    "org.opencontainers.image.created": "1970-01-01T00:00:00Z"
  },
  "artifactType": "application/vnd.example.sbom",
  "referenceAsTags": []
}

"#]]
    );
}

#[test]
fn pull_json_is_oras_shape() {
    let w = Work::new();
    assert_data_eq!(
        w.json(&["pull", "layout:v1", "-o", "out"]),
        str![[r#"
{
  "reference": "layout@sha256:c24a54aae2ce876fc2c9a34377d4e7358528682579f0f8cbe2e3e213df7904be",
  "files": [
    {
      "path": "[TMP]/out/hello.txt",
      "reference": "layout@sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
      "mediaType": "text/plain",
      "digest": "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
      "size": 6,
      "annotations": {
        "org.opencontainers.image.title": "hello.txt"
      }
    }
  ]
}

"#]]
    );
}

#[test]
fn tags_json_is_oras_shape() {
    let w = Work::new();
    w.json(&["push", "layout:v2,latest", "hello.txt"]);
    assert_data_eq!(
        w.json(&["tags", "layout"]),
        str![[r#"
{
  "tags": [
    "v1",
    "v2",
    "latest"
  ]
}

"#]]
    );
}

#[test]
fn resolve_and_manifest_put_json_are_descriptors() {
    let w = Work::new();
    assert_data_eq!(
        w.json(&["resolve", "layout:v1"]),
        str![[r#"
{
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "digest": "sha256:c24a54aae2ce876fc2c9a34377d4e7358528682579f0f8cbe2e3e213df7904be",
  "size": 559,
  "annotations": {
    "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
    "org.opencontainers.image.ref.name": "v1"
  },
  "artifactType": "application/vnd.unknown.artifact.v1"
}

"#]]
    );
    let manifest = cmd()
        .current_dir(w.tmp.path())
        .args(["manifest", "get", "layout:v1"])
        .output()
        .unwrap()
        .stdout;
    std::fs::write(w.tmp.path().join("m.json"), manifest).unwrap();
    assert_data_eq!(
        w.json(&["manifest", "put", "layout:again", "m.json"]),
        str![[r#"
{
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "digest": "sha256:c24a54aae2ce876fc2c9a34377d4e7358528682579f0f8cbe2e3e213df7904be",
  "size": 559,
  "artifactType": "application/vnd.unknown.artifact.v1"
}

"#]]
    );
}

#[test]
fn blob_put_and_exists_json() {
    let w = Work::new();
    assert_data_eq!(
        w.json(&["blob", "put", "layout", "hello.txt"]),
        str![[r#"
{
  "digest": "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
  "size": 6
}

"#]]
    );
    assert_data_eq!(
        w.json(&[
            "blob",
            "exists",
            "layout@sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        ]),
        str![[r#"
{
  "digest": "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03",
  "exists": true,
  "size": 6
}

"#]]
    );
}

#[test]
fn copy_export_import_json() {
    let w = Work::new();
    assert_data_eq!(
        w.json(&["copy", "layout:v1", "mirror:a,b", "-r"]),
        str![[r#"
{
  "descriptor": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:c24a54aae2ce876fc2c9a34377d4e7358528682579f0f8cbe2e3e213df7904be",
    "size": 559,
    "annotations": {
      "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
      "org.opencontainers.image.ref.name": "v1"
    },
    "artifactType": "application/vnd.unknown.artifact.v1"
  },
  "tags": [
    "a",
    "b"
  ],
  "blobs": 3,
  "linked": 3,
  "copied": 0,
  "present": 0,
  "bytes": 567,
  "referrers": 0,
  "referrersMode": "annotation",
  "skippedForeign": 0
}

"#]]
    );
    assert_data_eq!(
        w.json(&["export", "layout:v1", "-o", "v1.tar.zst", "--referrers"]),
        str![[r#"
{
  "output": "v1.tar.zst",
  "compression": "tar+zstd",
  "entries": 1,
  "blobs": 3,
  "bytes": 567,
  "referrers": 0,
  "skippedForeign": 0
}

"#]]
    );
    assert_data_eq!(
        w.json(&["import", "v1.tar.zst", "imported"]),
        str![[r#"
{
  "format": "oci-layout",
  "compression": "tar+zstd",
  "created": true,
  "blobsAdded": 3,
  "bytesAdded": 567,
  "blobsPresent": 0,
  "entriesAdded": 1,
  "tags": [
    "v1"
  ],
  "replacedTags": [],
  "referrers": 0,
  "referrersMode": null,
  "skipped": []
}

"#]]
    );
}

#[test]
fn gc_fsck_and_convert_json() {
    let w = Work::new();
    w.json(&["push", "layout:old", "layout/oci-layout"]);
    let _ = cmd()
        .current_dir(w.tmp.path())
        .args(["untag", "layout:old"])
        .output()
        .unwrap();
    assert_data_eq!(
        w.json(&["gc", "layout", "--dry-run"]),
        str![[r#"
{
  "dryRun": true,
  "blobsRemoved": 2,
  "bytesFreed": 619,
  "blobsKept": 3,
  "blobs": [
    {
      "digest": "sha256:4c459e7cfb435e28bdc409325e351566ea5faece4181793674f0c7e8d5cae5dc",
      "size": 589
    },
    {
      "digest": "sha256:18f0797eab35a4597c1e9624aa4f15fd91f6254e5538c1e0d193b2a95dd4acc6",
      "size": 30
    }
  ],
  "entries": [],
  "workFiles": []
}

"#]]
    );
    assert_data_eq!(
        w.json(&["fsck", "layout"]),
        str![[r#"
{
  "blobsChecked": 5,
  "bytesHashed": 1186,
  "problems": [],
  "notes": [],
  "repaired": []
}

"#]]
    );
    assert_data_eq!(
        w.json(&["referrers", "convert", "layout", "--to", "tag", "--dry-run"]),
        str![[r#"
{
  "mode": "tag",
  "referrers": 0,
  "added": 0,
  "updated": 0,
  "removed": 0,
  "changed": false,
  "dryRun": true
}

"#]]
    );
}

// ---- JSON of the commands on a registry (docker://, a loopback distribution) --------------------

impl Work {
    /// As [`Work::json`], with the registry's port shown as `[..]` (it changes on every run).
    fn json_on(&self, reg: &crate::common::registry::Registry, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.push("--plain-http");
        self.json(&all)
            .replace(&format!("127.0.0.1:{}", reg.port), "127.0.0.1:[..]")
    }
}

#[test]
fn registry_json_shapes() {
    let Some(reg) = crate::common::registry::Registry::start() else {
        return;
    };
    let w = Work::new();
    w.json(&[
        "attach",
        "layout:v1",
        "hello.txt",
        "--artifact-type",
        "application/vnd.example.sig",
    ]);
    let app = reg.reference("team/app:v1,stable");
    assert_data_eq!(
        w.json_on(&reg, &["copy", "layout:v1", &app, "-r"]),
        str![[r#"
{
  "descriptor": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:c24a54aae2ce876fc2c9a34377d4e7358528682579f0f8cbe2e3e213df7904be",
    "size": 559,
    "annotations": {
      "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
      "org.opencontainers.image.ref.name": "v1"
    },
    "artifactType": "application/vnd.unknown.artifact.v1"
  },
  "destination": "docker://127.0.0.1:[..]/team/app:v1",
  "blobs": 4,
  "uploaded": 4,
  "present": 0,
  "bytes": 1309,
  "referrers": 1,
  "indexedByRegistry": 0,
  "fallbackTagEntriesAdded": 1,
  "skippedForeign": 0
}

"#]]
    );
    let v1 = reg.reference("team/app:v1");
    assert_data_eq!(
        w.json_on(&reg, &["resolve", &v1]),
        str![[r#"
{
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "digest": "sha256:c24a54aae2ce876fc2c9a34377d4e7358528682579f0f8cbe2e3e213df7904be",
  "size": 559,
  "artifactType": "application/vnd.unknown.artifact.v1"
}

"#]]
    );
    // One tag: a registry lists tags in the order its storage gives them.
    w.json_on(
        &reg,
        &["copy", "layout:v1", &reg.reference("team/solo:only")],
    );
    assert_data_eq!(
        w.json_on(&reg, &["tags", &reg.reference("team/solo")]),
        str![[r#"
{
  "tags": [
    "only"
  ]
}

"#]]
    );
    assert_data_eq!(
        w.json_on(&reg, &["discover", &v1]),
        str![[r#"
{
  "reference": "127.0.0.1:[..]/team/app@sha256:c24a54aae2ce876fc2c9a34377d4e7358528682579f0f8cbe2e3e213df7904be",
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "digest": "sha256:c24a54aae2ce876fc2c9a34377d4e7358528682579f0f8cbe2e3e213df7904be",
  "size": 559,
  "artifactType": "application/vnd.unknown.artifact.v1",
  "referrers": [
    {
      "reference": "127.0.0.1:[..]/team/app@sha256:929104443218397c310ef58a66af9eed31d8cec451198f5c2f61a65f9514af23",
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:929104443218397c310ef58a66af9eed31d8cec451198f5c2f61a65f9514af23",
      "size": 742,
      "annotations": {
        "org.opencontainers.image.created": "1970-01-01T00:00:00Z"
      },
      "artifactType": "application/vnd.example.sig",
      "referrers": []
    }
  ]
}

"#]]
    );
    assert_data_eq!(
        w.json_on(&reg, &["copy", &v1, &reg.reference("team/mirror:m1"), "-r"]),
        str![[r#"
{
  "descriptor": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:c24a54aae2ce876fc2c9a34377d4e7358528682579f0f8cbe2e3e213df7904be",
    "size": 559,
    "artifactType": "application/vnd.unknown.artifact.v1"
  },
  "destination": "docker://127.0.0.1:[..]/team/mirror:m1",
  "blobs": 4,
  "uploaded": 4,
  "present": 0,
  "bytes": 1309,
  "referrers": 1,
  "indexedByRegistry": 0,
  "fallbackTagEntriesAdded": 1,
  "skippedForeign": 0
}

"#]]
    );
    assert_data_eq!(
        w.json_on(&reg, &["copy", &v1, "back:b1", "-r"]),
        str![[r#"
{
  "descriptor": {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:c24a54aae2ce876fc2c9a34377d4e7358528682579f0f8cbe2e3e213df7904be",
    "size": 559,
    "artifactType": "application/vnd.unknown.artifact.v1"
  },
  "tags": [
    "b1"
  ],
  "blobs": 4,
  "downloaded": 2,
  "bytes": 8,
  "referrers": 1,
  "referrersMode": "annotation",
  "skippedForeign": 0
}

"#]]
    );
}
