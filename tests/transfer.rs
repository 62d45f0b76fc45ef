//! copy, export and import end to end: the air-gap round trip, archives written by other tools
//! (regctl, docker save in both shapes), skopeo reading our exports, byte-identical exports, a
//! corpus of hostile archives that must change nothing, and copies between layouts.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::common::{copy_fixture, fixture_dir, have_tool, json_of, ocistow, s, snapshot};
use serde_json::Value;

// ---- helpers ---------------------------------------------------------------------------------

fn stdout_of(args: &[&str]) -> String {
    let out = ocistow().args(args).assert().success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

fn stderr_of(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

fn resolve(reference: &str) -> String {
    stdout_of(&["resolve", reference]).trim().to_string()
}

fn write(path: &Path, body: &[u8]) -> PathBuf {
    fs::write(path, body).unwrap();
    path.to_path_buf()
}

/// A layout with `v1` (an artifact) and three referrers: an SBOM and a signature of `v1`, and a
/// scan result of the SBOM (a chain).
fn artifact_with_referrers(dir: &Path, work: &Path) -> BTreeMap<&'static str, String> {
    let l = s(dir);
    ocistow().args(["init", &l]).assert().success();
    let app = write(&work.join("app.bin"), b"the application\n");
    let sbom = write(&work.join("sbom.json"), br#"{"spdxVersion":"SPDX-2.3"}"#);
    let sig = write(&work.join("sig.bin"), b"signature bytes");
    let scan = write(&work.join("scan.json"), br#"{"vulnerabilities":[]}"#);
    let mut out = BTreeMap::new();
    out.insert(
        "v1",
        stdout_of(&[
            "push",
            &format!("{l}:v1"),
            &s(&app),
            "--artifact-type",
            "application/vnd.example.app",
            "-a",
            "org.opencontainers.image.created=2020-01-01T00:00:00Z",
        ])
        .trim()
        .to_string(),
    );
    let attach = |subject: &str, file: &Path, at: &str| {
        stdout_of(&[
            "attach",
            subject,
            &format!("{}:application/json", s(file)),
            "--artifact-type",
            at,
            "-a",
            "org.opencontainers.image.created=2020-01-01T00:00:00Z",
        ])
        .trim()
        .to_string()
    };
    let sbom_d = attach(&format!("{l}:v1"), &sbom, "application/vnd.example.sbom");
    let sig_d = attach(
        &format!("{l}:v1"),
        &sig,
        "application/vnd.example.signature",
    );
    let scan_d = attach(
        &format!("{l}@{sbom_d}"),
        &scan,
        "application/vnd.example.scan",
    );
    out.insert("sbom", sbom_d);
    out.insert("sig", sig_d);
    out.insert("scan", scan_d);
    out
}

/// `discover --format json` with the `reference` strings (which name the layout) removed.
fn discover(reference: &str, platform: Option<&str>) -> Value {
    fn strip(v: &mut Value) {
        if let Value::Object(m) = v {
            m.remove("reference");
            for child in m.values_mut() {
                strip(child);
            }
        } else if let Value::Array(a) = v {
            a.iter_mut().for_each(strip);
        }
    }
    let mut args = vec!["discover", reference, "--format", "json"];
    if let Some(p) = platform {
        args.extend(["--platform", p]);
    }
    let mut v = json_of(&ocistow().args(&args).assert().success());
    strip(&mut v);
    v
}

/// The referrers graph only: every level's referrers sorted by digest (records exported or
/// converted are listed in digest order, not in the order the source happened to have).
fn graph(reference: &str, platform: Option<&str>) -> Value {
    fn sort(v: &mut Value) {
        if let Some(list) = v.get_mut("referrers").and_then(Value::as_array_mut) {
            list.iter_mut().for_each(sort);
            list.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
        }
    }
    let mut v = discover(reference, platform);
    sort(&mut v);
    v
}

fn count_referrers(v: &Value) -> usize {
    v["referrers"].as_array().map_or(0, |a| {
        a.len() + a.iter().map(count_referrers).sum::<usize>()
    })
}

/// Every blob file of a layout, by digest.
fn blobs(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(algs) = fs::read_dir(dir.join("blobs")) else {
        return out;
    };
    for alg in algs {
        let alg = alg.unwrap();
        for f in fs::read_dir(alg.path()).unwrap() {
            let f = f.unwrap();
            out.insert(
                format!(
                    "{}:{}",
                    alg.file_name().to_string_lossy(),
                    f.file_name().to_string_lossy()
                ),
                fs::read(f.path()).unwrap(),
            );
        }
    }
    out
}

/// `ocistow fsck` hashes every blob and checks every descriptor and referrer record.
fn check_layout(dir: &Path) {
    let out = ocistow().args(["fsck", &s(dir)]).output().unwrap();
    assert!(
        out.status.success(),
        "fsck {} found problems:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn status_json(dir: &Path) -> Value {
    let out = ocistow()
        .args(["referrers", "status", &s(dir), "--format", "json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        out.status.success(),
        "referrers status of {}: {v}",
        dir.display()
    );
    v
}

// ---- a minimal tar writer (raw headers, so hostile archives can be built too) ----------------

struct Tar(Vec<u8>);

impl Tar {
    fn new() -> Self {
        Tar(Vec::new())
    }

    fn entry(mut self, name: &[u8], flag: u8, link: &[u8], data: &[u8], size: Option<u64>) -> Self {
        let mut h = [0u8; 512];
        assert!(name.len() <= 100 && link.len() <= 100);
        h[..name.len()].copy_from_slice(name);
        let octal = |field: &mut [u8], v: u64| {
            let text = format!("{:0width$o}\0", v, width = field.len() - 1);
            field.copy_from_slice(text.as_bytes());
        };
        octal(&mut h[100..108], if flag == b'5' { 0o755 } else { 0o644 });
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], size.unwrap_or(data.len() as u64));
        octal(&mut h[136..148], 0);
        h[156] = flag;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.0.extend_from_slice(&h);
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        self.entry(name.as_bytes(), b'0', b"", data, None)
    }

    fn dir(self, name: &str) -> Self {
        self.entry(name.as_bytes(), b'5', b"", b"", None)
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend([0u8; 1024]);
        self.0
    }
}

/// A tar of a directory tree, entries sorted.
fn tar_of_dir(dir: &Path) -> Vec<u8> {
    fn walk(base: &Path, dir: &Path, tar: Tar) -> Tar {
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        let mut tar = tar;
        for p in names {
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                tar = tar.dir(&format!("{rel}/"));
                tar = walk(base, &p, tar);
            } else {
                tar = tar.file(&rel, &fs::read(&p).unwrap());
            }
        }
        tar
    }
    walk(dir, dir, Tar::new()).finish()
}

// ---- 1. the air-gap round trip ---------------------------------------------------------------

#[test]
fn air_gap_round_trip_keeps_the_referrers_graph_and_every_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("build");
    let d = artifact_with_referrers(&src, tmp.path());
    let tarball = tmp.path().join("v1.tar");
    ocistow()
        .args([
            "export",
            &format!("{}:v1", s(&src)),
            "--referrers",
            "-o",
            &s(&tarball),
        ])
        .assert()
        .success();
    let expected = graph(&format!("{}:v1", s(&src)), None);
    assert_eq!(count_referrers(&expected), 3, "{expected}");
    let src_blobs = blobs(&src);

    // Into a directory that does not exist yet.
    let fresh = tmp.path().join("airgap/fresh");
    let out = ocistow()
        .args(["import", &s(&tarball), &s(&fresh)])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout).trim(),
        "v1"
    );
    assert_eq!(graph(&format!("{}:v1", s(&fresh)), None), expected);
    assert_eq!(resolve(&format!("{}:v1", s(&fresh))), d["v1"]);
    // Every blob arrived, byte for byte (so every digest is unchanged), and nothing else.
    assert_eq!(blobs(&fresh), src_blobs);
    check_layout(&fresh);
    assert!(status_json(&fresh)["issues"].as_array().unwrap().is_empty());

    // Into a layout that already holds other content (and its own referrer).
    let busy = tmp.path().join("busy");
    ocistow().args(["init", &s(&busy)]).assert().success();
    let other = write(&tmp.path().join("other.txt"), b"other content\n");
    let note = write(&tmp.path().join("note.txt"), b"a note\n");
    let other_d = stdout_of(&["push", &format!("{}:v9", s(&busy)), &s(&other)]);
    stdout_of(&[
        "attach",
        &format!("{}:v9", s(&busy)),
        &s(&note),
        "--artifact-type",
        "application/vnd.example.note",
    ]);
    let other_graph = graph(&format!("{}:v9", s(&busy)), None);
    let busy_before = blobs(&busy);
    ocistow()
        .args(["import", &s(&tarball), &s(&busy)])
        .assert()
        .success();
    assert_eq!(graph(&format!("{}:v1", s(&busy)), None), expected);
    assert_eq!(graph(&format!("{}:v9", s(&busy)), None), other_graph);
    assert_eq!(resolve(&format!("{}:v9", s(&busy))), other_d.trim());
    let after = blobs(&busy);
    for (digest, bytes) in src_blobs.iter().chain(&busy_before) {
        assert_eq!(after.get(digest), Some(bytes), "{digest}");
    }
    check_layout(&busy);
    assert!(status_json(&busy)["issues"].as_array().unwrap().is_empty());

    // Importing the same tarball again changes nothing.
    let again = snapshot(&busy);
    ocistow()
        .args(["import", &s(&tarball), &s(&busy)])
        .assert()
        .success();
    assert_eq!(snapshot(&busy), again);

    // Into a layout that records referrers as fallback tags: re-recorded that way.
    let tagged = tmp.path().join("tagged");
    ocistow().args(["init", &s(&tagged)]).assert().success();
    stdout_of(&["push", &format!("{}:v9", s(&tagged)), &s(&other)]);
    stdout_of(&[
        "attach",
        &format!("{}:v9", s(&tagged)),
        &s(&note),
        "--artifact-type",
        "application/vnd.example.note",
        "--referrers-mode",
        "tag",
    ]);
    let out = ocistow()
        .args(["import", &s(&tarball), &s(&tagged)])
        .assert()
        .success();
    assert!(
        stderr_of(&out).contains("recorded as tag"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(graph(&format!("{}:v1", s(&tagged)), None), expected);
    let status = status_json(&tagged);
    assert_eq!(status["mode"], "tag", "{status}");
    assert!(status["issues"].as_array().unwrap().is_empty(), "{status}");
    let fallback = format!("sha256-{}", d["v1"].trim_start_matches("sha256:"));
    assert!(
        stdout_of(&["tags", &s(&tagged)])
            .lines()
            .any(|t| t == fallback)
    );
    check_layout(&tagged);
}

#[test]
fn import_conflicting_tag_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let d = artifact_with_referrers(&src, tmp.path());
    let tarball = tmp.path().join("v1.tar.gz");
    ocistow()
        .args([
            "export",
            &format!("{}:v1", s(&src)),
            "--gzip",
            "-o",
            &s(&tarball),
        ])
        .assert()
        .success();
    let dst = tmp.path().join("dst");
    ocistow().args(["init", &s(&dst)]).assert().success();
    let other = write(&tmp.path().join("other.txt"), b"something else\n");
    stdout_of(&["push", &format!("{}:v1", s(&dst)), &s(&other)]);
    let before = snapshot(&dst);
    let out = ocistow()
        .args(["import", &s(&tarball), &s(&dst)])
        .assert()
        .code(7);
    assert!(stderr_of(&out).contains("\"v1\""), "{}", stderr_of(&out));
    assert_eq!(snapshot(&dst), before);
    ocistow()
        .args(["import", &s(&tarball), &s(&dst), "--force"])
        .assert()
        .success();
    assert_eq!(resolve(&format!("{}:v1", s(&dst))), d["v1"]);
}

