//! What oras users expect of the command line (issue 12): one JSON style, oras's habits
//! (aliases, `--annotation-file`, several tags, `pull` into `.`), progress for directory pushes,
//! formats taken from file names, layouts created on push, and one style for sizes and counts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::rc::Rc;

use ocistow_store::Layout;
use ocistow_store::artifact::{self, FileSpec, PushRequest};
use ocistow_store::layout::Progress;

use crate::common::{Out, cmd, exec, have_tool, ocistow_path, snapshot};

/// One call a push made to its progress factory: the name, the total, and the bytes advanced.
type Call = (String, u64, Rc<RefCell<u64>>);

/// Every call a push made to its progress factory.
#[derive(Default)]
struct Recorded(RefCell<Vec<Call>>);

struct Counter(Rc<RefCell<u64>>);

impl Progress for Counter {
    fn advance(&self, bytes: u64) {
        *self.0.borrow_mut() += bytes;
    }
}

#[test]
fn a_directory_push_reports_progress_over_the_bytes_of_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("site");
    fs::create_dir_all(tree.join("a/b")).unwrap();
    fs::write(tree.join("index.html"), vec![b'x'; 70_000]).unwrap();
    fs::write(tree.join("a/b/data.bin"), vec![7u8; 200_001]).unwrap();
    fs::write(tree.join("a/empty"), b"").unwrap();
    let layout = Layout::init(tmp.path().join("layout")).unwrap();
    let recorded = Recorded::default();
    let factory = |name: &str, total: u64| -> Box<dyn Progress> {
        let done = Rc::new(RefCell::new(0));
        recorded
            .0
            .borrow_mut()
            .push((name.to_string(), total, done.clone()));
        Box::new(Counter(done))
    };
    let req = PushRequest::new(vec![FileSpec::new(tree.clone())]).created(Some(0));
    let _uncommitted = artifact::push(&layout, &req, &factory).unwrap();
    let calls = recorded.0.borrow();
    let dir_bar = calls
        .iter()
        .find(|(name, _, _)| name.ends_with("site"))
        .unwrap_or_else(|| panic!("no progress for the directory; calls: {:?}", calls.len()));
    assert_eq!(
        dir_bar.1, 270_001,
        "the total is the bytes of the tree's files"
    );
    assert_eq!(*dir_bar.2.borrow(), 270_001, "every byte read is reported");
}

#[test]
fn layer_and_config_annotations_land_on_their_descriptors() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cake.txt");
    fs::write(&file, "cream\n").unwrap();
    let layout = Layout::init(tmp.path().join("layout")).unwrap();
    let req = PushRequest::new(vec![FileSpec::new(file.clone())])
        .layer_annotations(BTreeMap::from([(
            file.clone(),
            BTreeMap::from([("fun".to_string(), "more cream".to_string())]),
        )]))
        .config_annotations(BTreeMap::from([("hello".to_string(), "world".to_string())]))
        .created(Some(0));
    let pushed = artifact::push(&layout, &req, &artifact::no_progress).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&pushed.manifest).unwrap();
    assert_eq!(m["layers"][0]["annotations"]["fun"], "more cream");
    assert_eq!(
        m["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "cake.txt"
    );
    assert_eq!(m["config"]["annotations"]["hello"], "world");

    let stray = req.layer_annotations(BTreeMap::from([(tmp.path().join("nope"), BTreeMap::new())]));
    let before = crate::common::snapshot(layout.root());
    let err = artifact::push(&layout, &stray, &artifact::no_progress)
        .err()
        .unwrap();
    assert!(err.to_string().contains("not pushed"), "{err}");
    assert_eq!(before, crate::common::snapshot(layout.root()));
}

