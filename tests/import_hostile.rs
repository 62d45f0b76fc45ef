//! Hostile archives under `import`, built here: members nothing references, members larger than
//! their descriptors, broken gzip and zstd trailers, and user tags shaped like fallback tags.
//! Each is refused with nothing imported, or (tags) kept.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::ocistow;
use crate::hostile_tar::{GzTar, Member, header, tar};
use ocistow_store::{Algorithm, Digest};
use serde_json::json;

const INTEGRITY: i32 = 5;
const TIMEOUT: Duration = Duration::from_mins(1);

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn blob(bytes: &[u8]) -> (String, String) {
    let d = Digest::of_bytes(Algorithm::Sha256, bytes);
    let name = format!("blobs/sha256/{}", d.encoded());
    (d.to_string(), name)
}

/// An OCI layout archive: `v1` names an image manifest with the empty config and one layer of
/// `layer_size` bytes (its digest: `layer_digest`), followed by `extra` members.
fn oci_archive(layer_digest: &str, layer_size: u64, extra: &[Member<'_>]) -> (Vec<u8>, String) {
    let (config_digest, config_name) = blob(b"{}");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "text/plain", "digest": layer_digest, "size": layer_size}],
    }))
    .unwrap();
    let (manifest_digest, manifest_name) = blob(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }],
    }))
    .unwrap();
    let mut members = vec![
        Member::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        Member::File("index.json", &index),
        Member::File(&config_name, b"{}"),
        Member::File(&manifest_name, &manifest),
    ];
    members.extend(extra.iter().map(|m| match m {
        Member::File(n, d) => Member::File(n, d),
        _ => unreachable!("only files are added"),
    }));
    (tar(&members), manifest_digest)
}