// ---- 2. archives written by other tools ------------------------------------------------------

#[test]
fn regctl_export_tarballs_import() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("dst");
    let dir = fixture_dir("regctl-export");
    for name in ["multi-export.tar", "arm64-export.tar"] {
        ocistow()
            .args(["import", &s(&dir.join(name)), &s(&dst)])
            .assert()
            .success();
    }
    let l = s(&dst);
    let multi = "sha256:d5e6c3395ac0e7848f4d7b31f0df2afbb2cce88396b00ffc18fb5bed60e7ddb9";
    let arm64 = "sha256:3ca1d1993f27e40c34ca280e4256e2261ee4cf9945e914c4da1c809534ac5614";
    assert_eq!(resolve(&format!("{l}:multi")), multi);
    assert_eq!(resolve(&format!("{l}:arm64")), arm64);
    assert_eq!(
        stdout_of(&[
            "resolve",
            &format!("{l}:multi"),
            "--platform",
            "linux/arm64"
        ])
        .trim(),
        arm64
    );
    // The arm64 layer, verified on the way out.
    let layer = tmp.path().join("layer.tar");
    ocistow()
        .args([
            "blob",
            "get",
            &format!("{l}@sha256:3abdf14385ce44603e19fce179bfeade3ab4998a686fcdd212b2113cf24247da"),
            "-o",
            &s(&layer),
        ])
        .assert()
        .success();
    assert_eq!(fs::metadata(&layer).unwrap().len(), 10240);
    assert_eq!(blobs(&dst).len(), 7);
    check_layout(&dst);
}