#[test]
fn library_reports_serialize_with_camel_case_keys() {
    use ocistow_store::layout::NoProgress;
    use ocistow_store::maintenance::{FsckOptions, GcOptions};
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.txt");
    fs::write(&file, "a\n").unwrap();
    let layout = Layout::init(tmp.path().join("layout")).unwrap();
    // Uncommitted: gc has a blob to report, so the report's lists are not empty.
    let req = PushRequest::new(vec![FileSpec::new(file)]).created(Some(0));
    drop(artifact::push(&layout, &req, &artifact::no_progress).unwrap());
    fs::write(layout.root().join("blobs/sha256/stray"), "x").unwrap();
    let fsck = layout.fsck(&FsckOptions::default(), &NoProgress).unwrap();
    let gc = layout
        .gc(&GcOptions::default().grace(std::time::Duration::ZERO))
        .unwrap();
    assert!(!gc.blobs_removed.is_empty(), "{gc:?}");
    for (name, v) in [
        ("FsckReport", serde_json::to_value(&fsck).unwrap()),
        ("GcReport", serde_json::to_value(&gc).unwrap()),
    ] {
        let mut bad = Vec::new();
        non_camel_keys(&v, "", &mut bad);
        assert!(
            bad.is_empty(),
            "{name}: keys not in camelCase: {bad:?}\n{v:#}"
        );
    }
}

// ---- the command line -----------------------------------------------------------------------

/// `ocistow ARGS` in `cwd` with `SOURCE_DATE_EPOCH=0`.
fn run_in(cwd: &Path, args: &[&str]) -> Out {
    let mut c = cmd();
    c.current_dir(cwd).env("SOURCE_DATE_EPOCH", "0").args(args);
    exec(c, &args.join(" "))
}

/// As [`run_in`], requiring exit 0.
fn ok_in(cwd: &Path, args: &[&str]) -> Out {
    let out = run_in(cwd, args);
    assert_eq!(
        out.code,
        0,
        "`ocistow {}`:\n{}{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out
}

/// A work directory with `hello.txt`, `notes.md` and a layout `layout` holding them pushed
/// as `layout:v1`, with a referrer attached.
fn workspace() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("hello.txt"), "hello\n").unwrap();
    fs::write(tmp.path().join("notes.md"), "# notes\n").unwrap();
    ok_in(
        tmp.path(),
        &["push", "layout:v1", "hello.txt:text/plain", "notes.md"],
    );
    ok_in(
        tmp.path(),
        &[
            "attach",
            "layout:v1",
            "notes.md",
            "--artifact-type",
            "application/vnd.example.sbom",
        ],
    );
    tmp
}

/// Keys whose values are maps of data (annotation keys, convention names), not of fields.
const DATA_MAPS: [&str; 3] = ["annotations", "conventions", "platform"];

/// Every object key of `v` outside [`DATA_MAPS`] that is not camelCase, with its path.
fn non_camel_keys(v: &serde_json::Value, at: &str, bad: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let camel = k.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && k.chars().all(|c| c.is_ascii_alphanumeric());
                if !camel {
                    bad.push(format!("{at}.{k}"));
                }
                if !DATA_MAPS.contains(&k.as_str()) {
                    non_camel_keys(v, &format!("{at}.{k}"), bad);
                }
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                non_camel_keys(v, &format!("{at}[{i}]"), bad);
            }
        }
        _ => {}
    }
}