fn import(archive: &Path, dest: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = ocistow()
        .arg("import")
        .args(extra)
        .arg(archive)
        .arg(dest)
        .timeout(TIMEOUT)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

#[test]
fn a_member_nothing_references_is_refused_unless_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let (layer_digest, layer_name) = blob(b"hello");
    let (_, extra_name) = blob(b"nobody lists me");
    let (archive, _) = oci_archive(
        &layer_digest,
        5,
        &[
            Member::File(&layer_name, b"hello"),
            Member::File(&extra_name, b"nobody lists me"),
        ],
    );
    let file = write(&tmp.path().join("a.tar"), &archive);
    let dest = tmp.path().join("dest");
    let (code, stderr) = import(&file, &dest, &[]);
    assert_eq!(code, Some(INTEGRITY), "{stderr}");
    assert!(
        stderr.contains("nothing in the archive references"),
        "{stderr}"
    );
    assert!(stderr.contains(&extra_name), "{stderr}");
    assert!(!dest.exists());

    let (code, stderr) = import(&file, &dest, &["--skip-unreferenced"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(dest.join(&layer_name).is_file());
    assert!(
        !dest.join(&extra_name).exists(),
        "the unreferenced blob was imported"
    );
    ocistow().args(["fsck", &s(&dest)]).assert().success();
}

#[test]
fn a_real_layouts_leftover_blob_needs_skip_unreferenced() {
    // olareg leaves superseded referrers responses as blobs nothing lists.
    let tmp = tempfile::tempdir().unwrap();
    let src = crate::common::copy_fixture("olareg-referrers", &tmp.path().join("src"));
    let file = tmp.path().join("olareg.tar");
    let ok = std::process::Command::new("tar")
        .arg("-C")
        .arg(&src)
        .args(["-cf", &s(&file), "."])
        .status()
        .unwrap()
        .success();
    assert!(ok, "tar failed");
    let dest = tmp.path().join("dest");
    let (code, stderr) = import(&file, &dest, &[]);
    assert_eq!(code, Some(INTEGRITY), "{stderr}");
    assert!(stderr.contains("--skip-unreferenced"), "{stderr}");
    assert!(!dest.exists());
    let (code, stderr) = import(&file, &dest, &["--skip-unreferenced"]);
    assert_eq!(code, Some(0), "{stderr}");
    ocistow().args(["fsck", &s(&dest)]).assert().success();
}

/// A tar+gzip archive whose layer member claims `claimed` bytes, while the manifest before it
/// declares 5; only the first 16 MiB of zeros follow (a reader that stages the member finds
/// the archive truncated; one that checks the declaration never reads them).
fn bomb(claimed: u64) -> Vec<u8> {
    let (layer_digest, layer_name) = blob(b"hello");
    let (archive, _) = oci_archive(&layer_digest, 5, &[]);
    // Drop the end-of-archive marker, then append the oversized member.
    let head = &archive[..archive.len() - 1024];
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(head).unwrap();
    gz.write_all(&header(&layer_name, b'0', claimed, ""))
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..16 {
        gz.write_all(&zeros).unwrap();
    }
    gz.finish().unwrap()
}

#[test]
fn a_member_larger_than_its_descriptor_is_refused_before_it_is_staged() {
    let tmp = tempfile::tempdir().unwrap();
    let claimed = 0o77_777_777_777u64; // the largest size a ustar header holds: 8 GiB - 1
    let archive = bomb(claimed);
    assert!(archive.len() < 1 << 20, "{} bytes of gzip", archive.len());
    let file = write(&tmp.path().join("bomb.tar.gz"), &archive);
    let dest = tmp.path().join("dest");
    let (code, stderr) = import(&file, &dest, &[]);
    assert_eq!(code, Some(INTEGRITY), "{stderr}");
    assert!(
        stderr.contains("expected 5 bytes") && stderr.contains(&claimed.to_string()),
        "{stderr}"
    );
    assert!(
        !stderr.contains("truncated"),
        "the member was staged: {stderr}"
    );
    assert!(!dest.exists());
    // Nothing was left beside the destination either (the staging area is gone).
    let left: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

/// A layout with `v1`, exported with `flag` (`--gzip` or `--zstd`).
fn exported(tmp: &Path, flag: &str) -> Vec<u8> {
    let layout = tmp.join(format!("src{flag}"));
    ocistow().args(["init", &s(&layout)]).assert().success();
    let f = write(&tmp.join("f.txt"), b"some content\n");
    ocistow()
        .args(["push", &format!("{}:v1", s(&layout)), &s(&f)])
        .assert()
        .success();
    let out = tmp.join(format!("out{flag}"));
    ocistow()
        .args([
            "export",
            &format!("{}:v1", s(&layout)),
            "-o",
            &s(&out),
            flag,
        ])
        .assert()
        .success();
    fs::read(out).unwrap()
}

#[test]
fn gzip_and_zstd_integrity_trailers_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    for flag in ["--gzip", "--zstd"] {
        let good = exported(tmp.path(), flag);
        let n = good.len();
        let mut bad_checksum = good.clone();
        // gzip: CRC-32 then size; zstd (with its content checksum): the checksum last.
        let at = if flag == "--gzip" { n - 8 } else { n - 1 };
        bad_checksum[at] ^= 0x55;
        for (what, bytes) in [
            ("corrupted checksum", bad_checksum),
            ("truncated trailer", good[..n - 3].to_vec()),
        ] {
            let file = write(&tmp.path().join("broken"), &bytes);
            let dest = tmp.path().join("dest");
            let (code, stderr) = import(&file, &dest, &[]);
            assert_eq!(code, Some(INTEGRITY), "{flag} {what}: {stderr}");
            assert!(!dest.exists(), "{flag} {what}");
        }
        let file = write(&tmp.path().join("good"), &good);
        let dest = tmp.path().join(format!("good{flag}"));
        let (code, stderr) = import(&file, &dest, &[]);
        assert_eq!(code, Some(0), "{flag}: {stderr}");
    }
}

#[test]
fn a_user_tag_shaped_like_a_fallback_tag_survives_import_into_annotation_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    ocistow().args(["init", &s(&src)]).assert().success();
    let f = write(&tmp.path().join("f.txt"), b"payload\n");
    let out = ocistow()
        .args([
            "push",
            &format!("{}:v1", s(&src)),
            &s(&f),
            "--format",
            "json",
        ])
        .assert()
        .success();
    let pushed: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": pushed["mediaType"], "digest": pushed["digest"], "size": pushed["size"]}],
    });
    let index_file = write(
        &tmp.path().join("index.json"),
        &serde_json::to_vec(&index).unwrap(),
    );
    let tag = format!("build-{}", "ab".repeat(32));
    ocistow()
        .args([
            "manifest",
            "put",
            &format!("{}:{tag}", s(&src)),
            &s(&index_file),
        ])
        .assert()
        .success();
    let archive = tmp.path().join("a.tar");
    ocistow()
        .args(["export", &format!("{}:{tag}", s(&src)), "-o", &s(&archive)])
        .assert()
        .success();

    // A destination that records referrers as subject annotations.
    let dest = tmp.path().join("dest");
    ocistow().args(["init", &s(&dest)]).assert().success();
    ocistow()
        .args(["push", &format!("{}:other", s(&dest)), &s(&f)])
        .assert()
        .success();
    let note = write(&tmp.path().join("note.txt"), b"note\n");
    ocistow()
        .args([
            "attach",
            &format!("{}:other", s(&dest)),
            &s(&note),
            "--artifact-type",
            "application/vnd.example.note",
        ])
        .assert()
        .success();
    let (code, stderr) = import(&archive, &dest, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let tags = ocistow().args(["tags", &s(&dest)]).assert().success();
    let tags = String::from_utf8_lossy(&tags.get_output().stdout).into_owned();
    assert!(tags.lines().any(|l| l == tag), "{tag} was dropped: {tags}");
}

