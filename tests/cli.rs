//! End-to-end behaviour of the core commands on fresh layouts.

use std::fs;
use std::path::Path;

use crate::common::{json_of, ocistow, snapshot};
use serde_json::Value;

fn init(dir: &Path) {
    ocistow().arg("init").arg(dir).assert().success();
}

fn push_text(layout: &Path, tag: &str, name: &str, body: &str, work: &Path) -> String {
    let file = work.join(name);
    fs::write(&file, body).unwrap();
    let out = ocistow()
        .arg("push")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(format!("{}:text/plain", file.display()))
        .args(["--artifact-type", "application/vnd.example.test"])
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone())
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn init_creates_a_layout_and_refuses_foreign_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("a/b/layout");
    init(&layout);
    assert_eq!(
        fs::read_to_string(layout.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"], Value::Array(vec![]));
    assert!(layout.join("blobs").is_dir());
    // again: fine, nothing changes
    let before = snapshot(&layout);
    init(&layout);
    assert_eq!(before, snapshot(&layout));
    // a non-empty directory that is not a layout is refused and left alone
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("keep.txt"), "x").unwrap();
    let before = snapshot(&other);
    ocistow()
        .arg("init")
        .arg(&other)
        .assert()
        .code(7)
        .stderr(predicates::str::contains("not empty"));
    assert_eq!(before, snapshot(&other));
}

#[test]
fn push_pull_round_trip_with_annotations_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    init(&layout);
    let a = tmp.path().join("a.txt");
    let b = tmp.path().join("b.bin");
    fs::write(&a, "alpha\n").unwrap();
    fs::write(&b, vec![0u8, 1, 2, 255]).unwrap();
    let out = ocistow()
        .arg("push")
        .arg(format!("{}:v1", layout.display()))
        .arg(format!("{}:text/plain", a.display()))
        .arg(&b)
        .args([
            "--artifact-type",
            "application/vnd.example.thing",
            "-a",
            "k=v",
            "--format",
            "json",
        ])
        .assert()
        .success();
    let desc = json_of(&out);
    assert_eq!(desc["artifactType"], "application/vnd.example.thing");
    assert_eq!(desc["annotations"]["k"], "v");
    assert!(desc["annotations"]["org.opencontainers.image.created"].is_string());

    let manifest = ocistow()
        .arg("manifest")
        .arg("get")
        .arg(format!("{}:v1", layout.display()))
        .assert()
        .success();
    let m: Value = serde_json::from_slice(&manifest.get_output().stdout).unwrap();
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(m["config"]["data"], "e30=");
    assert_eq!(m["layers"][0]["mediaType"], "text/plain");
    assert_eq!(
        m["layers"][1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(
        m["layers"][1]["annotations"]["org.opencontainers.image.title"],
        "b.bin"
    );

    let out_dir = tmp.path().join("out");
    ocistow()
        .arg("pull")
        .arg(format!("{}:v1", layout.display()))
        .arg("-o")
        .arg(&out_dir)
        .assert()
        .success();
    assert_eq!(fs::read(out_dir.join("a.txt")).unwrap(), b"alpha\n");
    assert_eq!(
        fs::read(out_dir.join("b.bin")).unwrap(),
        vec![0u8, 1, 2, 255]
    );
}

#[test]
fn push_without_files_uses_the_unknown_artifact_type_and_config_sets_none() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    init(&layout);
    let f = tmp.path().join("f.txt");
    fs::write(&f, "x").unwrap();
    ocistow()
        .arg("push")
        .arg(format!("{}:u", layout.display()))
        .arg(&f)
        .assert()
        .success();
    let m = ocistow()
        .arg("manifest")
        .arg("get")
        .arg(format!("{}:u", layout.display()))
        .assert()
        .success();
    let m: Value = serde_json::from_slice(&m.get_output().stdout).unwrap();
    assert_eq!(m["artifactType"], "application/vnd.unknown.artifact.v1");

    let cfg = tmp.path().join("config.json");
    fs::write(&cfg, r#"{"architecture":"amd64","os":"linux"}"#).unwrap();
    ocistow()
        .arg("push")
        .arg(format!("{}:c", layout.display()))
        .arg(&f)
        .arg("--config")
        .arg(format!(
            "{}:application/vnd.oci.image.config.v1+json",
            cfg.display()
        ))
        .assert()
        .success();
    let m = ocistow()
        .arg("manifest")
        .arg("get")
        .arg(format!("{}:c", layout.display()))
        .assert()
        .success();
    let m: Value = serde_json::from_slice(&m.get_output().stdout).unwrap();
    assert!(m.get("artifactType").is_none());
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    // index.json reports the config media type as the artifact type, as oras does
    let ls = json_of(
        &ocistow()
            .arg("ls")
            .arg(&layout)
            .args(["--format", "json"])
            .assert()
            .success(),
    );
    let row = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ref"] == "c")
        .unwrap();
    assert_eq!(
        row["artifactType"],
        "application/vnd.oci.image.config.v1+json"
    );
}

#[test]
fn directories_are_pushed_as_tar_gzip_and_unpacked_on_pull() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    init(&layout);
    let dir = tmp.path().join("site");
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("index.html"), "<h1>hi</h1>").unwrap();
    fs::write(dir.join("sub/page.txt"), "page").unwrap();
    ocistow()
        .arg("push")
        .arg(format!("{}:site", layout.display()))
        .arg(&dir)
        .assert()
        .success();
    let m = ocistow()
        .arg("manifest")
        .arg("get")
        .arg(format!("{}:site", layout.display()))
        .assert()
        .success();
    let m: Value = serde_json::from_slice(&m.get_output().stdout).unwrap();
    let layer = &m["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(layer["annotations"]["io.deis.oras.content.unpack"], "true");
    assert_eq!(
        layer["annotations"]["org.opencontainers.image.title"],
        "site"
    );
    let out = tmp.path().join("out");
    ocistow()
        .arg("pull")
        .arg(format!("{}:site", layout.display()))
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    assert_eq!(
        fs::read_to_string(out.join("site/index.html")).unwrap(),
        "<h1>hi</h1>"
    );
    assert_eq!(
        fs::read_to_string(out.join("site/sub/page.txt")).unwrap(),
        "page"
    );
}