/// A classic `docker save` archive: `manifest.json`, `repositories`, `<id>/layer.tar` (one of
/// them a symlink to a layer saved already, as docker writes), `<hex>.json` configs.
#[test]
fn classic_docker_save_archive_imports_as_docker_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let layer1 = Tar::new()
        .dir("etc/")
        .file("etc/hello", b"hello\n")
        .finish();
    let layer2 = Tar::new().file("etc/second", b"second layer\n").finish();
    let config1 =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config2 =
        br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let id1 = "1".repeat(64);
    let id2 = "2".repeat(64);
    let id3 = "3".repeat(64);
    let c1 = format!("{}.json", "c".repeat(64));
    let c2 = format!("{}.json", "d".repeat(64));
    let manifest = format!(
        r#"[{{"Config":"{c1}","RepoTags":["example/app:1.0","example/app:latest"],"Layers":["{id1}/layer.tar","{id2}/layer.tar"]}},{{"Config":"{c2}","RepoTags":null,"Layers":["{id3}/layer.tar"]}}]"#
    );
    let archive = Tar::new()
        .dir(&format!("{id1}/"))
        .file(&format!("{id1}/VERSION"), b"1.0")
        .file(&format!("{id1}/json"), b"{}")
        .file(&format!("{id1}/layer.tar"), &layer1)
        .dir(&format!("{id2}/"))
        .file(&format!("{id2}/layer.tar"), &layer2)
        .dir(&format!("{id3}/"))
        .entry(
            format!("{id3}/layer.tar").as_bytes(),
            b'2',
            format!("../{id1}/layer.tar").as_bytes(),
            b"",
            None,
        )
        .file(&c1, config1)
        .file(&c2, config2)
        .file("manifest.json", manifest.as_bytes())
        .file(
            "repositories",
            format!(r#"{{"example/app":{{"1.0":"{id2}"}}}}"#).as_bytes(),
        )
        .finish();
    let file = write(&tmp.path().join("save.tar"), &archive);
    let dst = tmp.path().join("dst");
    let out = ocistow()
        .args(["import", &s(&file), &s(&dst)])
        .assert()
        .success();
    assert!(stderr_of(&out).contains("docker save archive"));
    let l = s(&dst);
    let m: Value = serde_json::from_str(&stdout_of(&[
        "--layout",
        &l,
        "manifest",
        "get",
        "example/app:1.0",
    ]))
    .unwrap();
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(m["layers"].as_array().unwrap().len(), 2);
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar"
    );
    // blob get verifies each digest; the content is the file the archive carried.
    let get = |digest: &str| {
        let out = tmp.path().join("out.bin");
        ocistow()
            .args(["blob", "get", &format!("{l}@{digest}"), "-o", &s(&out)])
            .assert()
            .success();
        fs::read(out).unwrap()
    };
    assert_eq!(get(m["config"]["digest"].as_str().unwrap()), config1);
    assert_eq!(get(m["layers"][0]["digest"].as_str().unwrap()), layer1);
    assert_eq!(get(m["layers"][1]["digest"].as_str().unwrap()), layer2);
    assert_eq!(
        stdout_of(&["--layout", &l, "resolve", "example/app:latest"]),
        stdout_of(&["--layout", &l, "resolve", "example/app:1.0"])
    );
    // The untagged second image, whose layer came through docker's symlink.
    let ls: Value = serde_json::from_str(&stdout_of(&["ls", &l, "--format", "json"])).unwrap();
    let untagged: Vec<&Value> = ls
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ref"].is_null())
        .collect();
    assert_eq!(untagged.len(), 1);
    let digest = untagged[0]["digest"].as_str().unwrap();
    let m2: Value =
        serde_json::from_str(&stdout_of(&["manifest", "get", &format!("{l}@{digest}")])).unwrap();
    assert_eq!(get(m2["layers"][0]["digest"].as_str().unwrap()), layer1);
    assert_eq!(get(m2["config"]["digest"].as_str().unwrap()), config2);
    // Nothing but blobs was written: no <id>/ directories, no repositories file.
    assert!(!dst.join(&id1).exists() && !dst.join("repositories").exists());
    check_layout(&dst);
}

