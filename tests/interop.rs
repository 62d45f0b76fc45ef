//! Interop with the peer tools that read and write OCI image layouts: skopeo and umoci.
//!
//! Every test builds its layout with the `ocistow` binary in a temporary directory, holding
//! - `art`: an oras-style artifact (empty config, `artifactType`, one titled `text/plain` layer);
//! - `img`: a runnable image pushed with `--config config.json:<image config>` and one
//!   uncompressed tar layer, whose config lists the tar's sha256 as its only `diff_id`;
//! - `docker.io/library/alpine:3.20`: a second tag of `img`, given with `--layout`.
//!
//! What the tools do with these (skopeo 1.9.3, umoci 0.4.7):
//! - skopeo reads both (`inspect --raw` prints our exact bytes), but refuses image-specific
//!   operations (plain `inspect`) on the artifact because its config is the empty descriptor;
//! - `skopeo copy` copies the artifact verbatim (same digest), but recompresses the image's
//!   uncompressed layer to gzip (dropping its annotations), so the copy has another digest
//!   unless `--preserve-digests` is given;
//! - umoci lists every tag, unpacks the image (checking the layer against the `diff_id`), and
//!   refuses to unpack the artifact because its config is not an image config.
//!
//! A missing tool fails under `CI=true` and prints `SKIP` otherwise (see `common::have_tool`).

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{at, json_of, ocistow, stdout_of, tagged};
use ocistow_store::{Algorithm, Digest};
use serde_json::Value;

const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
const ARTIFACT_TYPE: &str = "application/vnd.example.interop";
const LONG_TAG: &str = "docker.io/library/alpine:3.20";
const NOTE: &[u8] = b"an artifact file for skopeo and umoci\n";
const GREETING: &[u8] = b"hello from a layer pushed by ocistow\n";

/// A layout built by `ocistow`, and what went into it.
struct Built {
    layout: PathBuf,
    /// Digest of the `art` manifest.
    art: String,
    /// Digest of the `img` manifest.
    img: String,
    /// The uncompressed tar layer of `img`.
    tar: Vec<u8>,
    /// `sha256:` of `tar`: the layer's digest and its `diff_id`.
    tar_digest: String,
    /// The image config's bytes and digest.
    config: Vec<u8>,
    config_digest: String,
}

/// `oci:DIR:TAG`, the skopeo transport name.
fn oci(layout: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", layout.display())
}

fn sha256(bytes: &[u8]) -> String {
    Digest::of_bytes(Algorithm::Sha256, bytes).to_string()
}

/// One 512-byte ustar header.
fn ustar_header(name: &str, mode: u32, size: usize, typeflag: u8) -> [u8; 512] {
    fn octal(field: &mut [u8], value: u64) {
        let s = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    }
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0); // uid
    octal(&mut h[116..124], 0); // gid
    octal(&mut h[124..136], size as u64);
    octal(&mut h[136..148], 1_700_000_000); // mtime
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    // The checksum is computed with its own field as spaces, then written as 6 octal digits,
    // NUL, space.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A small, deterministic tar: `etc/` and `etc/greeting`.
fn layer_tar() -> Vec<u8> {
    let mut tar = Vec::new();
    tar.extend_from_slice(&ustar_header("etc/", 0o755, 0, b'5'));
    tar.extend_from_slice(&ustar_header("etc/greeting", 0o644, GREETING.len(), b'0'));
    tar.extend_from_slice(GREETING);
    tar.resize(tar.len().next_multiple_of(512), 0);
    tar.resize(tar.len() + 1024, 0); // end-of-archive: two zero blocks
    tar
}

