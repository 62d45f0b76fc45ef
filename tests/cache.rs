//! The facts cache (`.ocistow.facts`): a damaged or stale cache changes no answer. Each test
//! compares what the commands say with the cache in its state against what they say with no
//! cache at all (the cold answer, the oracle), on the same layout.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use ocistow_store::referrers::{FACTS_FILE, ScanOptions};
use ocistow_store::{Digest, Layout};

use crate::common::{
    blob_path, copy_tree, have_tool, index_json, layout_fixtures, ok, run, s, tagged,
};

/// A layout with a subject `v1`, three referrers of it (one with annotations) and a referrer
/// of a referrer, recorded as subject annotations; one referrer more in a fallback tag.
fn layout(tmp: &Path) -> PathBuf {
    let dir = tmp.join("layout");
    let file = tmp.join("a.txt");
    fs::write(&file, "payload\n").unwrap();
    ok(&["init", &s(&dir)]);
    ok(&["push", &tagged(&dir, "v1"), &s(&file)]);
    for (i, at) in [
        "application/vnd.example.sbom",
        "application/vnd.example.sig",
    ]
    .iter()
    .enumerate()
    {
        ok(&[
            "attach",
            &tagged(&dir, "v1"),
            &s(&file),
            "--artifact-type",
            at,
            "-a",
            &format!("n={i}"),
            "-a",
            "z=last",
        ]);
    }
    let sig = referrers(&dir)[1].clone();
    ok(&[
        "attach",
        &format!("{}@{sig}", dir.display()),
        &s(&file),
        "--artifact-type",
        "application/vnd.example.countersig",
    ]);
    ok(&[
        "attach",
        &tagged(&dir, "v1"),
        &s(&file),
        "--artifact-type",
        "application/vnd.example.scan",
        "--referrers-mode",
        "tag",
    ]);
    dir
}

/// The direct referrers of `v1`, as discover lists them.
fn referrers(dir: &Path) -> Vec<String> {
    crate::common::referrer_digests(&tagged(dir, "v1"))
}

/// What the reading commands say: discover (all depths), referrers status (deep), and
/// what a dry-run gc would remove.
fn answers(dir: &Path) -> Vec<(i32, String)> {
    [
        vec!["--format", "json", "discover", &tagged(dir, "v1")],
        vec!["--format", "json", "referrers", "status", &s(dir)],
        vec!["--format", "json", "gc", "--dry-run", &s(dir)],
        vec!["--format", "json", "fsck", &s(dir)],
    ]
    .iter()
    .map(|args| {
        let out = run(args);
        (out.code, out.stdout)
    })
    .collect()
}

/// The answers with no cache (which that run then writes).
fn cold_answers(dir: &Path) -> Vec<(i32, String)> {
    let _ = fs::remove_file(dir.join(FACTS_FILE));
    answers(dir)
}

fn cache(dir: &Path) -> Vec<u8> {
    fs::read(dir.join(FACTS_FILE)).expect("a scan writes the facts cache")
}

#[test]
fn a_damaged_cache_changes_no_answer_and_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    let cold = cold_answers(&dir);
    let good = cache(&dir);
    assert!(good.len() > 100, "the cache holds records");
    let mode = fs::metadata(dir.join(FACTS_FILE)).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o644,
        "readable by whoever reads the layout"
    );
    assert_eq!(answers(&dir), cold, "with the cache it wrote");
    let mut flipped = good.clone();
    // A byte inside a record (a subject digest or an annotation): the checksum catches it.
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("last byte missing", good[..good.len() - 1].to_vec()),
        ("garbage", vec![0xa5; good.len()]),
        ("one byte flipped", flipped),
        ("another version", {
            let mut v = good.clone();
            v[14] = 9;
            v
        }),
        ("trailing bytes", [good.as_slice(), b"x"].concat()),
    ];
    for (what, bytes) in damages {
        fs::write(dir.join(FACTS_FILE), &bytes).unwrap();
        assert_eq!(answers(&dir), cold, "cache {what}");
        // The scan that found it damaged wrote it again, with the same records.
        assert_eq!(cache(&dir), good, "cache {what} rebuilt");
    }
    // A directory where the cache would be: no answer changes, nothing panics.
    fs::remove_file(dir.join(FACTS_FILE)).unwrap();
    fs::create_dir(dir.join(FACTS_FILE)).unwrap();
    assert_eq!(answers(&dir)[..2], cold[..2], "cache path is a directory");
}

