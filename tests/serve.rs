//! `ocistow serve` (issue 11): real clients pull and push through it (skopeo, ocistow's own
//! registry client), the referrers API answers what `discover --depth 1` finds for every
//! subject of every fixture, raw HTTP shows each status code, header and error body, names never
//! reach outside the root, and eight CLI writers beside a loop of pulls lose nothing.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::registry::RawResponse;
use crate::common::serve::Serve;
use crate::common::{
    at, copy_fixture, fixture_dir, have_tool, layout_fixtures, ocistow_path, ok, read_json, s,
    tagged,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SUBJECT: &str = "sha256:0ac206ff86cebd47dffcec1b069cbc2b4b24145e1dab15fcf423b489f5425c08";

/// A root holding the oras-referrers fixture as `team/app` and an empty layout `incoming`.
fn root_with_app() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    copy_fixture("oras-referrers", &root.join("team/app"));
    ok(&["init", &s(&root.join("incoming"))]);
    (tmp, root)
}

fn error_code(r: &RawResponse) -> String {
    r.json()["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Status and error code of an answer, for one assertion per check.
fn status_code(r: &RawResponse) -> (u16, String) {
    (r.status, error_code(r))
}

fn sha256(bytes: &[u8]) -> String {
    ocistow_store::Digest::of_bytes(ocistow_store::Algorithm::Sha256, bytes).to_string()
}

/// (subject, referrer, artifactType) of every edge of a `discover --format json` tree.
fn edges(tree: &Value) -> BTreeSet<(String, String, String)> {
    fn walk(node: &Value, out: &mut BTreeSet<(String, String, String)>) {
        let subject = node["digest"].as_str().unwrap_or_default().to_string();
        for r in node["referrers"].as_array().into_iter().flatten() {
            out.insert((
                subject.clone(),
                r["digest"].as_str().unwrap_or_default().to_string(),
                r["artifactType"].as_str().unwrap_or_default().to_string(),
            ));
            walk(r, out);
        }
    }
    let mut out = BTreeSet::new();
    walk(tree, &mut out);
    out
}

fn discover_json(reference: &str, extra: &[&str]) -> Value {
    let mut args = vec!["discover", reference, "--format", "json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(&args).stdout).unwrap()
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn skopeo_pulls_out_and_pushes_in() {
    if !have_tool("skopeo") {
        return;
    }
    let (tmp, root) = root_with_app();
    let serve = Serve::start(&root, &[]);
    let out = tmp.path().join("out");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &serve.reference("team/app:v1"),
        &format!("oci:{}:v1", out.display()),
    ]);
    ok(&["fsck", &s(&out)]);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:v1", out.display()),
        &serve.reference("incoming:v1"),
    ]);
    let incoming = root.join("incoming");
    ok(&["fsck", &s(&incoming)]);
    let pushed = ok(&["resolve", &tagged(&incoming, "v1")]).stdout;
    assert_eq!(pushed.trim(), SUBJECT);
    // Pushed without referrers; discover reads the pushed layout and finds none.
    assert!(edges(&discover_json(&tagged(&incoming, "v1"), &[])).is_empty());
    assert!(
        serve
            .log()
            .contains("\"GET /v2/team/app/manifests/v1\" 200"),
        "one log line per request:\n{}",
        serve.log()
    );
    assert!(serve.stop().success());
}

#[test]
fn ocistow_copies_with_referrers_both_ways() {
    let (tmp, root) = root_with_app();
    let serve = Serve::start(&root, &[]);
    let app = root.join("team/app");
    let want = edges(&discover_json(&tagged(&app, "v1"), &[]));
    assert_eq!(want.len(), 3, "{want:?}");
    ok(&[
        "copy",
        "-r",
        &tagged(&app, "v1"),
        &serve.reference("incoming:v1"),
        "--plain-http",
    ]);
    let incoming = root.join("incoming");
    ok(&["fsck", &s(&incoming)]);
    assert_eq!(edges(&discover_json(&tagged(&incoming, "v1"), &[])), want);
    let back = tmp.path().join("back");
    ok(&[
        "copy",
        "-r",
        &serve.reference("team/app:v1"),
        &s(&back),
        "--plain-http",
    ]);
    ok(&["fsck", &s(&back)]);
    assert_eq!(edges(&discover_json(&tagged(&back, "v1"), &[])), want);
}