#[test]
fn tags_tag_untag_resolve_and_ls() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    init(&layout);
    let d1 = push_text(&layout, "v1", "one.txt", "1", tmp.path());
    let d2 = push_text(&layout, "v2", "two.txt", "2", tmp.path());
    assert_ne!(d1, d2);
    ocistow()
        .arg("tag")
        .arg(format!("{}:v1", layout.display()))
        .args(["latest", "stable"])
        .assert()
        .success();
    let tags = ocistow().arg("tags").arg(&layout).assert().success();
    assert_eq!(
        String::from_utf8_lossy(&tags.get_output().stdout),
        "v1\nv2\nlatest\nstable\n"
    );
    let r = ocistow()
        .arg("resolve")
        .arg(format!("{}:latest", layout.display()))
        .assert()
        .success();
    assert_eq!(String::from_utf8_lossy(&r.get_output().stdout).trim(), d1);
    // moving a tag: latest now points at v2's digest, and only one entry carries it
    ocistow()
        .arg("tag")
        .arg(format!("{}@{d2}", layout.display()))
        .arg("latest")
        .assert()
        .success();
    let r = ocistow()
        .arg("resolve")
        .arg(format!("{}:latest", layout.display()))
        .assert()
        .success();
    assert_eq!(String::from_utf8_lossy(&r.get_output().stdout).trim(), d2);
    ocistow()
        .arg("untag")
        .arg(format!("{}:stable", layout.display()))
        .assert()
        .success();
    let ls = json_of(
        &ocistow()
            .arg("ls")
            .arg(&layout)
            .args(["--format", "json"])
            .assert()
            .success(),
    );
    let refs: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["v1", "v2", "latest"]);
    // the blob of an untagged manifest stays until gc
    ocistow()
        .arg("untag")
        .arg(format!("{}:v1", layout.display()))
        .assert()
        .success();
    ocistow()
        .arg("blob")
        .arg("exists")
        .arg(format!("{}@{d1}", layout.display()))
        .assert()
        .success();
}