#[test]
fn a_checksummed_cache_with_digests_that_do_not_parse_changes_no_answer() {
    // Records read in place are checked when used: a subject (or a record's own name) that is
    // no digest, in a file whose checksum holds, makes its blobs be read instead.
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    let cold = cold_answers(&dir);
    let good = cache(&dir);
    let subject = run(&["resolve", &tagged(&dir, "v1")]).stdout;
    let subject = subject.trim().as_bytes();
    assert!(subject.starts_with(b"sha256:"), "{subject:?}");
    let mut forged = good[..good.len() - 4].to_vec();
    let mut replaced = 0;
    let mut i = 0;
    while let Some(at) = forged[i..]
        .windows(subject.len())
        .position(|w| w == subject)
    {
        // Upper-case hex is not a digest ocistow accepts.
        forged[i + at + 7] = b'Z';
        replaced += 1;
        i += at + subject.len();
    }
    assert!(
        replaced >= 3,
        "the subject is named by its referrers' records"
    );
    let mut crc = flate2::Crc::new();
    crc.update(&forged);
    forged.extend_from_slice(&crc.sum().to_le_bytes());
    fs::write(dir.join(FACTS_FILE), &forged).unwrap();
    assert_eq!(answers(&dir), cold, "with digests that do not parse");
}

/// A change to a layout, made by a test.
type Change<'a> = Box<dyn Fn() + 'a>;

#[test]
fn a_stale_cache_changes_no_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    let file = tmp.path().join("b.txt");
    fs::write(&file, "more\n").unwrap();
    answers(&dir);
    let first = referrers(&dir)[0].clone();
    // Each change is made with the cache the previous answers left, then the answers with
    // that cache are compared with the answers without one.
    let changes: Vec<(&str, Change)> = vec![
        (
            "a referrer added",
            Box::new(|| {
                ok(&[
                    "attach",
                    &tagged(&dir, "v1"),
                    &s(&file),
                    "--artifact-type",
                    "application/vnd.example.new",
                ]);
            }),
        ),
        (
            "a referrer's blob replaced by other bytes of another size",
            Box::new(|| {
                let path = blob_path(&dir, &first);
                let mut bytes = fs::read(&path).unwrap();
                bytes.extend_from_slice(b"  ");
                fs::write(&path, bytes).unwrap();
            }),
        ),
        (
            "a referrer's blob deleted",
            Box::new(|| fs::remove_file(blob_path(&dir, &first)).unwrap()),
        ),
        (
            "a referrer's entry removed",
            Box::new(|| {
                let mut index = index_json(&dir);
                let list = index["manifests"].as_array_mut().unwrap();
                let sig = referrers(&dir).into_iter().last().unwrap();
                list.retain(|e| e["digest"] != sig.as_str());
                fs::write(dir.join("index.json"), index.to_string()).unwrap();
            }),
        ),
        (
            "a referrer's blob swapped for a link to another blob",
            Box::new(|| {
                let r = referrers(&dir);
                let path = blob_path(&dir, &r[0]);
                fs::remove_file(&path).unwrap();
                std::os::unix::fs::symlink(blob_path(&dir, &r[1]), &path).unwrap();
            }),
        ),
    ];
    for (what, change) in changes {
        answers(&dir);
        assert!(dir.join(FACTS_FILE).exists());
        change();
        let warm = answers(&dir);
        assert_eq!(warm, cold_answers(&dir), "{what}");
    }
}

#[test]
fn convert_with_a_stale_cache_writes_what_it_writes_without_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    answers(&dir);
    // Stale: a referrer gone, the cache still has its record.
    let gone = referrers(&dir)[0].clone();
    fs::remove_file(blob_path(&dir, &gone)).unwrap();
    let warm = tmp.path().join("warm");
    let cold = tmp.path().join("cold");
    copy_tree(&dir, &warm);
    copy_tree(&dir, &cold);
    fs::remove_file(cold.join(FACTS_FILE)).unwrap();
    for to in ["tag", "response", "annotation"] {
        let a = run(&["referrers", "convert", &s(&warm), "--to", to]);
        let b = run(&["referrers", "convert", &s(&cold), "--to", to]);
        assert_eq!((a.code, a.stdout), (b.code, b.stdout), "convert --to {to}");
        assert_eq!(index_json(&warm), index_json(&cold), "convert --to {to}");
    }
}