#[test]
fn every_command_that_prints_data_prints_pretty_camel_case_json() {
    let tmp = workspace();
    let w = tmp.path();
    let digest = ok_in(w, &["resolve", "layout:v1"])
        .stdout
        .trim()
        .to_string();
    let config = {
        let m: serde_json::Value =
            serde_json::from_str(&ok_in(w, &["manifest", "get", "layout:v1"]).stdout).unwrap();
        m["config"]["digest"].as_str().unwrap().to_string()
    };
    let manifest = w.join("m.json");
    fs::write(
        &manifest,
        ok_in(w, &["manifest", "get", "layout:v1"]).stdout,
    )
    .unwrap();
    let commands: Vec<Vec<String>> = [
        vec!["push", "layout:v2", "hello.txt"],
        vec![
            "attach",
            "layout:v1",
            "hello.txt",
            "--artifact-type",
            "application/vnd.example.sig",
        ],
        vec!["pull", "layout:v1", "-o", "out"],
        vec!["tags", "layout"],
        vec!["ls", "layout"],
        vec!["resolve", "layout:v1"],
        vec!["discover", "layout:v1"],
        vec!["referrers", "status", "layout"],
        vec!["referrers", "convert", "layout", "--to", "tag", "--dry-run"],
        vec!["copy", "layout:v1", "copied:v1", "-r"],
        vec!["export", "layout:v1", "-o", "v1.tar"],
        vec!["import", "v1.tar", "imported"],
        vec!["gc", "layout", "--dry-run"],
        vec!["normalize", "layout", "--dry-run"],
        vec!["fsck", "layout"],
        vec!["manifest", "put", "layout:again", "m.json"],
        vec!["blob", "put", "layout", "hello.txt"],
        vec!["blob", "exists", &format!("layout@{config}")],
    ]
    .iter()
    .map(|c| c.iter().map(ToString::to_string).collect())
    .collect();
    assert!(!digest.is_empty());
    for args in &commands {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend(["--format", "json"]);
        let out = ok_in(w, &all);
        let v: serde_json::Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{}", out.stdout));
        assert_eq!(
            out.stdout,
            format!("{}\n", serde_json::to_string_pretty(&v).unwrap()),
            "{args:?}: not pretty-printed"
        );
        let mut bad = Vec::new();
        non_camel_keys(&v, "", &mut bad);
        assert!(bad.is_empty(), "{args:?}: keys not in camelCase: {bad:?}");
    }
}

