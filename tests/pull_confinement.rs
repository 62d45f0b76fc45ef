//! `pull` confinement corpus: hostile layers, built here, must be refused with nothing written
//! in the output directory and nothing created outside it; hostile blobs (a `/dev/zero`
//! symlink, a fifo) must fail quickly, bounded by a timeout in the test.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{blob_path, ocistow};
use crate::hostile_tar::{Member, gzip, tar};
use ocistow_store::{Descriptor, Layout};
use serde_json::json;

const USAGE: i32 = 2;
/// Long enough for a slow CI machine, short enough that a hang fails the test.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A layer of the artifact under test.
enum Layer {
    /// A file pulled as `title`.
    File { title: String, bytes: Vec<u8> },
    /// A tar+gzip layer pulled by unpacking it (as oras pushes directories).
    Unpack { title: String, tar: Vec<u8> },
}

/// A layout holding one artifact tagged `h` with these layers; returns the layer descriptors.
fn layout_with(dir: &Path, layers: &[Layer]) -> Vec<Descriptor> {
    let layout = Layout::init(dir).unwrap();
    let mut descs = Vec::new();
    for layer in layers {
        let (bytes, mt, title, unpack) = match layer {
            Layer::File { title, bytes } => (bytes.clone(), "text/plain", title, false),
            Layer::Unpack { title, tar } => (
                gzip(tar),
                "application/vnd.oci.image.layer.v1.tar+gzip",
                title,
                true,
            ),
        };
        let stored = layout.write_blob_bytes(&bytes).unwrap();
        let mut d = Descriptor::new(mt, stored.digest().clone(), stored.size());
        d.set_annotation("org.opencontainers.image.title", title);
        if unpack {
            d.set_annotation("io.deis.oras.content.unpack", "true");
        }
        descs.push(d);
    }
    let config = layout.write_blob_bytes(b"{}").unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.hostile",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": config.digest().as_str(), "size": 2},
        "layers": descs.iter().map(|d| serde_json::Value::Object(d.fields().clone())).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let stored = layout
        .put_manifest(
            &bytes,
            Some("application/vnd.oci.image.manifest.v1+json"),
            false,
        )
        .unwrap();
    let entry = Descriptor::new(
        "application/vnd.oci.image.manifest.v1+json",
        stored.digest().clone(),
        stored.size(),
    );
    layout.add_entry(&entry, &["h".to_string()]).unwrap();
    descs
}

/// Every path under `dir` with what it is: file contents, a directory, or a symlink's target
/// (never followed: the tree holds symlinks to directories outside it).
fn snapshot(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            let what = if kind.is_symlink() {
                format!("-> {}", fs::read_link(&path).unwrap().display())
            } else if kind.is_dir() {
                todo.push(path.clone());
                "dir".to_string()
            } else {
                String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned()
            };
            found.push((path, what));
        }
    }
    found.sort();
    found
}

/// The places a pull could reach: `work/out` (the output directory, prepared by `setup`) and
/// `work/victim` (outside it, and a symlink target in some cases).
struct Scene {
    _tmp: tempfile::TempDir,
    layout: PathBuf,
    work: PathBuf,
    out: PathBuf,
    victim: PathBuf,
    layers: Vec<Descriptor>,
}

fn scene(layers: &[Layer], setup: impl FnOnce(&Path, &Path)) -> Scene {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let descs = layout_with(&layout, layers);
    let work = tmp.path().join("work");
    let out = work.join("out");
    let victim = work.join("victim");
    fs::create_dir_all(&out).unwrap();
    fs::create_dir_all(&victim).unwrap();
    setup(&out, &victim);
    Scene {
        _tmp: tmp,
        layout,
        work,
        out,
        victim,
        layers: descs,
    }
}