/// `docker save` >= 25 / containerd export: an OCI layout plus `manifest.json`.
#[test]
fn docker_save_with_an_oci_layout_inside_imports_with_its_referrers() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tar_of_dir(&fixture_dir("containerd-subject-annotation").join("layout"));
    let file = write(&tmp.path().join("save.tar"), &archive);
    let dst = tmp.path().join("dst");
    ocistow()
        .args(["import", &s(&file), &s(&dst)])
        .assert()
        .success();
    let l = s(&dst);
    assert_eq!(
        resolve(&format!("{l}:1.0")),
        "sha256:4f942b4a39890ac8fcba6f85b6fa013ce308954259f5c5aaf2552c5f45688275"
    );
    let top = discover(&format!("{l}:1.0"), None);
    assert_eq!(
        top["referrers"][0]["digest"],
        "sha256:feae181b78a01863c6a500b0f003d0930ef33d38ab28d89a8f29baa0e281f4d5"
    );
    let child = discover(&format!("{l}:1.0"), Some("linux/amd64"));
    assert_eq!(
        child["referrers"][0]["digest"],
        "sha256:d915f87ad43a04a5a1899f9e9f9a0bf3944358bd241cb5f6abd49075b45cf7bf"
    );
    assert!(!dst.join("manifest.json").exists());
    check_layout(&dst);
}

// ---- 3. skopeo reads our exports -------------------------------------------------------------

#[test]
fn skopeo_reads_exported_tarballs() {
    if !have_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    artifact_with_referrers(&src, tmp.path());
    ocistow()
        .args([
            "import",
            &s(&fixture_dir("regctl-export").join("arm64-export.tar")),
            &s(&src),
        ])
        .assert()
        .success();
    let manifest = stdout_of(&["manifest", "get", &format!("{}:v1", s(&src))]);
    // skopeo reads plain tar, and (through its archive layer) tar+gzip and tar+zstd as well.
    for (flag, ext) in [
        (None, "tar"),
        (Some("--gzip"), "tar.gz"),
        (Some("--zstd"), "tar.zst"),
    ] {
        for tag in ["v1", "arm64"] {
            let file = tmp.path().join(format!("{tag}.{ext}"));
            let mut args = vec![
                "export".to_string(),
                format!("{}:{tag}", s(&src)),
                "--referrers".into(),
                "-o".into(),
                s(&file),
            ];
            args.extend(flag.map(String::from));
            ocistow().args(&args).assert().success();
            let reference = format!("oci-archive:{}:{tag}", s(&file));
            if tag == "v1" {
                // An artifact: skopeo only reads its raw manifest.
                let out = std::process::Command::new("skopeo")
                    .args(["inspect", "--raw", &reference])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{ext}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(String::from_utf8_lossy(&out.stdout), manifest, "{ext}");
            } else {
                let out = std::process::Command::new("skopeo")
                    .args(["inspect", &reference])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{ext}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(
                    v["Digest"],
                    "sha256:3ca1d1993f27e40c34ca280e4256e2261ee4cf9945e914c4da1c809534ac5614",
                    "{ext}"
                );
                assert_eq!(v["Architecture"], "arm64");
            }
        }
    }
}

// ---- 4. deterministic exports ----------------------------------------------------------------

fn export_bytes(reference: &str, extra: &[&str], out: &Path) -> Vec<u8> {
    ocistow()
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["export", reference, "--referrers", "-o", &s(out)])
        .args(extra)
        .assert()
        .success();
    fs::read(out).unwrap()
}

#[test]
fn exports_of_the_same_content_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    artifact_with_referrers(&src, tmp.path());
    let v1 = format!("{}:v1", s(&src));
    let whole = s(&src);
    let variants: [&[&str]; 3] = [&[], &["--gzip"], &["--zstd"]];
    let first: Vec<(Vec<u8>, Vec<u8>)> = variants
        .iter()
        .map(|extra| {
            (
                export_bytes(&v1, extra, &tmp.path().join("a")),
                export_bytes(&whole, extra, &tmp.path().join("b")),
            )
        })
        .collect();
    // Twice in a row.
    for (extra, (one, all)) in variants.iter().zip(&first) {
        assert_eq!(
            &export_bytes(&v1, extra, &tmp.path().join("c")),
            one,
            "{extra:?}"
        );
        assert_eq!(
            &export_bytes(&whole, extra, &tmp.path().join("d")),
            all,
            "{extra:?}"
        );
    }
    assert_eq!(&first[1].0[..3], &[0x1f, 0x8b, 8]);
    assert_eq!(
        &first[1].0[4..8],
        &[0, 0, 0, 0],
        "gzip header carries no time stamp"
    );
    assert_eq!(&first[2].0[..4], &[0x28, 0xb5, 0x2f, 0xfd]);

    // Reorder index.json and rewrite every blob file (new inode, new mtime). The roots are
    // reversed; the referrers keep their order among themselves (that order is content: an
    // export lists them as the source does), moved after the roots.
    let index_path = src.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    let (referrers, mut roots): (Vec<Value>, Vec<Value>) = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .partition(|e| e["annotations"]["io.containerd.manifest.subject"].is_string());
    roots.reverse();
    roots.extend(referrers);
    index["manifests"] = Value::Array(roots);
    fs::write(&index_path, serde_json::to_vec_pretty(&index).unwrap()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for (digest, bytes) in blobs(&src) {
        let (alg, hex) = digest.split_once(':').unwrap();
        let p = src.join("blobs").join(alg).join(hex);
        fs::remove_file(&p).unwrap();
        fs::write(&p, bytes).unwrap();
    }
    for (extra, (one, all)) in variants.iter().zip(&first) {
        assert_eq!(
            &export_bytes(&v1, extra, &tmp.path().join("e")),
            one,
            "{extra:?}"
        );
        assert_eq!(
            &export_bytes(&whole, extra, &tmp.path().join("f")),
            all,
            "{extra:?}"
        );
    }

    // The entry order: oci-layout, index.json, blobs/, blobs/sha256/, blobs sorted.
    let names = tar_names(&first[0].0);
    assert_eq!(
        &names[..4],
        ["oci-layout", "index.json", "blobs/", "blobs/sha256/"]
    );
    let blob_names = &names[4..];
    let mut sorted = blob_names.to_vec();
    sorted.sort();
    assert_eq!(blob_names, sorted.as_slice());

    // SOURCE_DATE_EPOCH sets every mtime.
    ocistow()
        .env("SOURCE_DATE_EPOCH", "1577836800")
        .args(["export", &v1, "-o", &s(&tmp.path().join("g"))])
        .assert()
        .success();
    let tar = fs::read(tmp.path().join("g")).unwrap();
    assert_eq!(
        &tar[136..147],
        format!("{:011o}", 1_577_836_800u64).as_bytes()
    );
}