/// Import validation reads what might be a manifest by the walk's one rule, under the one size
/// limit: a 5 MiB manifest listed without a media type is sniffed (it was taken for a plain
/// blob above 4 MiB), so its missing layer refuses the archive instead of importing a graph
/// that fsck then reports broken.
#[test]
fn a_large_manifest_without_a_media_type_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let (config_digest, config_name) = blob(b"{}");
    let missing = Digest::of_bytes(Algorithm::Sha256, b"a layer that is not in the archive");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "text/plain", "digest": missing.as_str(), "size": 34}],
        "annotations": {"padding": "x".repeat(5 << 20)},
    }))
    .unwrap();
    let (manifest_digest, manifest_name) = blob(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{"digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "v1"}}],
    }))
    .unwrap();
    let archive = write(
        &tmp.path().join("a.tar"),
        &tar(&[
            Member::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
            Member::File("index.json", &index),
            Member::File(&config_name, b"{}"),
            Member::File(&manifest_name, &manifest),
        ]),
    );
    let dest = tmp.path().join("dest");
    let (code, stderr) = import(&archive, &dest, &[]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains(missing.as_str()), "{stderr}");
    assert!(!dest.exists());
}

/// How large the bombs below unpack (16 MiB of zeros, some 16 KiB of gzip), and the most any
/// one file an import writes may hold while it reads them: the kernel's `RLIMIT_FSIZE` (through
/// `prlimit`) stops an import that stages more, so the bound is enforced, not sampled.
const BOMB: u64 = 16 << 20;
const WRITE_BOUND: u64 = 4 << 20;

/// Where a bomb goes in an archive: before `index.json` and the manifests (as `docker save`
/// writes blobs) or after `index.json` and before the manifest that declares (or would) it.
#[derive(Debug, Clone, Copy)]
enum Order {
    BlobsFirst,
    IndexFirst,
}

/// Which bomb: a member nothing references, or the layer the manifest declares at 5 bytes.
#[derive(Debug, Clone, Copy)]
enum Bomb {
    Unreferenced,
    OversizedLayer,
}

fn zeros_digest() -> &'static (String, String) {
    static DIGEST: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    DIGEST.get_or_init(|| blob(&vec![0u8; BOMB as usize]))
}

/// The archive of [`oci_archive`] (layer `hello`), tar+gzip, with the bomb where `order` says.
fn bomb_archive(order: Order, bomb: Bomb) -> Vec<u8> {
    let (layer_digest, layer_name) = blob(b"hello");
    let (config_digest, config_name) = blob(b"{}");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "text/plain", "digest": layer_digest, "size": 5}],
    }))
    .unwrap();
    let (manifest_digest, manifest_name) = blob(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "v1"},
        }],
    }))
    .unwrap();
    let layout = Member::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    let (bomb_name, layer) = match bomb {
        Bomb::Unreferenced => (zeros_digest().1.as_str(), Some(&b"hello"[..])),
        Bomb::OversizedLayer => (layer_name.as_str(), None),
    };
    let mut blobs = vec![
        Member::File(&config_name, b"{}"),
        Member::File(&manifest_name, &manifest),
    ];
    if let Some(l) = layer {
        blobs.push(Member::File(&layer_name, l));
    }
    let tail = [Member::File("index.json", &index), layout];
    match order {
        Order::BlobsFirst => GzTar::new()
            .zeros(bomb_name, BOMB)
            .members(&blobs)
            .members(&tail)
            .finish(),
        Order::IndexFirst => GzTar::new()
            .members(&tail)
            .zeros(bomb_name, BOMB)
            .members(&blobs)
            .finish(),
    }
}

/// `ocistow import` under the write bound, from the file or (`stdin`) through a pipe.
fn bounded_import(
    archive: &Path,
    dest: &Path,
    stdin: bool,
    extra: &[&str],
) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new("prlimit");
    cmd.arg(format!("--fsize={WRITE_BOUND}"))
        .arg("--")
        .arg(crate::common::ocistow_path())
        .arg("import")
        .args(extra);
    let mut cmd = if stdin {
        cmd.arg("-");
        let mut cmd = assert_cmd::Command::from_std(cmd);
        cmd.pipe_stdin(archive).unwrap();
        cmd
    } else {
        cmd.arg(archive);
        assert_cmd::Command::from_std(cmd)
    };
    let out = cmd.arg(dest).timeout(TIMEOUT).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Nothing but the archive is left in `dir` (no destination, no staging area).