#[test]
fn json_is_refused_where_a_command_prints_no_data_and_nothing_changes() {
    let tmp = workspace();
    let w = tmp.path();
    let before = snapshot(w);
    let digest = ok_in(w, &["resolve", "layout:v1"])
        .stdout
        .trim()
        .to_string();
    let at_digest = format!("layout@{digest}");
    for args in [
        vec!["init", "fresh"],
        vec!["tag", "layout:v1", "v9"],
        vec!["untag", "layout:v1"],
        vec!["manifest", "get", "layout:v1"],
        vec!["manifest", "delete", "layout:v1", "--with-referrers"],
        vec!["blob", "get", &at_digest],
        vec!["blob", "delete", &at_digest],
        vec!["export", "layout:v1", "-o", "-"],
        vec!["completion", "bash"],
        vec!["man"],
    ] {
        let mut all = args.clone();
        all.extend(["--format", "json"]);
        let out = run_in(w, &all);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
        assert!(
            out.stderr.contains("--format json does not apply"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(before, snapshot(w), "a refused command changed something");
}

#[test]
fn manifest_and_blob_fetch_and_push_are_aliases() {
    let tmp = workspace();
    let w = tmp.path();
    let by_get = ok_in(w, &["manifest", "get", "layout:v1"]).stdout;
    assert_eq!(ok_in(w, &["manifest", "fetch", "layout:v1"]).stdout, by_get);
    fs::write(w.join("m.json"), &by_get).unwrap();
    let pushed = ok_in(w, &["manifest", "push", "layout:copy", "m.json"]).stdout;
    assert_eq!(pushed, ok_in(w, &["resolve", "layout:copy"]).stdout);

    let blob = ok_in(w, &["blob", "push", "layout", "hello.txt"]).stdout;
    let blob = blob.trim();
    let fetched = ok_in(w, &["blob", "fetch", &format!("layout@{blob}")]).stdout;
    assert_eq!(fetched, "hello\n");
}

#[test]
fn an_annotation_file_in_oras_format_annotates_manifest_config_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    fs::write(w.join("cake.txt"), "cream\n").unwrap();
    fs::write(w.join("pie.txt"), "apple\n").unwrap();
    fs::write(
        w.join("annotations.json"),
        r#"{"$manifest": {"foo": "bar"}, "$config": {"hello": "world"}, "cake.txt": {"fun": "more cream"}}"#,
    )
    .unwrap();
    ok_in(
        w,
        &[
            "push",
            "layout:v1",
            "cake.txt",
            "pie.txt:text/plain",
            "--annotation-file",
            "annotations.json",
            "-a",
            "other=1",
        ],
    );
    let m: serde_json::Value =
        serde_json::from_str(&ok_in(w, &["manifest", "get", "layout:v1"]).stdout).unwrap();
    assert_eq!(m["annotations"]["foo"], "bar");
    assert_eq!(m["annotations"]["other"], "1");
    assert_eq!(m["config"]["annotations"]["hello"], "world");
    assert_eq!(m["layers"][0]["annotations"]["fun"], "more cream");
    assert!(m["layers"][1]["annotations"].get("fun").is_none());

    // Mistakes are refused before the layout changes.
    let before = snapshot(w);
    for (content, extra) in [
        (r#"{"nosuch.txt": {"a": "b"}}"#, None),
        (r#"{"$manifest": {"foo": 1}}"#, None),
        (r#"["not", "an", "object"]"#, None),
        (
            r#"{"cake.txt": {"org.opencontainers.image.title": "x"}}"#,
            None,
        ),
        (r#"{"$manifest": {"foo": "bar"}}"#, Some("foo=again")),
    ] {
        fs::write(w.join("bad.json"), content).unwrap();
        let mut args = vec![
            "push",
            "layout:v2",
            "cake.txt",
            "--annotation-file",
            "bad.json",
        ];
        if let Some(a) = extra {
            args.extend(["-a", a]);
        }
        let out = run_in(w, &args);
        assert_eq!(out.code, 2, "{content}: {}", out.stderr);
        let mut now = snapshot(w);
        now.remove(Path::new("bad.json"));
        let mut was = before.clone();
        was.remove(Path::new("bad.json"));
        assert_eq!(was, now, "{content}: the layout changed");
    }
}

#[test]
fn several_tags_at_once_on_push_tag_and_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    fs::write(w.join("a.txt"), "a\n").unwrap();
    let out = ok_in(
        w,
        &["push", "layout:v1,latest", "a.txt", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v["referenceAsTags"],
        serde_json::json!(["layout:v1", "layout:latest"])
    );
    ok_in(w, &["tag", "layout:v1", "1.0,1.0.0", "stable"]);
    ok_in(w, &["copy", "layout:v1", "mirror:x,y"]);
    let tags = |dir: &str| -> serde_json::Value {
        serde_json::from_str(&ok_in(w, &["tags", dir, "--format", "json"]).stdout).unwrap()
    };
    let mut all: Vec<String> = serde_json::from_value(tags("layout")["tags"].clone()).unwrap();
    all.sort();
    assert_eq!(all, ["1.0", "1.0.0", "latest", "stable", "v1"]);
    assert_eq!(tags("mirror"), serde_json::json!({"tags": ["x", "y"]}));
    let digest = ok_in(w, &["resolve", "layout:v1"]).stdout;
    for t in ["latest", "1.0.0", "stable"] {
        assert_eq!(
            ok_in(w, &["resolve", &format!("layout:{t}")]).stdout,
            digest
        );
    }
    for bad in [
        vec!["push", "layout:v2,", "a.txt"],
        vec!["tag", "layout:v1", "a,,b"],
    ] {
        let before = snapshot(w);
        assert_eq!(run_in(w, &bad).code, 2, "{bad:?}");
        assert_eq!(before, snapshot(w), "{bad:?} changed something");
    }
}

#[test]
fn pull_writes_to_the_working_directory_without_o() {
    let tmp = workspace();
    let out_dir = tmp.path().join("here");
    fs::create_dir(&out_dir).unwrap();
    let layout = tmp.path().join("layout");
    ok_in(&out_dir, &["pull", &format!("{}:v1", layout.display())]);
    assert_eq!(
        fs::read_to_string(out_dir.join("hello.txt")).unwrap(),
        "hello\n"
    );
    assert_eq!(
        fs::read_to_string(out_dir.join("notes.md")).unwrap(),
        "# notes\n"
    );
}

#[test]
fn verbose_names_each_file_and_no_tty_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    fs::write(w.join("a.txt"), "a\n").unwrap();
    let quiet = ok_in(w, &["push", "layout:v1", "a.txt", "--no-tty"]);
    assert!(!quiet.stderr.contains("Uploaded"), "{}", quiet.stderr);
    let loud = ok_in(w, &["-v", "push", "layout:v2", "a.txt", "--no-tty"]);
    assert!(
        loud.stderr.contains("Uploaded layer a.txt sha256:") && loud.stderr.contains("(2 B)"),
        "{}",
        loud.stderr
    );
    let pulled = ok_in(w, &["pull", "layout:v2", "-o", "out", "--verbose"]);
    assert!(
        pulled.stderr.contains("Downloaded layer a.txt sha256:"),
        "{}",
        pulled.stderr
    );
    assert_eq!(quiet.stdout, loud.stdout, "-v changes stderr only");
}

/// The compression of a file, from its magic bytes.
fn compression_of(path: &Path) -> &'static str {
    let bytes = fs::read(path).unwrap();
    match bytes.get(..4) {
        Some([0x1f, 0x8b, ..]) => "gzip",
        Some([0x28, 0xb5, 0x2f, 0xfd]) => "zstd",
        _ if bytes.get(257..262) == Some(b"ustar") => "tar",
        _ => "unknown",
    }
}

#[test]
fn export_takes_the_format_from_the_extension_and_refuses_a_contradicting_flag() {
    let tmp = workspace();
    let w = tmp.path();
    for (name, flag, expected) in [
        ("a.tar.zst", None, "zstd"),
        ("a.tzst", Some("--zstd"), "zstd"),
        ("a.tar.gz", None, "gzip"),
        ("a.tgz", Some("--gzip"), "gzip"),
        ("a.tar", None, "tar"),
    ] {
        let mut args = vec!["export", "layout:v1", "-o", name];
        args.extend(flag);
        ok_in(w, &args);
        assert_eq!(compression_of(&w.join(name)), expected, "{name}");
        ok_in(w, &["import", name, &format!("from-{name}")]);
    }
    for (name, flag) in [
        ("b.tar.zst", "--gzip"),
        ("b.tar", "--zstd"),
        ("b.tgz", "--zstd"),
    ] {
        let out = run_in(w, &["export", "layout:v1", "-o", name, flag]);
        assert_eq!(out.code, 2, "{name} {flag}: {}", out.stderr);
        assert!(out.stderr.contains(name), "{}", out.stderr);
        assert!(!w.join(name).exists(), "{name} was written");
    }
}

#[test]
fn push_creates_a_missing_or_empty_layout_and_refuses_anything_else_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    fs::write(w.join("a.txt"), "a\n").unwrap();
    let out = ok_in(w, &["push", "new/deeper:v1", "a.txt"]);
    assert!(out.stderr.contains("layout created"), "{}", out.stderr);
    assert!(w.join("new/deeper/oci-layout").is_file());
    fs::create_dir(w.join("empty")).unwrap();
    ok_in(w, &["push", "empty:v1", "a.txt"]);
    assert_eq!(
        ok_in(w, &["resolve", "empty:v1"]).stdout,
        ok_in(w, &["resolve", "new/deeper:v1"]).stdout
    );

    fs::create_dir(w.join("photos")).unwrap();
    fs::write(w.join("photos/cat.jpg"), "meow").unwrap();
    fs::write(w.join("plain-file"), "x").unwrap();
    let before = snapshot(w);
    let refused = run_in(w, &["push", "photos:v1", "a.txt"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("not empty"), "{}", refused.stderr);
    let refused = run_in(w, &["push", "plain-file:v1", "a.txt"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("a file"), "{}", refused.stderr);
    // A push that fails after the layout was made leaves no layout behind.
    let refused = run_in(w, &["push", "fresh:v1", "missing.txt"]);
    assert_ne!(refused.code, 0);
    let refused = run_in(
        w,
        &["push", "empty2:v1", "a.txt", "--subject", "empty2:nope"],
    );
    assert_ne!(refused.code, 0);
    for args in [
        vec!["attach", "nolayout:v1", "a.txt", "--artifact-type", "a/b"],
        vec!["attach", "photos:v1", "a.txt", "--artifact-type", "a/b"],
    ] {
        let out = run_in(w, &args);
        assert_ne!(out.code, 0, "{args:?}");
        assert!(
            out.stderr.contains("put the subject there first"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(before, snapshot(w), "a refused push changed something");
}

/// Words after a number in `text` (`3 blobs` gives `blobs`), with the number.
fn counted_words(text: &str) -> Vec<(u64, String)> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .filter_map(|w| {
            let n = w[0].trim_start_matches('(').parse::<u64>().ok()?;
            let word: String = w[1].chars().take_while(|c| c.is_alphabetic()).collect();
            Some((n, word))
        })
        .collect()
}

#[test]
fn sizes_are_binary_units_and_one_thing_is_singular_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    fs::write(w.join("one.txt"), vec![b'x'; 3000]).unwrap();
    let mut text = String::new();
    for args in [
        vec!["push", "layout:v1", "one.txt"],
        vec!["export", "layout:v1", "-o", "v1.tar"],
        vec!["import", "v1.tar", "imported"],
        vec!["copy", "layout:v1", "copied:v1", "-r"],
        vec!["untag", "layout:v1"],
        vec!["gc", "layout", "--dry-run", "--grace", "0"],
        vec!["gc", "layout", "--grace", "0"],
        vec!["fsck", "imported"],
        vec!["init", "solo"],
        vec!["blob", "put", "solo", "one.txt"],
        vec!["fsck", "solo"],
        vec!["referrers", "status", "imported"],
        vec!["referrers", "convert", "imported", "--to", "tag"],
        vec!["attach", "copied:v1", "one.txt", "--artifact-type", "a/b"],
        vec!["normalize", "copied", "--to", "tag"],
    ] {
        let out = run_in(w, &args);
        assert!(out.code == 0 || out.code == 1, "{args:?}: {}", out.stderr);
        text.push_str(&out.stdout);
        text.push_str(&out.stderr);
    }
    for (n, word) in counted_words(&text) {
        assert!(
            !(n == 1 && word.ends_with('s') && word != "s"),
            "\"1 {word}\" in:\n{text}"
        );
        assert!(word != "bytes", "raw byte count \"{n} bytes\" in:\n{text}");
        assert!(
            !["kB", "KB", "MB", "GB"].contains(&word.as_str()),
            "decimal unit \"{n} {word}\" in:\n{text}"
        );
    }
    assert!(
        text.contains("KiB"),
        "the 3000-byte file is shown in KiB:\n{text}"
    );
    assert!(text.contains("1 blob"), "{text}");
    assert!(text.contains("1 entry"), "{text}");
}

#[test]
fn a_directory_push_draws_a_progress_bar_on_a_terminal_and_none_with_no_tty() {
    // `script` (util-linux) gives ocistow a terminal as stderr, as a person's shell does.
    if !have_tool("script") || !have_tool("timeout") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    fs::create_dir(w.join("site")).unwrap();
    // Just over the 32 MiB below which no bar is drawn; zeros compress fast.
    fs::write(w.join("site/big.bin"), vec![0u8; 33 << 20]).unwrap();
    let transcript = |flag: &str, tag: &str| -> String {
        let log = w.join(format!("{tag}.log"));
        let command = format!("{} {flag} push layout:{tag} site", ocistow_path());
        let status = std::process::Command::new("timeout")
            .args(["300", "script", "-qec", &command])
            .arg(&log)
            .current_dir(w)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{command}: {status}");
        String::from_utf8_lossy(&fs::read(&log).unwrap()).into_owned()
    };
    let drawn = transcript("", "v1");
    assert!(
        drawn.contains("/33.00 MiB"),
        "no progress bar on a terminal:\n{drawn}"
    );
    let quiet = transcript("--no-tty", "v2");
    assert!(
        !quiet.contains("MiB") && quiet.contains("Pushed layout:v2"),
        "--no-tty drew a bar:\n{quiet}"
    );
}

#[test]
fn attach_outside_a_layout_says_what_to_do_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    fs::write(w.join("a.txt"), "a\n").unwrap();
    fs::create_dir(w.join("empty")).unwrap();
    fs::create_dir(w.join("photos")).unwrap();
    fs::write(w.join("photos/cat.jpg"), "meow").unwrap();
    ok_in(w, &["push", "layout:v1", "a.txt"]);
    let before = snapshot(w);
    // A missing directory, an empty one, someone's files: oras would create a layout and then
    // not find the subject; ocistow refuses before writing, naming what to do.
    for dir in ["missing", "empty", "photos"] {
        for subject in [format!("{dir}:v1"), dir.to_string()] {
            let out = run_in(w, &["attach", &subject, "a.txt", "--artifact-type", "a/b"]);
            assert_eq!(out.code, 3, "{subject}: {}", out.stderr);
            assert!(
                out.stderr.contains("no subject to attach to")
                    && out.stderr.contains("ocistow push DIR:TAG"),
                "{subject}: {}",
                out.stderr
            );
        }
    }
    // In a layout, a subject that is not there is not found, and the layout is unchanged.
    let out = run_in(
        w,
        &["attach", "layout:nope", "a.txt", "--artifact-type", "a/b"],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert_eq!(before, snapshot(w), "a refused attach changed something");
    assert!(!w.join("missing").exists());
}

/// A work directory with `a.txt` pushed as `L:v1` and a referrer attached, built the same way
/// every time (`SOURCE_DATE_EPOCH=0`), so two of them give the same digests.
fn verbose_workspace() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    fs::write(w.join("a.txt"), "a\n").unwrap();
    ok_in(w, &["push", "L:v1", "a.txt"]);
    ok_in(w, &["attach", "L:v1", "a.txt", "--artifact-type", "a/b"]);
    ok_in(w, &["export", "L:v1", "-o", "x.tar", "--referrers"]);
    tmp
}

#[test]
fn verbose_says_each_step_on_stderr_and_leaves_stdout_alone() {
    // (setup in both workspaces, the command, a line only -v prints)
    let cases: &[(&[&str], &[&str], &str)] = &[
        (&[], &["copy", "L:v1", "M:v1,v2", "-r"], "Tagged M:v2"),
        (
            &[],
            &["copy", "L:v1", "M:v1", "-r"],
            "Checked application/vnd.oci.image.manifest.v1+json sha256:",
        ),
        (&[], &["export", "L:v1", "-o", "y.tar"], "Exporting sha256:"),
        (&[], &["import", "x.tar", "N"], "Tagged N:v1"),
        (
            &["untag", "L:v1"],
            &["gc", "L", "--grace", "0"],
            "Removed blob sha256:",
        ),
        (&[], &["fsck", "L"], "Hashing 4 blob files"),
        (
            &[],
            &["referrers", "convert", "L", "--to", "tag"],
            "Added index.json entry sha256:",
        ),
        (
            &[],
            &["normalize", "L", "--to", "tag"],
            "Removed index.json entry sha256:",
        ),
    ];
    for (setup, args, marker) in cases {
        let quiet = verbose_workspace();
        let loud = verbose_workspace();
        if !setup.is_empty() {
            ok_in(quiet.path(), setup);
            ok_in(loud.path(), setup);
        }
        for format in [None, Some("json")] {
            let with = |v: bool| {
                let mut all: Vec<&str> = if v { vec!["-v"] } else { Vec::new() };
                all.extend(*args);
                all.extend(format.iter().flat_map(|f| ["--format", f]));
                all
            };
            if format.is_some() {
                // A second run on the same state: the JSON of a run that changes nothing.
                ok_in(quiet.path(), &with(false));
                ok_in(loud.path(), &with(true));
            }
            let q = ok_in(quiet.path(), &with(false));
            let l = ok_in(loud.path(), &with(true));
            assert_eq!(q.stdout, l.stdout, "{args:?} {format:?}: -v changed stdout");
            if format.is_none() {
                assert!(
                    l.stderr.contains(marker) && !q.stderr.contains(marker),
                    "{args:?}: -v should add {marker:?}:\nwithout:\n{}\nwith:\n{}",
                    q.stderr,
                    l.stderr
                );
                for line in q.stderr.lines() {
                    assert!(l.stderr.contains(line), "{args:?}: -v lost {line:?}");
                }
            }
        }
    }
}

// ---- the examples (examples/), compiled into this binary and run against temporary dirs ----

#[allow(dead_code)] // `main` reads the command line; the tests call the function it calls.
#[path = "../examples/push_and_attach.rs"]
mod push_and_attach_example;

#[allow(dead_code)]
#[path = "../examples/discover.rs"]
mod discover_example;

#[allow(dead_code)]
#[path = "../examples/export_import.rs"]
mod export_import_example;

#[test]
fn the_push_and_attach_example_writes_what_the_cli_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    fs::write(w.join("file.txt"), "hello\n").unwrap();
    fs::write(w.join("sbom.json"), "{}\n").unwrap();
    let (subject, attached) = push_and_attach_example::push_and_attach(
        &w.join("lib"),
        &w.join("file.txt"),
        &w.join("sbom.json"),
        Some(0),
    )
    .unwrap();
    let cli_subject = ok_in(
        w,
        &[
            "push",
            "cli:v1",
            "file.txt",
            "--artifact-type",
            "application/vnd.example.app",
        ],
    );
    let cli_referrer = ok_in(
        w,
        &[
            "attach",
            "cli:v1",
            "sbom.json:application/spdx+json",
            "--artifact-type",
            "application/vnd.example.sbom",
            "-a",
            "org.example.team=build",
            "--format",
            "json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&cli_referrer.stdout).unwrap();
    assert_eq!(cli_subject.stdout.trim(), subject.digest().as_str());
    assert_eq!(v["digest"], attached.descriptor.digest().as_str());
    assert_eq!(
        attached.descriptor.annotation("org.example.team"),
        Some("build")
    );
    assert_eq!(
        ok_in(w, &["discover", "lib:v1", "--format", "json"])
            .stdout
            .replace("lib", "DIR"),
        ok_in(w, &["discover", "cli:v1", "--format", "json"])
            .stdout
            .replace("cli", "DIR"),
    );
}

/// Every digest of a `discover --format json` tree, depth first.
fn tree_digests(v: &serde_json::Value, out: &mut Vec<String>) {
    if let Some(d) = v["digest"].as_str() {
        out.push(d.to_string());
    }
    for r in v["referrers"].as_array().into_iter().flatten() {
        tree_digests(r, out);
    }
}

#[test]
fn the_discover_example_draws_the_tree_the_cli_finds() {
    for fixture in ["oras-referrers", "regctl-referrers", "olareg-referrers"] {
        let dir = crate::common::fixture_dir(fixture).join("layout");
        let drawn = discover_example::discover(&dir, "v1").unwrap();
        let cli: serde_json::Value = serde_json::from_str(
            &ok_in(
                Path::new("."),
                &[
                    "discover",
                    &format!("{}:v1", dir.display()),
                    "--format",
                    "json",
                ],
            )
            .stdout,
        )
        .unwrap();
        let mut want = Vec::new();
        tree_digests(&cli, &mut want);
        assert!(want.len() > 1, "{fixture}: no referrers in {cli}");
        let got: Vec<&str> = drawn
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .collect();
        assert_eq!(got, want, "{fixture}:\n{drawn}");
    }
}

#[test]
fn the_export_import_example_carries_a_tag_and_its_referrers() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    let src = crate::common::fixture_dir("oras-referrers").join("layout");
    let (exported, imported) =
        export_import_example::export_import(&src, "v1", &w.join("v1.tar"), &w.join("mirror"))
            .unwrap();
    assert_eq!(imported.tags, ["v1"]);
    assert_eq!(imported.referrers, exported.referrers);
    assert!(exported.referrers > 0);
    let show = |dir: &Path| {
        let out = ok_in(
            w,
            &[
                "discover",
                &format!("{}:v1", dir.display()),
                "--format",
                "json",
            ],
        );
        let mut digests = Vec::new();
        tree_digests(&serde_json::from_str(&out.stdout).unwrap(), &mut digests);
        digests
    };
    assert_eq!(show(&w.join("mirror")), show(&src));
    ok_in(w, &["fsck", "mirror"]);
}