/// Member names of a plain tar, in order (ustar names; our exports have no long names here).
fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        let h = &tar[at..at + 512];
        let end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        names.push(String::from_utf8_lossy(&h[..end]).into_owned());
        let size_text: String = h[124..136]
            .iter()
            .filter(|b| b.is_ascii_digit())
            .map(|&b| b as char)
            .collect();
        let size = u64::from_str_radix(&size_text, 8).unwrap() as usize;
        at += 512 + size.div_ceil(512) * 512;
    }
    names
}

#[test]
fn export_refuses_a_corrupt_blob_and_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    artifact_with_referrers(&src, tmp.path());
    let m: Value =
        serde_json::from_str(&stdout_of(&["manifest", "get", &format!("{}:v1", s(&src))])).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let path = src
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[0] ^= 1;
    fs::write(&path, bytes).unwrap();
    let out_file = tmp.path().join("out.tar");
    let out = ocistow()
        .args(["export", &format!("{}:v1", s(&src)), "-o", &s(&out_file)])
        .assert()
        .code(5);
    assert!(stderr_of(&out).contains(layer), "{}", stderr_of(&out));
    assert!(!out_file.exists());
    let leftovers: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ocistow"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn docker_manifest_for_a_single_image() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    ocistow()
        .args([
            "import",
            &s(&fixture_dir("regctl-export").join("multi-export.tar")),
            &s(&src),
        ])
        .assert()
        .success();
    // An index is refused.
    let out = ocistow()
        .args([
            "export",
            &format!("{}:multi", s(&src)),
            "--docker-manifest",
            "-o",
            &s(&tmp.path().join("x.tar")),
        ])
        .assert()
        .code(2);
    assert!(
        stderr_of(&out).contains("is an index"),
        "{}",
        stderr_of(&out)
    );
    let arm = "sha256:3ca1d1993f27e40c34ca280e4256e2261ee4cf9945e914c4da1c809534ac5614";
    stdout_of(&["tag", &format!("{}@{arm}", s(&src)), "arm"]);
    let file = tmp.path().join("arm.tar");
    ocistow()
        .args([
            "export",
            &format!("{}:arm", s(&src)),
            "--docker-manifest",
            "-o",
            &s(&file),
        ])
        .assert()
        .success();
    let tar = fs::read(&file).unwrap();
    assert_eq!(tar_names(&tar)[2], "manifest.json");
    // Round trip: the tarball imports (manifest.json is ignored next to the OCI layout).
    let dst = tmp.path().join("dst");
    ocistow()
        .args(["import", &s(&file), &s(&dst)])
        .assert()
        .success();
    assert_eq!(resolve(&format!("{}:arm", s(&dst))), arm);
    // Its content, read with our own tar reader.
    let extracted = tmp.path().join("x");
    fs::create_dir(&extracted).unwrap();
    let status = std::process::Command::new("tar")
        .args(["xf", &s(&file), "-C", &s(&extracted), "manifest.json"])
        .status()
        .unwrap();
    assert!(status.success());
    let m: Value =
        serde_json::from_slice(&fs::read(extracted.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        m[0]["Config"],
        "blobs/sha256/34337c154843a481b6e1f859ee7946512e93366f09e8994738f98fd1b9662d1a"
    );
    assert_eq!(m[0]["RepoTags"][0], "src:arm");
    assert_eq!(
        m[0]["Layers"][0],
        "blobs/sha256/3abdf14385ce44603e19fce179bfeade3ab4998a686fcdd212b2113cf24247da"
    );
}

// ---- 5. hostile archives ---------------------------------------------------------------------

const HELLO_DIGEST: &str =
    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

fn blob_name(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// The pieces of a small valid layout: a manifest with the empty config and one layer `hello`
/// declared with `layer_size`, tagged `base`. Returns (manifest name, manifest bytes, index bytes).
fn layout_parts(layer_size: usize) -> (String, Vec<u8>, Vec<u8>) {
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{EMPTY_DIGEST}","size":2}},"layers":[{{"mediaType":"text/plain","digest":"{HELLO_DIGEST}","size":{layer_size}}}]}}"#
    );
    // The manifest's own digest, computed with the binary itself (no hashing crate here).
    let tmp = tempfile::tempdir().unwrap();
    ocistow().args(["init", &s(tmp.path())]).assert().success();
    let f = write(&tmp.path().join("m.json"), manifest.as_bytes());
    let digest = stdout_of(&["blob", "put", &s(tmp.path()), &s(&f)])
        .trim()
        .to_string();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"base"}}}}]}}"#,
        manifest.len()
    );
    (
        blob_name(&digest),
        manifest.into_bytes(),
        index.into_bytes(),
    )
}

fn valid_base() -> Tar {
    let (mname, manifest, index) = layout_parts(5);
    Tar::new()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file("index.json", &index)
        .dir("blobs/")
        .dir("blobs/sha256/")
        .file(&blob_name(EMPTY_DIGEST), b"{}")
        .file(&mname, &manifest)
}