/// The fields a referrers response and a discover node share.
fn listed(v: &Value) -> Value {
    serde_json::json!({
        "mediaType": v["mediaType"], "digest": v["digest"], "size": v["size"],
        "annotations": v.get("annotations").cloned().unwrap_or(Value::Null),
        "artifactType": v.get("artifactType").cloned().unwrap_or(Value::Null),
    })
}

#[test]
fn referrers_api_equals_discover_depth_1_for_every_subject_of_every_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let fixtures: Vec<&str> = layout_fixtures()
        .into_iter()
        .filter(|f| fixture_dir(f).join("expected-referrers.json").exists())
        .collect();
    assert!(fixtures.len() >= 5, "{fixtures:?}");
    for f in &fixtures {
        copy_fixture(f, &root.join(f));
    }
    let serve = Serve::start(&root, &[]);
    let mut checked = 0;
    for f in &fixtures {
        let dir = root.join(f);
        let expected = read_json(&fixture_dir(f).join("expected-referrers.json"));
        for (subject, truth) in expected.as_object().unwrap() {
            let r = serve.get(&format!("/v2/{f}/referrers/{subject}"));
            assert_eq!(r.status, 200, "{f} {subject}");
            assert_eq!(
                r.header("content-type"),
                Some("application/vnd.oci.image.index.v1+json")
            );
            let api = r.json();
            assert_eq!(api["mediaType"], "application/vnd.oci.image.index.v1+json");
            let api: Vec<Value> = api["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(listed)
                .collect();
            let disc = discover_json(&at(&dir, subject), &["--depth", "1"]);
            let disc: Vec<Value> = disc["referrers"]
                .as_array()
                .unwrap()
                .iter()
                .map(listed)
                .collect();
            assert_eq!(api, disc, "{f} {subject}");
            let truth: BTreeSet<&str> = truth
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["digest"].as_str().unwrap())
                .collect();
            let got: BTreeSet<&str> = api.iter().map(|v| v["digest"].as_str().unwrap()).collect();
            assert_eq!(got, truth, "{f} {subject}");
            // The artifactType filter, said in the answer.
            let at_type = api[0]["artifactType"].as_str().unwrap_or_default();
            let r = serve.get(&format!(
                "/v2/{f}/referrers/{subject}?artifactType={}",
                at_type.replace('+', "%2B")
            ));
            assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
            let filtered = r.json()["manifests"].as_array().unwrap().clone();
            let want: Vec<&Value> = api
                .iter()
                .filter(|v| v["artifactType"] == at_type)
                .collect();
            assert_eq!(filtered.len(), want.len(), "{f} {subject} {at_type}");
            assert!(filtered.iter().all(|v| v["artifactType"] == at_type));
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} subjects checked");
}