/// Builds the layout described in the module docs in `work/layout`.
fn build(work: &Path) -> Built {
    let layout = work.join("layout");
    ocistow().arg("init").arg(&layout).assert().success();

    let note = work.join("note.txt");
    fs::write(&note, NOTE).unwrap();
    let out = ocistow()
        .arg("push")
        .arg(tagged(&layout, "art"))
        .arg(format!("{}:text/plain", note.display()))
        .args(["--artifact-type", ARTIFACT_TYPE])
        .assert()
        .success();
    let art = stdout_of(&out).trim().to_string();

    let tar = layer_tar();
    let tar_digest = sha256(&tar);
    let tar_file = work.join("layer.tar");
    fs::write(&tar_file, &tar).unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{tar_digest}"]}}}}"#
    )
    .into_bytes();
    let config_digest = sha256(&config);
    let config_file = work.join("config.json");
    fs::write(&config_file, &config).unwrap();
    let out = ocistow()
        .arg("push")
        .arg(tagged(&layout, "img"))
        .arg(format!("{}:{LAYER_TAR}", tar_file.display()))
        .arg("--config")
        .arg(format!("{}:{IMAGE_CONFIG}", config_file.display()))
        .assert()
        .success();
    let img = stdout_of(&out).trim().to_string();

    ocistow()
        .arg("--layout")
        .arg(&layout)
        .args(["tag", "img", LONG_TAG])
        .assert()
        .success();

    // What we pushed is what we think we pushed.
    let manifest: Value = serde_json::from_slice(
        &ocistow()
            .args(["manifest", "get", &tagged(&layout, "img")])
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    assert_eq!(manifest["config"]["digest"], config_digest.as_str());
    assert_eq!(manifest["layers"][0]["digest"], tar_digest.as_str());
    assert_eq!(manifest["layers"][0]["mediaType"], LAYER_TAR);

    Built {
        layout,
        art,
        img,
        tar,
        tar_digest,
        config,
        config_digest,
    }
}

/// Runs a peer tool and returns its output, whatever the exit status.
fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Runs a peer tool that must succeed, and returns its stdout.
fn tool_ok(program: &str, args: &[&str]) -> Vec<u8> {
    let out = tool(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn manifest_bytes(layout: &Path, tag: &str) -> Vec<u8> {
    ocistow()
        .arg("--layout")
        .arg(layout)
        .args(["manifest", "get", tag])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone()
}

fn resolve(layout: &Path, tag: &str) -> String {
    stdout_of(
        &ocistow()
            .args(["resolve", &tagged(layout, tag)])
            .assert()
            .success(),
    )
    .trim()
    .to_string()
}

fn tags(layout: &Path) -> Vec<String> {
    stdout_of(&ocistow().arg("tags").arg(layout).assert().success())
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn skopeo_inspect_raw_prints_our_exact_manifest_bytes() {
    if !common::have_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let b = build(tmp.path());
    for tag in ["art", "img", LONG_TAG] {
        let ours = manifest_bytes(&b.layout, tag);
        let theirs = tool_ok("skopeo", &["inspect", "--raw", &oci(&b.layout, tag)]);
        assert_eq!(
            String::from_utf8(theirs).unwrap(),
            String::from_utf8(ours).unwrap(),
            "skopeo inspect --raw of {tag}"
        );
    }

    // The image is an image to skopeo: its digest, platform and layers come from our blobs.
    let info: Value =
        serde_json::from_slice(&tool_ok("skopeo", &["inspect", &oci(&b.layout, "img")])).unwrap();
    assert_eq!(info["Digest"], b.img.as_str());
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Os"], "linux");
    assert_eq!(info["Layers"], serde_json::json!([b.tar_digest]));

    // The artifact is not: skopeo refuses image-specific operations on a manifest whose config
    // is the empty descriptor (`--raw` above is fine, the parsed view is not).
    let out = tool("skopeo", &["inspect", &oci(&b.layout, "art")]);
    assert!(!out.status.success(), "skopeo inspect of the artifact");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported image-specific operation on artifact")
            && err.contains(EMPTY_CONFIG),
        "unexpected skopeo error: {err}"
    );
}

#[test]
fn skopeo_copy_keeps_artifacts_verbatim_and_recompresses_image_layers() {
    if !common::have_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let b = build(tmp.path());
    let other = tmp.path().join("other");
    for tag in ["art", "img"] {
        tool_ok(
            "skopeo",
            &["copy", "-q", &oci(&b.layout, tag), &oci(&other, tag)],
        );
    }

    // The artifact has nothing skopeo would change: same digest, same bytes.
    assert_eq!(resolve(&other, "art"), b.art);
    assert_eq!(
        manifest_bytes(&other, "art"),
        manifest_bytes(&b.layout, "art")
    );

    // The image's uncompressed layer is gzipped on the way (the oci: destination prefers
    // compressed layers), which drops the layer's annotations and changes the manifest digest.
    let copied = resolve(&other, "img");
    assert_ne!(copied, b.img, "skopeo copy without --preserve-digests");
    let m: Value = serde_json::from_slice(&manifest_bytes(&other, "img")).unwrap();
    assert_eq!(m["config"]["digest"], b.config_digest.as_str());
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], LAYER_TAR_GZIP);
    assert_ne!(layers[0]["digest"], b.tar_digest.as_str());
    assert!(layers[0].get("annotations").is_none(), "{m}");
    // ... and our uncompressed layer blob is not copied at all.
    ocistow()
        .args(["blob", "exists", &at(&other, &b.tar_digest)])
        .assert()
        .code(1);

    // With --preserve-digests skopeo copies the image verbatim too.
    let third = tmp.path().join("third");
    tool_ok(
        "skopeo",
        &[
            "copy",
            "-q",
            "--preserve-digests",
            &oci(&b.layout, "img"),
            &oci(&third, "img"),
        ],
    );
    assert_eq!(resolve(&third, "img"), b.img);
    assert_eq!(
        manifest_bytes(&third, "img"),
        manifest_bytes(&b.layout, "img")
    );
    let layer = ocistow()
        .args(["blob", "get", &at(&third, &b.tar_digest)])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(layer, b.tar);
}