#[test]
fn layout_flag_names_references_with_colons_and_slashes() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    init(&layout);
    let d = push_text(&layout, "v1", "one.txt", "1", tmp.path());
    ocistow()
        .arg("--layout")
        .arg(&layout)
        .args(["tag", "v1", "docker.io/library/app:1.0"])
        .assert()
        .success();
    let r = ocistow()
        .arg("--layout")
        .arg(&layout)
        .args(["resolve", "docker.io/library/app:1.0"])
        .assert()
        .success();
    assert_eq!(String::from_utf8_lossy(&r.get_output().stdout).trim(), d);
    let r = ocistow()
        .arg("--layout")
        .arg(&layout)
        .arg("resolve")
        .arg(format!("@{d}"))
        .assert()
        .success();
    assert_eq!(String::from_utf8_lossy(&r.get_output().stdout).trim(), d);
    ocistow()
        .arg("--layout")
        .arg(&layout)
        .arg("tags")
        .assert()
        .success();
}

#[test]
fn plain_dir_resolves_only_a_single_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    init(&layout);
    ocistow().arg("resolve").arg(&layout).assert().code(3);
    let d = push_text(&layout, "v1", "one.txt", "1", tmp.path());
    let r = ocistow().arg("resolve").arg(&layout).assert().success();
    assert_eq!(String::from_utf8_lossy(&r.get_output().stdout).trim(), d);
    push_text(&layout, "v2", "two.txt", "2", tmp.path());
    ocistow()
        .arg("resolve")
        .arg(&layout)
        .assert()
        .code(4)
        .stderr(predicates::str::contains(":v1").and(predicates::str::contains(":v2")));
}

use predicates::prelude::PredicateBooleanExt;

#[test]
fn blob_put_get_exists_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    init(&layout);
    let f = tmp.path().join("data.bin");
    fs::write(&f, b"some bytes").unwrap();
    let out = ocistow()
        .arg("blob")
        .arg("put")
        .arg(&layout)
        .arg(&f)
        .assert()
        .success();
    let digest = String::from_utf8_lossy(&out.get_output().stdout)
        .trim()
        .to_string();
    assert!(digest.starts_with("sha256:"));
    let r = format!("{}@{digest}", layout.display());
    ocistow()
        .args(["blob", "exists"])
        .arg(&r)
        .assert()
        .success();
    let got = ocistow().args(["blob", "get"]).arg(&r).assert().success();
    assert_eq!(got.get_output().stdout, b"some bytes");
    let copy = tmp.path().join("copy.bin");
    ocistow()
        .args(["blob", "get"])
        .arg(&r)
        .arg("-o")
        .arg(&copy)
        .assert()
        .success();
    assert_eq!(fs::read(&copy).unwrap(), b"some bytes");
    // stdin with a wrong expected digest: refused, nothing stored
    let wrong = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let before = snapshot(&layout);
    ocistow()
        .args(["blob", "put"])
        .arg(&layout)
        .arg("-")
        .args(["--digest", wrong])
        .write_stdin("other bytes")
        .assert()
        .code(5)
        .stderr(predicates::str::contains("digest mismatch"));
    assert_eq!(before, snapshot(&layout));
    // sha512 by asking for it
    let d512 = "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
    ocistow()
        .args(["blob", "put"])
        .arg(&layout)
        .arg("-")
        .args(["--digest", d512])
        .write_stdin("abc")
        .assert()
        .success();
    assert!(layout.join("blobs/sha512").join(&d512[7..]).is_file());
    ocistow()
        .args(["blob", "delete"])
        .arg(&r)
        .assert()
        .success();
    ocistow().args(["blob", "exists"]).arg(&r).assert().code(1);
    ocistow().args(["blob", "delete"]).arg(&r).assert().code(3);
}