/// The import is refused with a message containing `needle`, into an existing layout (which is
/// byte-identical afterwards) and into a directory that does not exist (which still does not).
fn assert_refused(archive: &[u8], needle: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(&tmp.path().join("hostile.tar"), archive);
    let existing = copy_fixture("oras-referrers", &tmp.path().join("existing"));
    let before = snapshot(&existing);
    let out = ocistow()
        .args(["import", &s(&file), &s(&existing)])
        .assert()
        .failure();
    let err = stderr_of(&out);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert_eq!(snapshot(&existing), before, "{err}");
    let fresh = tmp.path().join("fresh/layout");
    let out = ocistow()
        .args(["import", &s(&file), &s(&fresh)])
        .assert()
        .failure();
    let err = stderr_of(&out);
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!fresh.exists() && !tmp.path().join("fresh").exists());
    // The same through stdin.
    let out = ocistow()
        .args(["import", "-", &s(&fresh)])
        .write_stdin(archive.to_vec())
        .assert()
        .failure();
    assert!(stderr_of(&out).contains(needle));
    assert!(!fresh.exists());
    // No staging area left behind.
    let names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".ocistow")),
        "{names:?}"
    );
}

#[test]
fn the_valid_base_archive_imports() {
    // The corpus below breaks this archive one way at a time.
    let archive = valid_base()
        .file(&blob_name(HELLO_DIGEST), b"hello")
        .finish();
    let tmp = tempfile::tempdir().unwrap();
    let file = write(&tmp.path().join("ok.tar"), &archive);
    let existing = copy_fixture("oras-referrers", &tmp.path().join("existing"));
    ocistow()
        .args(["import", &s(&file), &s(&existing)])
        .assert()
        .success();
    assert_eq!(
        stdout_of(&["blob", "get", &format!("{}@{HELLO_DIGEST}", s(&existing))]),
        "hello"
    );
}

#[test]
fn hostile_dotdot_path() {
    let a = valid_base().file("../evil", b"x").finish();
    assert_refused(&a, "../evil");
    let a = valid_base().file("blobs/../../evil", b"x").finish();
    assert_refused(&a, "blobs/../../evil");
}

#[test]
fn hostile_absolute_path() {
    let a = valid_base().file("/tmp/ocistow-evil", b"x").finish();
    assert_refused(&a, "/tmp/ocistow-evil");
}

#[test]
fn hostile_symlink() {
    let a = valid_base()
        .entry(b"evil-link", b'2', b"../../../etc/passwd", b"", None)
        .finish();
    assert_refused(&a, "evil-link");
    // A blob name that is a link.
    let a = valid_base()
        .entry(
            blob_name(HELLO_DIGEST).as_bytes(),
            b'2',
            b"/etc/passwd",
            b"",
            None,
        )
        .finish();
    assert_refused(&a, &blob_name(HELLO_DIGEST));
}

#[test]
fn hostile_hard_link() {
    let a = valid_base()
        .file(&blob_name(HELLO_DIGEST), b"hello")
        .entry(b"evil-hardlink", b'1', b"oci-layout", b"", None)
        .finish();
    assert_refused(&a, "evil-hardlink");
}

#[test]
fn hostile_char_device() {
    let a = valid_base()
        .entry(b"dev-null", b'3', b"", b"", None)
        .finish();
    assert_refused(&a, "dev-null");
}

#[test]
fn hostile_fifo() {
    let a = valid_base().entry(b"a-fifo", b'6', b"", b"", None).finish();
    assert_refused(&a, "a-fifo");
}

#[test]
fn hostile_duplicate_blob() {
    let a = valid_base()
        .file(&blob_name(HELLO_DIGEST), b"hello")
        .file(&blob_name(HELLO_DIGEST), b"hello")
        .finish();
    assert_refused(&a, &blob_name(HELLO_DIGEST));
}