#[test]
fn raw_http_status_codes_headers_and_error_bodies() {
    let (_tmp, root) = root_with_app();
    let app = root.join("team/app");
    for t in ["a", "b", "c", "d"] {
        ok(&["tag", &tagged(&app, "v1"), t]);
    }
    let serve = Serve::start(&root, &[]);
    let r = serve.get("/v2/");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );

    // Manifests: HEAD and GET, content type and digest, Accept as distribution answers it.
    let manifest = std::fs::read(app.join("blobs/sha256").join(&SUBJECT[7..])).unwrap();
    let r = serve.send("HEAD", "/v2/team/app/manifests/v1", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(r.header("docker-content-digest"), Some(SUBJECT));
    assert_eq!(
        r.header("content-length"),
        Some(manifest.len().to_string().as_str())
    );
    assert!(r.body.is_empty());
    let r = serve.get(&format!("/v2/team/app/manifests/{SUBJECT}"));
    assert_eq!((r.status, r.body.as_slice()), (200, manifest.as_slice()));
    let docker_only = [(
        "Accept",
        "application/vnd.docker.distribution.manifest.v2+json",
    )];
    let r = serve.send("GET", "/v2/team/app/manifests/v1", &docker_only, b"");
    assert_eq!(status_code(&r), (404, "MANIFEST_UNKNOWN".into()));
    assert!(
        r.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("accept header does not support OCI manifests")
    );
    let r = serve.send(
        "GET",
        "/v2/team/app/manifests/v1",
        &[("Accept", OCI_MANIFEST)],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = serve.get("/v2/team/app/manifests/nope");
    assert_eq!(status_code(&r), (404, "MANIFEST_UNKNOWN".into()));
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert!(r.json()["errors"][0]["message"].is_string());
    assert_eq!(
        status_code(&serve.get("/v2/nobody/manifests/v1")),
        (404, "NAME_UNKNOWN".into())
    );
    assert_eq!(
        status_code(&serve.get("/v2/Team/App/manifests/v1")),
        (400, "NAME_INVALID".into())
    );

    // Blobs: unknown, invalid digests, ranges.
    let absent = sha256(b"absent");
    assert_eq!(
        status_code(&serve.get(&format!("/v2/team/app/blobs/{absent}"))),
        (404, "BLOB_UNKNOWN".into())
    );
    assert_eq!(
        status_code(&serve.get("/v2/team/app/blobs/sha256:xyz")),
        (400, "DIGEST_INVALID".into())
    );
    let r = serve.send(
        "GET",
        &format!("/v2/team/app/blobs/{SUBJECT}"),
        &[("Range", "bytes=10-19")],
        b"",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, manifest[10..20]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 10-19/{}", manifest.len()).as_str())
    );
    let r = serve.send(
        "GET",
        &format!("/v2/team/app/blobs/{SUBJECT}"),
        &[("Range", "bytes=100000-")],
        b"",
    );
    assert_eq!(status_code(&r), (416, "RANGE_INVALID".into()));
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{}", manifest.len()).as_str())
    );
    let r = serve.send("HEAD", &format!("/v2/team/app/blobs/{SUBJECT}"), &[], b"");
    assert_eq!(r.header("docker-content-digest"), Some(SUBJECT));
    assert_eq!(
        r.header("content-length"),
        Some(manifest.len().to_string().as_str())
    );

    // Tags and catalog pages.
    let r = serve.get("/v2/team/app/tags/list?n=2");
    assert_eq!(r.json()["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(
        r.header("link"),
        Some("</v2/team/app/tags/list?last=b&n=2>; rel=\"next\"")
    );
    let r = serve.get("/v2/team/app/tags/list?n=2&last=b");
    assert_eq!(r.json()["tags"], serde_json::json!(["c", "d"]));
    let r = serve.get("/v2/team/app/tags/list?last=d");
    assert_eq!(r.json()["tags"], serde_json::json!(["v1"]));
    assert_eq!(r.header("link"), None);
    assert_eq!(
        status_code(&serve.get("/v2/team/app/tags/list?n=many")),
        (400, "PAGINATION_NUMBER_INVALID".into())
    );
    let r = serve.get("/v2/_catalog?n=1");
    assert_eq!(r.json()["repositories"], serde_json::json!(["incoming"]));
    assert_eq!(
        r.header("link"),
        Some("</v2/_catalog?last=incoming&n=1>; rel=\"next\"")
    );

    // Manifest pushes that must change nothing.
    let index_before = std::fs::read(app.join("index.json")).unwrap();
    let put = |reference: &str, body: &[u8]| {
        serve.send(
            "PUT",
            &format!("/v2/team/app/manifests/{reference}"),
            &[("Content-Type", OCI_MANIFEST)],
            body,
        )
    };
    let missing_child = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{absent}","size":2}},"layers":[]}}"#
    );
    assert_eq!(
        status_code(&put("x1", missing_child.as_bytes())),
        (400, "MANIFEST_BLOB_UNKNOWN".into())
    );
    assert_eq!(
        status_code(&put("x1", b"{not json")),
        (400, "MANIFEST_INVALID".into())
    );
    assert_eq!(
        status_code(&put(&absent, &manifest)),
        (400, "DIGEST_INVALID".into())
    );
    assert_eq!(
        status_code(&put("bad:tag", &manifest)),
        (400, "DIGEST_INVALID".into())
    );
    let r = serve.send(
        "PUT",
        "/v2/team/app/manifests/big",
        &[
            ("Content-Type", OCI_MANIFEST),
            ("Content-Length", "99999999999"),
        ],
        b"",
    );
    assert_eq!(status_code(&r), (413, "SIZE_INVALID".into()));
    assert_eq!(std::fs::read(app.join("index.json")).unwrap(), index_before);

    // Uploads that must change nothing.
    let r = serve.send(
        "POST",
        &format!("/v2/team/app/blobs/uploads/?digest={absent}"),
        &[],
        b"not what the digest says",
    );
    assert_eq!(status_code(&r), (400, "DIGEST_INVALID".into()));
    assert!(!app.join("blobs/sha256").join(&absent[7..]).exists());
    assert_eq!(
        status_code(&serve.send("PATCH", "/v2/team/app/blobs/uploads/nope", &[], b"x")),
        (404, "BLOB_UPLOAD_UNKNOWN".into())
    );
    assert_eq!(
        status_code(&serve.send("POST", "/v2/nobody/blobs/uploads/", &[], b"")),
        (403, "DENIED".into())
    );
    assert_eq!(
        status_code(&serve.send("DELETE", "/v2/team/app/manifests/v1", &[], b"")),
        (405, "UNSUPPORTED".into())
    );
    assert_eq!(std::fs::read(app.join("index.json")).unwrap(), index_before);
}