#[test]
fn manifest_put_get_delete_keeps_exact_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    init(&layout);
    let d = push_text(&layout, "v1", "one.txt", "1", tmp.path());
    // an index over it, pretty-printed with a trailing newline: stored byte for byte
    let size = fs::metadata(layout.join("blobs/sha256").join(&d[7..]))
        .unwrap()
        .len();
    let idx = format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.oci.image.index.v1+json\",\n  \"manifests\": [{{\"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"digest\": \"{d}\", \"size\": {size}, \"platform\": {{\"os\": \"linux\", \"architecture\": \"amd64\"}}}}]\n}}\n"
    );
    let file = tmp.path().join("index.json");
    fs::write(&file, &idx).unwrap();
    let out = ocistow()
        .args(["manifest", "put"])
        .arg(format!("{}:multi", layout.display()))
        .arg(&file)
        .assert()
        .success();
    let idx_digest = String::from_utf8_lossy(&out.get_output().stdout)
        .trim()
        .to_string();
    let got = ocistow()
        .args(["manifest", "get"])
        .arg(format!("{}:multi", layout.display()))
        .assert()
        .success();
    assert_eq!(got.get_output().stdout, idx.as_bytes());
    let r = ocistow()
        .arg("resolve")
        .arg(format!("{}:multi", layout.display()))
        .args(["--platform", "linux/amd64"])
        .assert()
        .success();
    assert_eq!(String::from_utf8_lossy(&r.get_output().stdout).trim(), d);
    ocistow()
        .arg("resolve")
        .arg(format!("{}:multi", layout.display()))
        .args(["--platform", "linux/s390x"])
        .assert()
        .code(3);
    // a manifest naming a blob that is not there needs --allow-sparse
    let sparse = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"text/plain","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":3}]}"#;
    let sf = tmp.path().join("sparse.json");
    fs::write(&sf, sparse).unwrap();
    ocistow()
        .args(["manifest", "put"])
        .arg(format!("{}:sparse", layout.display()))
        .arg(&sf)
        .assert()
        .code(3);
    ocistow()
        .args(["manifest", "put", "--allow-sparse"])
        .arg(format!("{}:sparse", layout.display()))
        .arg(&sf)
        .assert()
        .success();
    ocistow()
        .args(["manifest", "delete"])
        .arg(format!("{}:multi", layout.display()))
        .assert()
        .success();
    ocistow()
        .args(["blob", "exists"])
        .arg(format!("{}@{idx_digest}", layout.display()))
        .assert()
        .code(1);
    ocistow()
        .arg("resolve")
        .arg(format!("{}:multi", layout.display()))
        .assert()
        .code(3);
}

#[test]
fn every_command_has_help_with_an_example() {
    let commands: &[&[&str]] = &[
        &["init"],
        &["push"],
        &["pull"],
        &["tag"],
        &["untag"],
        &["tags"],
        &["resolve"],
        &["ls"],
        &["manifest", "get"],
        &["manifest", "put"],
        &["manifest", "delete"],
        &["blob", "get"],
        &["blob", "put"],
        &["blob", "delete"],
        &["blob", "exists"],
        &["attach"],
        &["discover"],
        &["referrers", "status"],
        &["referrers", "convert"],
        &["copy"],
        &["export"],
        &["import"],
        &["gc"],
        &["fsck"],
    ];
    for c in commands {
        let out = ocistow().args(*c).arg("--help").assert().success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
        assert!(
            text.contains("Example"),
            "{c:?} --help has no example:\n{text}"
        );
        assert!(
            text.contains("ocistow "),
            "{c:?} --help example does not show a command"
        );
    }
}