fn only_the_archive(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("a.tar.gz")], "{left:?}");
}

/// From a file, an import reads what the archive declares first: a member nothing references,
/// or one larger than its descriptor, is refused (or skipped) without a byte of it staged, in
/// whatever order the archive has it.
#[test]
fn a_file_import_stages_only_what_the_archive_declares() {
    if !crate::common::have_tool("prlimit") {
        return;
    }
    for order in [Order::BlobsFirst, Order::IndexFirst] {
        let tmp = tempfile::tempdir().unwrap();
        let archive = bomb_archive(order, Bomb::Unreferenced);
        assert!(archive.len() < 1 << 20, "{} bytes of gzip", archive.len());
        let file = write(&tmp.path().join("a.tar.gz"), &archive);
        let dest = tmp.path().join("dest");
        let (code, stderr) = bounded_import(&file, &dest, false, &[]);
        assert_eq!(code, Some(INTEGRITY), "{order:?}: {stderr}");
        assert!(
            stderr.contains("nothing in the archive references")
                && stderr.contains(&zeros_digest().1),
            "{order:?}: {stderr}"
        );
        only_the_archive(tmp.path());
        let (code, stderr) = bounded_import(&file, &dest, false, &["--skip-unreferenced"]);
        assert_eq!(code, Some(0), "{order:?}: {stderr}");
        assert!(!dest.join(&zeros_digest().1).exists(), "{order:?}");
        ocistow().args(["fsck", &s(&dest)]).assert().success();

        let tmp = tempfile::tempdir().unwrap();
        let file = write(
            &tmp.path().join("a.tar.gz"),
            &bomb_archive(order, Bomb::OversizedLayer),
        );
        let (code, stderr) = bounded_import(&file, &tmp.path().join("dest"), false, &[]);
        assert_eq!(code, Some(INTEGRITY), "{order:?}: {stderr}");
        assert!(
            stderr.contains("expected 5 bytes") && stderr.contains(&BOMB.to_string()),
            "{order:?}: {stderr}"
        );
        only_the_archive(tmp.path());
    }
}

/// From a stream, members nothing before them declares are staged within the undeclared
/// limit: past it, the archive is refused with an error naming the member, before a byte of
/// it is staged, in either order and for either bomb.
#[test]
fn a_stream_import_stages_undeclared_members_within_the_limit() {
    if !crate::common::have_tool("prlimit") {
        return;
    }
    for order in [Order::BlobsFirst, Order::IndexFirst] {
        for bomb in [Bomb::Unreferenced, Bomb::OversizedLayer] {
            let tmp = tempfile::tempdir().unwrap();
            let file = write(&tmp.path().join("a.tar.gz"), &bomb_archive(order, bomb));
            let dest = tmp.path().join("dest");
            let (code, stderr) = bounded_import(&file, &dest, true, &["--undeclared-limit", "1M"]);
            let what = format!("{order:?} {bomb:?}");
            let member = match bomb {
                Bomb::Unreferenced => zeros_digest().1.clone(),
                Bomb::OversizedLayer => blob(b"hello").1,
            };
            assert_eq!(code, Some(8), "{what}: {stderr}");
            assert!(
                stderr.contains(&format!("stdin: entry \"{member}\""))
                    && stderr.contains("--undeclared-limit")
                    && stderr.contains("no descriptor before it declares")
                    && stderr.contains(&format!("the {} bytes", 1 << 20)),
                "{what}: {stderr}"
            );
            only_the_archive(tmp.path());
        }
    }
    // The same archive without a bomb imports from a stream, blobs first, within the limit.
    let tmp = tempfile::tempdir().unwrap();
    let (layer_digest, layer_name) = blob(b"hello");
    let (archive, _) = oci_archive(&layer_digest, 5, &[Member::File(&layer_name, b"hello")]);
    let file = write(
        &tmp.path().join("a.tar.gz"),
        &crate::hostile_tar::gzip(&archive),
    );
    let dest = tmp.path().join("dest");
    let (code, stderr) = bounded_import(&file, &dest, true, &["--undeclared-limit", "1K"]);
    assert_eq!(code, Some(0), "{stderr}");
    ocistow().args(["fsck", &s(&dest)]).assert().success();
}