#[test]
fn hostile_duplicate_index_json() {
    let a = valid_base()
        .file(&blob_name(HELLO_DIGEST), b"hello")
        .file("./index.json", br#"{"schemaVersion":2,"manifests":[]}"#)
        .finish();
    assert_refused(&a, "index.json");
}

#[test]
fn hostile_blob_content_does_not_match_its_name() {
    let a = valid_base()
        .file(&blob_name(HELLO_DIGEST), b"HELLO")
        .finish();
    assert_refused(&a, &blob_name(HELLO_DIGEST));
}

#[test]
fn hostile_blob_bigger_than_its_descriptor() {
    let (mname, manifest, index) = layout_parts(3);
    let a = Tar::new()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file("index.json", &index)
        .file(&blob_name(EMPTY_DIGEST), b"{}")
        .file(&mname, &manifest)
        .file(&blob_name(HELLO_DIGEST), b"hello")
        .finish();
    assert_refused(&a, &blob_name(HELLO_DIGEST));
}

#[test]
fn hostile_index_names_a_blob_missing_from_the_archive() {
    let a = valid_base().finish();
    assert_refused(&a, HELLO_DIGEST);
}

#[test]
fn hostile_truncated_archive() {
    let full = valid_base()
        .file(&blob_name(HELLO_DIGEST), b"hello")
        .finish();
    // Cut inside the last blob's data, and right after a header boundary.
    assert_refused(&full[..full.len() - 1024 - 510], "truncated");
    assert_refused(&full[..full.len() - 1024], "truncated");
}

#[test]
fn hostile_absurd_size() {
    let a = valid_base()
        .entry(
            blob_name(HELLO_DIGEST).as_bytes(),
            b'0',
            b"",
            b"hello",
            Some(0o777_7777_7777),
        )
        .finish();
    // index.json's manifest declares the blob as 5 bytes: refused before staging 8 GiB.
    assert_refused(&a, "size mismatch");
}

#[test]
fn hostile_gzip_garbage() {
    let mut a = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    a.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    assert_refused(&a, "invalid gzip stream");
    assert_refused(
        b"this is not an archive at all, only text",
        "too short for a tar archive",
    );
    let mut text = b"not a tar either ".repeat(64);
    text.truncate(1024);
    assert_refused(&text, "does not start with a tar header");
}

#[test]
fn hostile_invalid_json_and_unexpected_blob_names() {
    let a = Tar::new()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file("index.json", b"{\"schemaVersion\":2,\"manifests\":[")
        .finish();
    assert_refused(&a, "index.json");
    let a = valid_base()
        .file(&blob_name(HELLO_DIGEST), b"hello")
        .file("blobs/md5/5d41402abc4b2a76b9719d911017c592", b"hello")
        .finish();
    assert_refused(&a, "blobs/md5/5d41402abc4b2a76b9719d911017c592");
    let a = valid_base()
        .file(&blob_name(HELLO_DIGEST), b"hello")
        .file("blobs/sha256/sub/file", b"x")
        .finish();
    assert_refused(&a, "blobs/sha256/sub/file");
}

#[test]
fn harmless_unknown_files_are_ignored_not_written() {
    let a = valid_base()
        .file(&blob_name(HELLO_DIGEST), b"hello")
        .file("README.txt", b"not part of the layout")
        .file("extra/notes.txt", b"neither")
        .finish();
    let tmp = tempfile::tempdir().unwrap();
    let file = write(&tmp.path().join("a.tar"), &a);
    let dst = tmp.path().join("dst");
    ocistow()
        .args(["import", &s(&file), &s(&dst)])
        .assert()
        .success();
    assert!(!dst.join("README.txt").exists() && !dst.join("extra").exists());
}

// ---- 6. copy ---------------------------------------------------------------------------------

fn ino(dir: &Path, digest: &str) -> u64 {
    fs::metadata(
        dir.join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap()
    .ino()
}

const MULTI: &str = "sha256:ddcdba15d9370e5b54f2fddf0d86ed5b07bf6878cb228eca400077b53fb13239";
const AMD64: &str = "sha256:b7ef1ab818cd74500834da9af00d1bf75606f3a093a3a85b7a2427903c8d5581";
const ARM64: &str = "sha256:089951e64311bfa9b1c4e34382765867e0c49e93f03cd1f1e0ed384d0904704b";
const AMD64_LAYER: &str = "sha256:b4e4814ae66bbd877d9579499896963cea50685794f8182e9e0133222b86e2a8";
const ARM64_LAYER: &str = "sha256:3abdf14385ce44603e19fce179bfeade3ab4998a686fcdd212b2113cf24247da";
const CHILD_SBOM: &str = "sha256:e43d87b6f3bc2f9d93fd5bc49729680b37ac2d171077d830b7dc5013dfbf5dab";

fn blob_exists(dir: &Path, digest: &str) -> bool {
    ocistow()
        .args(["blob", "exists", &format!("{}@{digest}", s(dir))])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn copy_with_referrers_of_the_root_and_of_a_child() {
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_fixture("oras-multiplatform", &tmp.path().join("src"));
    // copy_fixture leaves files writable by everyone: such a blob is never hard-linked, since
    // anyone could then change the destination's copy through the source.
    let open = tmp.path().join("open");
    let report = json_of(
        &ocistow()
            .args([
                "copy",
                &format!("{}:multi", s(&src)),
                &s(&open),
                "-r",
                "--format",
                "json",
            ])
            .assert()
            .success(),
    );
    assert_eq!(report["linked"], 0, "{report}");
    assert_ne!(ino(&open, AMD64_LAYER), ino(&src, AMD64_LAYER));
    // Blobs as tools write them (0644, ours) are linked.
    for digest in blobs(&src).keys() {
        let p = src
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    let dst = tmp.path().join("dst");
    let report = json_of(
        &ocistow()
            .args([
                "copy",
                &format!("{}:multi", s(&src)),
                &s(&dst),
                "-r",
                "--format",
                "json",
            ])
            .assert()
            .success(),
    );
    assert_eq!(report["descriptor"]["digest"], MULTI);
    assert_eq!(report["referrers"], 3, "{report}");
    assert_eq!(resolve(&format!("{}:multi", s(&dst))), MULTI);
    for platform in [None, Some("linux/amd64"), Some("linux/arm64")] {
        assert_eq!(
            graph(&format!("{}:multi", s(&dst)), platform),
            graph(&format!("{}:multi", s(&src)), platform),
            "{platform:?}"
        );
    }
    assert!(blob_exists(&dst, CHILD_SBOM));
    // Same file system: blobs were hard-linked, after verification.
    assert!(report["linked"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(ino(&dst, AMD64_LAYER), ino(&src, AMD64_LAYER));
    check_layout(&dst);
    assert!(status_json(&dst)["issues"].as_array().unwrap().is_empty());

    // Copying again: every blob is present already, nothing is linked or copied.
    let inode = ino(&dst, ARM64_LAYER);
    let again = json_of(
        &ocistow()
            .args([
                "copy",
                &format!("{}:multi", s(&src)),
                &format!("{}:again", s(&dst)),
                "-r",
                "--format",
                "json",
            ])
            .assert()
            .success(),
    );
    assert_eq!(again["present"], again["blobs"], "{again}");
    assert_eq!(again["linked"], 0);
    assert_eq!(again["copied"], 0);
    assert_eq!(ino(&dst, ARM64_LAYER), inode);
    assert_eq!(resolve(&format!("{}:again", s(&dst))), MULTI);
}

#[test]
fn copy_without_referrers_and_into_another_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_fixture("oras-multiplatform", &tmp.path().join("src"));
    let dst = tmp.path().join("dst");
    ocistow()
        .args([
            "copy",
            &format!("{}:multi", s(&src)),
            &format!("{}:copied", s(&dst)),
        ])
        .assert()
        .success();
    assert_eq!(resolve(&format!("{}:copied", s(&dst))), MULTI);
    assert_eq!(
        count_referrers(&discover(&format!("{}:copied", s(&dst)), None)),
        0
    );
    assert!(!blob_exists(&dst, CHILD_SBOM));
    assert!(blob_exists(&dst, AMD64_LAYER) && blob_exists(&dst, ARM64_LAYER));
    check_layout(&dst);

    // With -r into a layout that wants fallback tags.
    let tagged = tmp.path().join("tagged");
    ocistow()
        .args([
            "copy",
            &format!("{}:multi", s(&src)),
            &s(&tagged),
            "-r",
            "--referrers-mode",
            "tag",
        ])
        .assert()
        .success();
    let status = status_json(&tagged);
    assert_eq!(status["mode"], "tag", "{status}");
    assert_eq!(status["referrers"], 3, "{status}");
    assert_eq!(
        graph(&format!("{}:multi", s(&tagged)), Some("linux/amd64")),
        graph(&format!("{}:multi", s(&src)), Some("linux/amd64"))
    );
}

#[test]
fn copy_selected_platforms() {
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_fixture("oras-multiplatform", &tmp.path().join("src"));
    // One platform: its manifest becomes the root, under the source tag.
    let one = tmp.path().join("one");
    ocistow()
        .args([
            "copy",
            &format!("{}:multi", s(&src)),
            &s(&one),
            "--platform",
            "linux/arm64",
        ])
        .assert()
        .success();
    assert_eq!(resolve(&format!("{}:multi", s(&one))), ARM64);
    assert!(blob_exists(&one, ARM64_LAYER) && !blob_exists(&one, AMD64_LAYER));
    assert!(!blob_exists(&one, MULTI));
    // Several: the index as it is, with only those children.
    let two = tmp.path().join("two");
    ocistow()
        .args([
            "copy",
            &format!("{}:multi", s(&src)),
            &s(&two),
            "--platform",
            "linux/arm64",
            "--platform",
            "linux/amd64",
        ])
        .assert()
        .success();
    assert_eq!(resolve(&format!("{}:multi", s(&two))), MULTI);
    assert!(blob_exists(&two, ARM64) && blob_exists(&two, AMD64));
    // A platform the index does not have.
    let out = ocistow()
        .args([
            "copy",
            &format!("{}:multi", s(&src)),
            &s(&tmp.path().join("none")),
            "--platform",
            "linux/s390x",
        ])
        .assert()
        .code(3);
    assert!(stderr_of(&out).contains("linux/s390x"));
    assert!(!tmp.path().join("none").exists());
}

#[test]
fn copy_refuses_a_corrupt_source_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_fixture("oras-multiplatform", &tmp.path().join("src"));
    let path = src
        .join("blobs/sha256")
        .join(AMD64_LAYER.trim_start_matches("sha256:"));
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    // 0644: the hard-link path (link, hash, refuse); 0666: the copy path.
    for mode in [0o644, 0o666] {
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        let dst = tmp.path().join(format!("dst-{mode:o}"));
        ocistow().args(["init", &s(&dst)]).assert().success();
        let out = ocistow()
            .args(["copy", &format!("{}:linux-amd64", s(&src)), &s(&dst)])
            .assert()
            .code(5);
        assert!(stderr_of(&out).contains(AMD64_LAYER), "{}", stderr_of(&out));
        assert!(!blob_exists(&dst, AMD64_LAYER));
        assert!(stdout_of(&["tags", &s(&dst)]).trim().is_empty());
        let ingest: Vec<_> = fs::read_dir(dst.join("ingest"))
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(ingest.is_empty(), "{ingest:?}");
        assert_eq!(
            fs::metadata(&path).unwrap().nlink(),
            1,
            "no link to the corrupt blob is left"
        );
    }

    // A missing blob: named, and the destination is not even created.
    fs::remove_file(&path).unwrap();
    let fresh = tmp.path().join("fresh");
    let out = ocistow()
        .args(["copy", &format!("{}:linux-amd64", s(&src)), &s(&fresh)])
        .assert()
        .code(3);
    assert!(stderr_of(&out).contains(AMD64_LAYER), "{}", stderr_of(&out));
    assert!(!fresh.exists());
}

/// Referrer records of other tools (regctl's fallback tags, olareg's responses) arrive intact in
/// a new layout, and are re-recorded in the convention of a layout that uses one consistently.
#[test]
fn foreign_referrer_records_are_kept_or_rerecorded() {
    let tmp = tempfile::tempdir().unwrap();
    for (fixture, mode) in [
        ("regctl-referrers", "tag"),
        ("olareg-referrers", "response"),
    ] {
        let original = copy_fixture(fixture, &tmp.path().join(format!("{fixture}-src")));
        let expected = graph(&format!("{}:v1", s(&original)), None);
        assert!(count_referrers(&expected) >= 2, "{fixture}: {expected}");
        let file = write(
            &tmp.path().join(format!("{fixture}.tar")),
            &tar_of_dir(&fixture_dir(fixture).join("layout")),
        );
        // A new layout: the records come as they are. (olareg leaves superseded response
        // blobs that nothing references: import refuses them unless told to skip them.)
        let fresh = tmp.path().join(format!("{fixture}-fresh"));
        ocistow()
            .args(["import", "--skip-unreferenced", &s(&file), &s(&fresh)])
            .assert()
            .success();
        assert_eq!(
            graph(&format!("{}:v1", s(&fresh)), None),
            expected,
            "{fixture}"
        );
        let status = status_json(&fresh);
        assert_eq!(status["mode"], mode, "{fixture}: {status}");
        check_layout(&fresh);
        // A layout that records subject annotations: re-recorded that way.
        let annotated = tmp.path().join(format!("{fixture}-annotated"));
        ocistow().args(["init", &s(&annotated)]).assert().success();
        let other = write(&tmp.path().join("other.txt"), b"other\n");
        let note = write(&tmp.path().join("note.txt"), b"note\n");
        stdout_of(&["push", &format!("{}:other", s(&annotated)), &s(&other)]);
        stdout_of(&[
            "attach",
            &format!("{}:other", s(&annotated)),
            &s(&note),
            "--artifact-type",
            "application/vnd.example.note",
        ]);
        ocistow()
            .args(["import", "--skip-unreferenced", &s(&file), &s(&annotated)])
            .assert()
            .success();
        assert_eq!(
            graph(&format!("{}:v1", s(&annotated)), None),
            expected,
            "{fixture}"
        );
        let status = status_json(&annotated);
        assert_eq!(status["mode"], "annotation", "{fixture}: {status}");
        assert!(
            status["issues"].as_array().unwrap().is_empty(),
            "{fixture}: {status}"
        );
    }
}