fn pull(s: &Scene) -> (Option<i32>, String) {
    let out = ocistow()
        .arg("pull")
        .arg(format!("{}:h", s.layout.display()))
        .arg("-o")
        .arg(&s.out)
        .timeout(TIMEOUT)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Pull is refused (`code`, naming `needle`) and neither the output directory nor anything
/// beside it changed.
fn assert_refused(s: &Scene, code: i32, needle: &str) {
    let before = snapshot(&s.work);
    let (got, stderr) = pull(s);
    assert_eq!(got, Some(code), "stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "stderr should name {needle:?}: {stderr}"
    );
    assert_eq!(before, snapshot(&s.work), "pull changed the work directory");
    assert!(fs::read_dir(&s.victim).unwrap().next().is_none());
}

fn unpack(members: &[Member<'_>]) -> Vec<Layer> {
    vec![Layer::Unpack {
        title: "t".into(),
        tar: tar(members),
    }]
}

#[test]
fn a_benign_layer_unpacks_with_its_symlinks() {
    let s = scene(
        &unpack(&[
            Member::Dir("t/"),
            Member::File("t/a.txt", b"hello"),
            Member::Dir("t/sub/"),
            Member::Symlink("t/sub/up", "../a.txt"),
        ]),
        |_, _| {},
    );
    let (code, stderr) = pull(&s);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(fs::read(s.out.join("t/sub/up")).unwrap(), b"hello");
    assert_eq!(
        fs::read_link(s.out.join("t/sub/up")).unwrap(),
        Path::new("../a.txt")
    );
}

#[test]
fn no_directory_is_created_through_a_symlink_in_the_output_directory() {
    // A plain file titled through the link, and a layer unpacking through it.
    for layers in [
        vec![Layer::File {
            title: "link/new/deep.txt".into(),
            bytes: b"x".to_vec(),
        }],
        unpack(&[Member::Dir("link/made/"), Member::File("link/made/f", b"x")]),
    ] {
        let s = scene(&layers, |out, victim| {
            symlink(victim, out.join("link")).unwrap();
        });
        assert_refused(&s, USAGE, "link");
    }
}

#[test]
fn a_symlink_to_dot_then_a_symlink_to_dotdot_through_it_is_refused() {
    let s = scene(
        &unpack(&[
            Member::File("ok.txt", b"written first"),
            Member::Symlink("a", "."),
            Member::Symlink("a/b", ".."),
            Member::File("b/victim/escaped.txt", b"x"),
        ]),
        |_, _| {},
    );
    assert_refused(&s, USAGE, "a/b");
    assert!(fs::symlink_metadata(s.out.join("b")).is_err());
}

#[test]
fn a_symlink_climbing_out_through_another_symlink_is_refused() {
    // Lexically `a/..` is the root; through `a -> .` it is the root's parent.
    let s = scene(
        &unpack(&[
            Member::File("ok.txt", b"written first"),
            Member::Symlink("a", "."),
            Member::Symlink("b", "a/.."),
        ]),
        |_, _| {},
    );
    assert_refused(&s, USAGE, "b");
    assert!(fs::symlink_metadata(s.out.join("b")).is_err());
}

#[test]
fn absolute_names_are_refused() {
    let outside = scene(&[], |_, _| {});
    let abs = outside.victim.join("abs.txt");
    let name = abs.display().to_string();
    let s = scene(
        &unpack(&[Member::File("ok.txt", b"x"), Member::File(&name, b"x")]),
        |_, _| {},
    );
    assert_refused(&s, USAGE, "absolute");
    assert!(!abs.exists());
}

#[test]
fn dotdot_names_are_refused() {
    let s = scene(
        &unpack(&[
            Member::File("ok.txt", b"x"),
            Member::File("../victim/dotdot.txt", b"x"),
        ]),
        |_, _| {},
    );
    assert_refused(&s, USAGE, "..");
}

#[test]
fn hard_links_are_refused() {
    let s = scene(
        &unpack(&[
            Member::File("ok.txt", b"x"),
            Member::HardLink("h", "/etc/passwd"),
        ]),
        |_, _| {},
    );
    assert_refused(&s, USAGE, "hard link");
}

#[test]
fn devices_and_fifos_are_refused() {
    for (flag, what) in [(b'3', "character device"), (b'6', "fifo")] {
        let s = scene(
            &unpack(&[
                Member::File("ok.txt", b"x"),
                Member::Special("special", flag),
            ]),
            |_, _| {},
        );
        assert_refused(&s, USAGE, what);
    }
}

#[test]
fn no_file_is_written_through_a_symlink_out() {
    // A link the layer plants (absolute, or relative and leaving), then a file through it.
    let outside = scene(&[], |_, _| {});
    let victim = outside.victim.display().to_string();
    for target in [victim.as_str(), "../victim", "d/../../victim"] {
        let s = scene(
            &unpack(&[
                Member::File("ok.txt", b"x"),
                Member::Dir("d/"),
                Member::Symlink("s", target),
                Member::File("s/pwned.txt", b"x"),
            ]),
            |_, _| {},
        );
        assert_refused(&s, USAGE, "s");
        assert!(fs::read_dir(&outside.victim).unwrap().next().is_none());
    }
    // A link already in the output directory, then a file through it.
    let s = scene(
        &unpack(&[
            Member::File("ok.txt", b"x"),
            Member::File("s/pwned.txt", b"x"),
        ]),
        |out, victim| symlink(victim, out.join("s")).unwrap(),
    );
    assert_refused(&s, USAGE, "s");
    // A file the layer writes, then an entry under it.
    let s = scene(
        &unpack(&[Member::File("f", b"x"), Member::File("f/under", b"x")]),
        |_, _| {},
    );
    assert_refused(&s, USAGE, "f/under");
}

/// Replaces the blob of the first layer by `make(path)`.
fn hostile_blob(unpack_it: bool, make: impl Fn(&Path)) -> Scene {
    let layers = if unpack_it {
        unpack(&[Member::File("ok.txt", b"x")])
    } else {
        vec![Layer::File {
            title: "six.txt".into(),
            bytes: b"sixby\n".to_vec(),
        }]
    };
    let s = scene(&layers, |_, _| {});
    let blob = blob_path(&s.layout, s.layers[0].digest().as_str());
    fs::remove_file(&blob).unwrap();
    make(&blob);
    s
}

#[test]
fn a_layer_that_is_a_symlink_to_dev_zero_is_refused_without_reading_it() {
    for unpack_it in [false, true] {
        let s = hostile_blob(unpack_it, |blob| symlink("/dev/zero", blob).unwrap());
        let before = snapshot(&s.work);
        let started = std::time::Instant::now();
        let (code, stderr) = pull(&s);
        assert!(code.is_some_and(|c| c != 0), "{code:?} {stderr}");
        assert!(started.elapsed() < TIMEOUT, "pull read /dev/zero");
        assert_eq!(before, snapshot(&s.work), "pull wrote {stderr}");
    }
}

#[test]
fn a_layer_that_is_a_fifo_fails_instead_of_hanging() {
    for unpack_it in [false, true] {
        let s = hostile_blob(unpack_it, |blob| {
            let ok = std::process::Command::new("mkfifo")
                .arg(blob)
                .status()
                .unwrap()
                .success();
            assert!(ok, "mkfifo failed");
        });
        let before = snapshot(&s.work);
        // `timeout` in pull() turns a hang into a failed test, not a stuck one.
        let (code, stderr) = pull(&s);
        assert!(code.is_some_and(|c| c != 0), "{code:?} {stderr}");
        assert!(stderr.contains("regular file"), "{stderr}");
        assert_eq!(before, snapshot(&s.work));
    }
}