#[test]
fn names_never_reach_outside_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    ok(&["init", &s(&root.join("inside"))]);
    let outside = tmp.path().join("secret");
    copy_fixture("oras-referrers", &outside);
    std::os::unix::fs::symlink(tmp.path(), root.join("link")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("direct")).unwrap();
    let serve = Serve::start(&root, &[]);
    assert_eq!(
        serve.get("/v2/_catalog").json()["repositories"],
        serde_json::json!(["inside"])
    );
    for path in [
        "/v2/../secret/tags/list",
        "/v2/inside/../../secret/tags/list",
        "/v2/%2e%2e/secret/tags/list",
        "/v2/%2E%2E%2Fsecret/tags/list",
        "/v2/inside%2f..%2f..%2fsecret/tags/list",
        "/v2/link/secret/tags/list",
        "/v2/direct/tags/list",
        "/v2/direct/manifests/v1",
        "/v2/link/secret/manifests/v1",
    ] {
        let r = serve.get(path);
        assert!(r.status == 400 || r.status == 404, "{path}: {}", r.status);
        assert!(
            ["NAME_INVALID", "NAME_UNKNOWN", "UNSUPPORTED"].contains(&error_code(&r).as_str()),
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(!String::from_utf8_lossy(&r.body).contains("v1\""), "{path}");
    }
    // A push to a symlinked layout is refused as well, and writes nothing there.
    let before = std::fs::read(outside.join("index.json")).unwrap();
    let r = serve.send("POST", "/v2/direct/blobs/uploads/", &[], b"");
    assert_eq!(status_code(&r), (403, "DENIED".into()));
    assert_eq!(std::fs::read(outside.join("index.json")).unwrap(), before);
    assert!(!outside.join("ingest").exists());
}