/// Every command (each subcommand of `manifest`, `blob` and `referrers`) with arguments that
/// parse, and the formats it prints: the table `--format` is checked against.
const FORMATS: &[(&[&str], &[&str])] = &[
    (&["init", "L2"], &["text"]),
    (&["push", "L:v2", "a.txt"], &["text", "json"]),
    (&["pull", "L:v1", "-o", "out"], &["text", "json"]),
    (&["tag", "L:v1", "v3"], &["text"]),
    (&["untag", "L:v1"], &["text"]),
    (&["tags", "L"], &["text", "json"]),
    (&["resolve", "L:v1"], &["text", "json"]),
    (&["manifest", "get", "L:v1"], &["text"]),
    (&["manifest", "put", "L:v4", "a.txt"], &["text", "json"]),
    (&["manifest", "delete", "L:v1"], &["text"]),
    (&["blob", "get", "L@sha256:0000"], &["text"]),
    (&["blob", "put", "L", "a.txt"], &["text", "json"]),
    (&["blob", "delete", "L@sha256:0000"], &["text"]),
    (&["blob", "exists", "L@sha256:0000"], &["text", "json"]),
    (
        &["attach", "L:v1", "a.txt", "--artifact-type", "a/b"],
        &["text", "json"],
    ),
    (&["discover", "L:v1"], &["text", "json", "tree", "table"]),
    (&["referrers", "status", "L"], &["text", "json"]),
    (
        &["referrers", "convert", "L", "--to", "tag"],
        &["text", "json"],
    ),
    (&["normalize", "L"], &["text", "json"]),
    (&["copy", "L:v1", "M:v1"], &["text", "json"]),
    (&["export", "L:v1", "-o", "x.tar"], &["text", "json"]),
    (&["export", "L:v1", "-o", "-"], &["text"]),
    (&["import", "x.tar", "L"], &["text", "json"]),
    (&["gc", "L"], &["text", "json"]),
    (&["fsck", "L"], &["text", "json"]),
    (&["ls", "L"], &["text", "json"]),
    (&["serve", "L", "--addr", "127.0.0.1:0"], &["text"]),
    (&["completion", "bash"], &["text"]),
    (&["man"], &["text"]),
];

#[test]
fn a_format_a_command_cannot_print_is_refused_naming_its_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path();
    fs::write(w.join("a.txt"), "a\n").unwrap();
    let run_in = |args: &[&str]| {
        let mut c = crate::common::cmd();
        c.current_dir(w).args(args);
        crate::common::exec(c, &args.join(" "))
    };
    assert_eq!(run_in(&["push", "L:v1", "a.txt"]).code, 0);

    // The table covers every command `--help` lists.
    let help = run_in(&["--help"]).stdout;
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(listed.len() > 10, "no commands in --help:\n{help}");
    for c in &listed {
        assert!(
            FORMATS.iter().any(|(args, _)| args[0] == *c),
            "{c} is not in the table"
        );
    }

    let before = snapshot(w);
    for (args, formats) in FORMATS {
        let prints = if *formats == ["text"] {
            "it prints no data".to_string()
        } else {
            format!("it prints {}", formats.join(" or "))
        };
        for format in ["json", "tree", "table"] {
            if formats.contains(&format) {
                continue;
            }
            let mut all = args.to_vec();
            all.extend(["--format", format]);
            let out = run_in(&all);
            assert_eq!(out.code, 2, "{all:?}: {}", out.stderr);
            assert!(out.stdout.is_empty(), "{all:?}: {}", out.stdout);
            assert!(
                out.stderr
                    .contains(&format!("--format {format} does not apply to {}", args[0]))
                    && out.stderr.contains(&prints),
                "{all:?}: {}",
                out.stderr
            );
        }
    }
    assert_eq!(before, snapshot(w), "a refused command changed something");
}