#[test]
fn ocistow_reads_layouts_written_by_skopeo() {
    if !common::have_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let b = build(tmp.path());
    let other = tmp.path().join("other");
    for tag in ["art", "img"] {
        tool_ok(
            "skopeo",
            &["copy", "-q", &oci(&b.layout, tag), &oci(&other, tag)],
        );
    }
    let copied_img = resolve(&other, "img");

    // ls and tags list what skopeo wrote, in its order.
    let rows = json_of(
        &ocistow()
            .arg("ls")
            .arg(&other)
            .args(["--format", "json"])
            .assert()
            .success(),
    );
    let rows = rows.as_array().unwrap();
    let listed: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["ref"].as_str().unwrap(), r["digest"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        vec![("art", b.art.as_str()), ("img", copied_img.as_str())]
    );
    for r in rows {
        assert_eq!(r["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    }
    assert_eq!(tags(&other), ["art", "img"]);

    // pull of the artifact writes the titled file, verified.
    let out = tmp.path().join("out");
    ocistow()
        .args(["pull", &tagged(&other, "art"), "-o"])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(fs::read(out.join("note.txt")).unwrap(), NOTE);

    // blob get of the image's config and of skopeo's gzipped layer: the layer unpacks to our tar.
    let config = ocistow()
        .args(["blob", "get", &at(&other, &b.config_digest)])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(config, b.config);
    let m: Value = serde_json::from_slice(&manifest_bytes(&other, "img")).unwrap();
    let gz_digest = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let gz_file = tmp.path().join("layer.tar.gz");
    ocistow()
        .args(["blob", "get", &at(&other, &gz_digest), "-o"])
        .arg(&gz_file)
        .assert()
        .success();
    let gz = fs::read(&gz_file).unwrap();
    assert_eq!(sha256(&gz), gz_digest);
    assert_eq!(gz.len() as u64, m["layers"][0]["size"].as_u64().unwrap());
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(tar, b.tar, "skopeo's gzip layer is our tar");

    // skopeo dropped the layer's title when it recompressed it, so there is nothing to pull.
    ocistow()
        .args(["pull", &tagged(&other, "img"), "-o"])
        .arg(tmp.path().join("out-img"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "no layers with an org.opencontainers.image.title annotation",
        ));

    // Verification is real: a same-size corruption of the artifact's file blob is refused by
    // pull and blob get, and nothing is written.
    let note_digest = sha256(NOTE);
    let blob = other
        .join("blobs/sha256")
        .join(&note_digest["sha256:".len()..]);
    let mut bad = NOTE.to_vec();
    bad[0] ^= 0x20;
    fs::write(&blob, &bad).unwrap();
    let out2 = tmp.path().join("out2");
    ocistow()
        .args(["pull", &tagged(&other, "art"), "-o"])
        .arg(&out2)
        .assert()
        .code(5)
        .stderr(predicates::str::contains("digest mismatch"));
    assert!(!out2.join("note.txt").exists());
    assert_eq!(fs::read_dir(&out2).map_or(0, std::iter::Iterator::count), 0);
    let got = tmp.path().join("got.txt");
    ocistow()
        .args(["blob", "get", &at(&other, &note_digest), "-o"])
        .arg(&got)
        .assert()
        .code(5);
    assert!(!got.exists());
}

#[test]
fn umoci_lists_our_tags_and_ocistow_reads_umoci_tags() {
    if !common::have_tool("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let b = build(tmp.path());
    let layout = b.layout.display().to_string();

    let listed = String::from_utf8(tool_ok("umoci", &["ls", "--layout", &layout])).unwrap();
    let listed: BTreeSet<&str> = listed.lines().collect();
    assert_eq!(listed, BTreeSet::from(["art", "img", LONG_TAG]));

    // umoci rewrites index.json to add a tag; ocistow reads it, and our entries keep their
    // fields (artifactType, annotations) through umoci's rewrite.
    let before = json_of(
        &ocistow()
            .arg("ls")
            .arg(&b.layout)
            .args(["--format", "json"])
            .assert()
            .success(),
    );
    tool_ok(
        "umoci",
        &["tag", "--image", &format!("{layout}:img"), "umoci-tag"],
    );
    assert_eq!(tags(&b.layout), ["art", "img", LONG_TAG, "umoci-tag"]);
    assert_eq!(resolve(&b.layout, "umoci-tag"), b.img);
    let after = json_of(
        &ocistow()
            .arg("ls")
            .arg(&b.layout)
            .args(["--format", "json"])
            .assert()
            .success(),
    );
    let after = after.as_array().unwrap();
    assert_eq!(&after[..3], before.as_array().unwrap().as_slice());
    assert_eq!(after[0]["artifactType"], ARTIFACT_TYPE);
}

#[test]
fn umoci_unpacks_our_image_and_refuses_our_artifact() {
    if !common::have_tool("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let b = build(tmp.path());
    let layout = b.layout.display().to_string();
    // umoci needs --rootless to unpack as an unprivileged user.
    let rootless = !rustix::process::geteuid().is_root();
    let unpack = |image: &str, bundle: &Path| {
        let mut args = vec!["unpack"];
        if rootless {
            args.push("--rootless");
        }
        let image = format!("{layout}:{image}");
        let bundle = bundle.display().to_string();
        args.extend(["--image", &image, &bundle]);
        tool("umoci", &args)
    };

    // umoci checks each layer against the config's diff_ids, so the file arriving means our
    // manifest, config and layer blob agree.
    for tag in ["img", LONG_TAG] {
        let bundle = tmp
            .path()
            .join(format!("bundle-{}", tag.replace(['/', ':'], "_")));
        let out = unpack(tag, &bundle);
        assert!(
            out.status.success(),
            "umoci unpack {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            fs::read(bundle.join("rootfs/etc/greeting")).unwrap(),
            GREETING
        );
        assert!(bundle.join("config.json").is_file());
        // umoci names its mtree manifest after the manifest digest it unpacked.
        let mtree = format!("{}.mtree", b.img.replace(':', "_"));
        assert!(bundle.join(&mtree).is_file(), "{mtree} in the bundle");
    }

    // umoci unpacks images only: the artifact's config is the empty descriptor, not an image
    // config, and umoci says so.
    let bundle = tmp.path().join("bundle-art");
    let out = unpack("art", &bundle);
    assert!(!out.status.success(), "umoci unpack of the artifact");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config blob is not correct mediatype") && err.contains(EMPTY_CONFIG),
        "unexpected umoci error: {err}"
    );
    assert!(!bundle.join("rootfs/etc").exists());
}