#[test]
fn read_only_refuses_writes_and_allow_delete_deletes() {
    let (_tmp, root) = root_with_app();
    let app = root.join("team/app");
    let serve = Serve::start(&root, &["--read-only"]);
    for (method, path) in [
        ("POST", "/v2/team/app/blobs/uploads/"),
        ("PUT", "/v2/team/app/manifests/v9"),
        ("DELETE", "/v2/team/app/manifests/v1"),
    ] {
        let r = serve.send(method, path, &[], b"{}");
        assert_eq!(
            status_code(&r),
            (405, "UNSUPPORTED".into()),
            "{method} {path}"
        );
    }
    assert_eq!(serve.get("/v2/team/app/manifests/v1").status, 200);
    drop(serve);

    ok(&["tag", &tagged(&app, "v1"), "extra"]);
    let serve = Serve::start(&root, &["--allow-delete"]);
    let r = serve.send("DELETE", "/v2/team/app/manifests/extra", &[], b"");
    assert_eq!(r.status, 202);
    assert_eq!(
        status_code(&serve.get("/v2/team/app/manifests/extra")),
        (404, "MANIFEST_UNKNOWN".into())
    );
    // A leaf referrer, by digest: gone from the referrers answer, the layout still sound.
    let leaf = "sha256:05b00ba403a9b75b39c89d9af47d1cb8243592d2023f3d332c1ae8e51a21046d";
    assert_eq!(
        serve
            .send(
                "DELETE",
                &format!("/v2/team/app/manifests/{leaf}"),
                &[],
                b""
            )
            .status,
        202
    );
    let listed = serve
        .get(&format!("/v2/team/app/referrers/{SUBJECT}"))
        .json();
    assert!(
        listed["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["digest"] != leaf)
    );
    ok(&["fsck", &s(&app)]);
}

#[test]
fn chunked_uploads_mounts_and_expiry() {
    let (_tmp, root) = root_with_app();
    let incoming = root.join("incoming");
    let serve = Serve::start(&root, &["--upload-timeout", "1"]);
    let content = b"hello, chunked world";
    let digest = sha256(content);
    let r = serve.send("POST", "/v2/incoming/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 202);
    let location = r.header("location").unwrap().to_string();
    assert!(location.starts_with("/v2/incoming/blobs/uploads/"));
    assert_eq!(r.header("docker-upload-uuid"), location.rsplit('/').next());
    assert_eq!(r.header("range"), Some("0-0"));
    let r = serve.send(
        "PATCH",
        &location,
        &[("Content-Range", "0-6")],
        &content[..7],
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), Some("0-6"));
    // A chunk that does not start where the upload stands.
    let r = serve.send(
        "PATCH",
        &location,
        &[("Content-Range", "0-6")],
        &content[..7],
    );
    assert_eq!(status_code(&r), (416, "RANGE_INVALID".into()));
    let r = serve.get(&location);
    assert_eq!((r.status, r.header("range")), (204, Some("0-6")));
    let r = serve.send(
        "PUT",
        &format!("{location}?digest={digest}"),
        &[],
        &content[7..],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(
        serve.get(&format!("/v2/incoming/blobs/{digest}")).body,
        content
    );

    // Mount: 201 when the other repository has the blob, a new session otherwise.
    let config = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let r = serve.send(
        "POST",
        &format!("/v2/incoming/blobs/uploads/?mount={config}&from=team/app"),
        &[],
        b"",
    );
    assert_eq!(r.status, 201);
    assert!(incoming.join("blobs/sha256").join(&config[7..]).exists());
    let r = serve.send(
        "POST",
        &format!(
            "/v2/incoming/blobs/uploads/?mount={}&from=team/app",
            sha256(b"no")
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 202);

    // An abandoned upload expires, and its staged bytes with it.
    let r = serve.send("POST", "/v2/incoming/blobs/uploads/", &[], b"");
    let abandoned = r.header("location").unwrap().to_string();
    assert_eq!(serve.send("PATCH", &abandoned, &[], b"partial").status, 202);
    let staged = || std::fs::read_dir(incoming.join("ingest")).map_or(0, Iterator::count);
    assert!(staged() > 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = serve.get(&abandoned);
        if r.status == 404 && staged() == 0 {
            assert_eq!(error_code(&r), "BLOB_UPLOAD_UNKNOWN");
            break;
        }
        assert!(Instant::now() < deadline, "the upload did not expire");
        std::thread::sleep(Duration::from_millis(200));
    }
    ok(&["fsck", &s(&incoming)]);
}

#[test]
fn a_pushed_referrer_answers_oci_subject_and_appears_in_the_api() {
    let (_tmp, root) = root_with_app();
    let serve = Serve::start(&root, &[]);
    let config = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let manifest = std::fs::read(root.join("team/app/blobs/sha256").join(&SUBJECT[7..])).unwrap();
    let referrer = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.pushed","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{config}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{SUBJECT}","size":{}}}}}"#,
        manifest.len()
    );
    let digest = sha256(referrer.as_bytes());
    let r = serve.send(
        "PUT",
        &format!("/v2/team/app/manifests/{digest}"),
        &[("Content-Type", OCI_MANIFEST)],
        referrer.as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("oci-subject"), Some(SUBJECT));
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    let listed = serve
        .get(&format!(
            "/v2/team/app/referrers/{SUBJECT}?artifactType=application/vnd.example.pushed"
        ))
        .json();
    assert_eq!(listed["manifests"][0]["digest"], digest.as_str());
    let app = root.join("team/app");
    let disc = edges(&discover_json(&tagged(&app, "v1"), &["--depth", "1"]));
    assert!(disc.iter().any(|e| e.1 == digest));
    ok(&["fsck", &s(&app)]);
}

#[test]
fn eight_cli_writers_beside_a_loop_of_pulls_lose_nothing() {
    let (tmp, root) = root_with_app();
    let app = root.join("team/app");
    let serve = Arc::new(Serve::start(&root, &["--log-level", "warn"]));
    let stop = Arc::new(AtomicBool::new(false));
    let (pulls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let puller = {
        let (serve, stop, pulls, failures) =
            (serve.clone(), stop.clone(), pulls.clone(), failures.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_mins(2);
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                for path in [
                    "/v2/team/app/manifests/v1".to_string(),
                    format!("/v2/team/app/blobs/{SUBJECT}"),
                    format!("/v2/team/app/referrers/{SUBJECT}"),
                    "/v2/team/app/tags/list".to_string(),
                ] {
                    let r = serve.get(&path);
                    pulls.fetch_add(1, Ordering::Relaxed);
                    if r.status != 200 {
                        failures.fetch_add(1, Ordering::Relaxed);
                        seen.push(format!("{path}: {}", r.status));
                    }
                }
            }
            seen
        })
    };
    let file = tmp.path().join("payload.txt");
    std::fs::write(&file, "payload").unwrap();
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (app, file) = (app.clone(), file.clone());
            std::thread::spawn(move || {
                let tag = format!("w{i}");
                for args in [
                    vec!["push".to_string(), tagged(&app, &tag), s(&file)],
                    vec![
                        "attach".to_string(),
                        tagged(&app, &tag),
                        s(&file),
                        "--artifact-type".to_string(),
                        format!("application/vnd.example.w{i}"),
                    ],
                ] {
                    let out = Command::new(ocistow_path()).args(&args).output().unwrap();
                    assert!(
                        out.status.success(),
                        "{args:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    // Every tag and every new referrer shows in the API (within a bounded wait).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tags = serve.get("/v2/team/app/tags/list").json()["tags"].clone();
        let all = (0..8).all(|i| {
            let tag = format!("w{i}");
            if !tags.as_array().unwrap().iter().any(|t| *t == tag.as_str()) {
                return false;
            }
            let r = serve.get(&format!("/v2/team/app/manifests/{tag}"));
            let digest = r
                .header("docker-content-digest")
                .unwrap_or_default()
                .to_string();
            let listed = serve
                .get(&format!("/v2/team/app/referrers/{digest}"))
                .json();
            listed["manifests"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|d| d["artifactType"] == format!("application/vnd.example.w{i}"))
            })
        });
        if all {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every tag and referrer appeared: {tags}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let seen = puller.join().unwrap();
    assert!(pulls.load(Ordering::Relaxed) > 0);
    assert_eq!(failures.load(Ordering::Relaxed), 0, "{seen:?}");
    ok(&["fsck", &s(&app)]);
}