#[test]
fn fixtures_answer_the_same_warm_and_cold() {
    for name in layout_fixtures() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = crate::common::copy_fixture(name, &tmp.path().join("layout"));
        let status = |d: &Path| run(&["--format", "json", "referrers", "status", &s(d)]).stdout;
        let cold = status(&dir);
        assert_eq!(status(&dir), cold, "{name}");
    }
}

#[test]
fn the_cache_stays_inside_ocistow() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    answers(&dir);
    let good = cache(&dir);
    // fsck does not note it as a leftover, gc does not remove it.
    // (This layout mixes two record conventions, so fsck reports them and exits 1.)
    let fsck = run(&["--format", "json", "fsck", &s(&dir)]);
    assert!(fsck.stdout.contains("problems"), "{}", fsck.stdout);
    assert!(!fsck.stdout.contains(FACTS_FILE), "{}", fsck.stdout);
    // A cache write an interrupted ocistow left is named for what it is.
    fs::write(dir.join(".ocistow-facts-x1.tmp"), b"torn").unwrap();
    let fsck = run(&["fsck", &s(&dir)]);
    assert!(
        fsck.stdout.contains(".ocistow-facts-x1.tmp") && fsck.stdout.contains("facts cache"),
        "{}",
        fsck.stdout
    );
    ok(&["gc", &s(&dir)]);
    assert!(dir.join(FACTS_FILE).exists(), "gc kept the cache");
    // export does not carry it; import of an archive that has one does not take it.
    let tar = tmp.path().join("out.tar");
    ok(&["export", &tagged(&dir, "v1"), "--referrers", "-o", &s(&tar)]);
    let list = |t: &Path| {
        let o = Command::new("tar").arg("tf").arg(t).output().unwrap();
        assert!(o.status.success());
        String::from_utf8(o.stdout).unwrap()
    };
    let names = list(&tar);
    assert!(
        names.contains("index.json") && !names.contains("facts"),
        "{names}"
    );
    // The same archive with a (damaged) cache member, appended by tar itself.
    let with_cache = tmp.path().join("with-cache.tar");
    fs::copy(&tar, &with_cache).unwrap();
    let src = tmp.path().join("cache-src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join(FACTS_FILE), b"garbage").unwrap();
    let status = Command::new("tar")
        .arg("rf")
        .arg(&with_cache)
        .arg("-C")
        .arg(&src)
        .arg(FACTS_FILE)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(list(&with_cache).contains(FACTS_FILE));
    let dst = tmp.path().join("imported");
    ok(&["init", &s(&dst)]);
    ok(&["import", &s(&with_cache), &s(&dst)]);
    assert!(
        !dst.join(FACTS_FILE).exists(),
        "import took the archive's cache"
    );
    assert_eq!(fs::read(dir.join(FACTS_FILE)).unwrap(), good);
}

#[test]
fn the_library_can_turn_it_off() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    let _ = fs::remove_file(dir.join(FACTS_FILE));
    let layout = Layout::open(&dir).unwrap();
    let off = layout
        .scan_referrers(ScanOptions::default().facts_cache(false))
        .unwrap();
    assert!(!dir.join(FACTS_FILE).exists(), "off: no cache written");
    let on = layout.scan_referrers(ScanOptions::default()).unwrap();
    assert!(dir.join(FACTS_FILE).exists(), "on (the default): written");
    let digests = |g: &ocistow_store::referrers::Graph| -> Vec<Digest> {
        g.referrers().iter().map(|r| r.digest().clone()).collect()
    };
    assert_eq!(digests(&off), digests(&on));
    assert_eq!(
        digests(&on),
        digests(&layout.scan_referrers(ScanOptions::default()).unwrap())
    );
}

#[test]
fn skopeo_and_umoci_accept_a_layout_with_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = layout(tmp.path());
    answers(&dir);
    assert!(dir.join(FACTS_FILE).exists());
    if have_tool("skopeo") {
        let o = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:v1", dir.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    if have_tool("umoci") {
        let o = Command::new("umoci")
            .args(["ls", "--layout"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("v1"));
    }
}
