//! Layouts to and from a real registry (distribution 2.8, which has no referrers API, so every
//! referrer goes through the fallback tag), read back by independent readers: raw HTTP and
//! skopeo.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::registry::{Proxy, RawResponse, Registry, Reply, docker_config};
use crate::common::{self, copy_fixture, fixture_dir, have_tool, layout_fixtures};
use ocistow_registry::client::{CredentialSource, Credentials};
use ocistow_registry::copy::{self, CopyOptions, PullInto};
use ocistow_registry::{Client, ClientOptions, Error, RegistryRef};
use ocistow_store::artifact::{self, FileSpec, PushRequest};
use ocistow_store::layout::NoProgress;
use ocistow_store::maintenance::FsckOptions;
use ocistow_store::referrers::{ScanOptions, fallback_tag, looks_like_fallback_tag};
use ocistow_store::{Descriptor, Digest, Layout, Target};

fn client(reg: &Registry, credentials: CredentialSource) -> Client {
    let options = ClientOptions::default()
        .plain_http(true)
        .credentials(credentials);
    Client::new(&reg.host(), &options).unwrap()
}

fn referrers_options() -> CopyOptions {
    CopyOptions::default().referrers(true)
}

/// Pushes with every referrer, without progress.
fn push_r(
    src: &Layout,
    desc: &Descriptor,
    c: &Client,
    dest: &RegistryRef,
) -> Result<copy::PushReport, Error> {
    copy::push(
        src,
        desc,
        c,
        dest,
        &referrers_options(),
        &artifact::no_progress,
    )
}

/// The tags of a layout that name images (fallback-tag records are not roots).
fn root_tags(layout: &Layout) -> Vec<(String, Descriptor)> {
    layout
        .tags()
        .unwrap()
        .into_iter()
        .filter(|(t, _)| !looks_like_fallback_tag(t))
        .collect()
}

/// `expected-referrers.json`: subject -> referrer digests.
fn expected_graph(fixture: &str) -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read(fixture_dir(fixture).join("expected-referrers.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .map(|(subject, list)| {
            let digests = list
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["digest"].as_str().unwrap().to_string())
                .collect();
            (subject.clone(), digests)
        })
        .collect()
}

/// What discover finds in a layout for each of `subjects`.
fn layout_graph(layout: &Layout, subjects: &[String]) -> BTreeMap<String, BTreeSet<String>> {
    let graph = layout.scan_referrers(ScanOptions::default()).unwrap();
    subjects
        .iter()
        .map(|s| {
            let d: Digest = s.parse().unwrap();
            let found = graph
                .referrers_of(&d)
                .iter()
                .map(|r| r.digest().to_string())
                .collect();
            (s.clone(), found)
        })
        .collect()
}

/// Pushes every image tag of the fixture with its referrers into repository `repo`.
fn push_fixture(reg: &Registry, c: &Client, fixture: &str, repo: &str, work: &Path) -> Layout {
    let src = Layout::open(copy_fixture(fixture, &work.join(format!("src-{fixture}")))).unwrap();
    for (tag, desc) in root_tags(&src) {
        let dest = RegistryRef::parse(&reg.reference(&format!("{repo}:{tag}"))).unwrap();
        push_r(&src, &desc, c, &dest).unwrap_or_else(|e| panic!("push of {fixture}:{tag}: {e}"));
    }
    src
}

#[test]
fn every_fixture_pushed_and_pulled_back_keeps_its_referrers_graph_and_digests() {
    let Some(reg) = Registry::start() else { return };
    let c = client(&reg, CredentialSource::Anonymous);
    let work = tempfile::tempdir().unwrap();
    let skopeo = have_tool("skopeo");
    for fixture in layout_fixtures() {
        let src = push_fixture(&reg, &c, fixture, fixture, work.path());
        let back = Layout::init(work.path().join(format!("back-{fixture}"))).unwrap();
        for (tag, desc) in root_tags(&src) {
            let from = RegistryRef::parse(&reg.reference(&format!("{fixture}:{tag}"))).unwrap();
            let into = PullInto::default().tags(vec![tag.clone()]);
            copy::pull(
                &c,
                &from,
                &back,
                &referrers_options(),
                &into,
                &artifact::no_progress,
            )
            .unwrap_or_else(|e| panic!("pull of {fixture}:{tag}: {e}"));
            assert_eq!(
                back.resolve(&Target::Tag(tag.clone())).unwrap().digest(),
                desc.digest(),
                "{fixture}:{tag}"
            );
            if skopeo {
                let out = std::process::Command::new("skopeo")
                    .args(["inspect", "--raw", "--tls-verify=false"])
                    .arg(reg.reference(&format!("{fixture}:{tag}")))
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "skopeo: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(
                    out.stdout,
                    src.read_manifest(&desc).unwrap().0,
                    "{fixture}:{tag}"
                );
            }
        }
        let expected = expected_graph(fixture);
        let subjects: Vec<String> = expected.keys().cloned().collect();
        assert_eq!(layout_graph(&back, &subjects), expected, "{fixture}");
        let report = back
            .fsck(&FsckOptions::default(), &NoProgress)
            .unwrap_or_else(|e| panic!("fsck {fixture}: {e}"));
        assert!(report.is_clean(), "{fixture}: {report:?}");
    }
}

/// The descriptors the registry's fallback tag of `subject` lists, read over raw HTTP.
fn fallback_listing(reg: &Registry, repo: &str, subject: &str) -> (u16, BTreeSet<String>, Vec<u8>) {
    let tag = fallback_tag(&subject.parse().unwrap());
    let r = reg.manifest(repo, &tag);
    if r.status != 200 {
        return (r.status, BTreeSet::new(), r.body);
    }
    let listed = r.json()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect();
    (r.status, listed, r.body)
}

#[test]
fn every_convention_gives_complete_fallback_records_and_a_second_push_changes_nothing() {
    let Some(reg) = Registry::start() else { return };
    let c = client(&reg, CredentialSource::Anonymous);
    let work = tempfile::tempdir().unwrap();
    let mut before = BTreeMap::new();
    for fixture in layout_fixtures() {
        push_fixture(&reg, &c, fixture, fixture, work.path());
        for (subject, referrers) in expected_graph(fixture) {
            let (status, listed, bytes) = fallback_listing(&reg, fixture, &subject);
            assert_eq!(status, 200, "{fixture}: no fallback tag for {subject}");
            assert_eq!(listed, referrers, "{fixture}: fallback tag of {subject}");
            before.insert((fixture, subject), bytes);
        }
    }
    for fixture in layout_fixtures() {
        let src = Layout::open(work.path().join(format!("src-{fixture}"))).unwrap();
        for (tag, desc) in root_tags(&src) {
            let dest = RegistryRef::parse(&reg.reference(&format!("{fixture}:{tag}"))).unwrap();
            let again = push_r(&src, &desc, &c, &dest).unwrap();
            assert_eq!(again.uploaded, 0, "{fixture}:{tag}: {again:?}");
            assert_eq!(again.fallback_added, 0, "{fixture}:{tag}: {again:?}");
        }
    }
    for ((fixture, subject), bytes) in &before {
        assert_eq!(
            &fallback_listing(&reg, fixture, subject).2,
            bytes,
            "{fixture}: the fallback tag of {subject} changed on the second push"
        );
    }
}

#[test]
fn a_push_keeps_a_referrer_someone_else_recorded_in_the_fallback_tag() {
    let Some(reg) = Registry::start() else { return };
    let c = client(&reg, CredentialSource::Anonymous);
    let work = tempfile::tempdir().unwrap();
    let fixture = "oras-referrers";
    push_fixture(&reg, &c, fixture, "shared", work.path());
    // Another client pushes its own referrer and rewrites the fallback tag with only that one,
    // as a client racing ours would.
    let other = Layout::init(work.path().join("other")).unwrap();
    let file = work.path().join("note.txt");
    std::fs::write(&file, "someone else's note\n").unwrap();
    let pushed = artifact::push(
        &other,
        &PushRequest::new(vec![
            FileSpec::new(file).media_type(Some("text/plain".into())),
        ])
        .artifact_type(Some("application/vnd.example.note".into())),
        &artifact::no_progress,
    )
    .unwrap();
    pushed.staged.commit(&pushed.descriptor, &[]).unwrap();
    let theirs =
        RegistryRef::parse(&reg.reference(&format!("shared@{}", pushed.descriptor.digest())))
            .unwrap();
    copy::push(
        &other,
        &pushed.descriptor,
        &c,
        &theirs,
        &CopyOptions::default(),
        &artifact::no_progress,
    )
    .unwrap();
    let (subject, ours) = expected_graph(fixture).into_iter().next().unwrap();
    let their_index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [serde_json::to_value(&pushed.descriptor).unwrap()],
    });
    let tag = fallback_tag(&subject.parse().unwrap());
    let status = reg.put_manifest(
        "shared",
        &tag,
        "application/vnd.oci.image.index.v1+json",
        &serde_json::to_vec(&their_index).unwrap(),
    );
    assert_eq!(status, 201);

    let src = Layout::open(work.path().join(format!("src-{fixture}"))).unwrap();
    let (tag_name, desc) = root_tags(&src).remove(0);
    let dest = RegistryRef::parse(&reg.reference(&format!("shared:{tag_name}"))).unwrap();
    let report = push_r(&src, &desc, &c, &dest).unwrap();
    assert!(report.fallback_added >= ours.len(), "{report:?}");
    let (_, listed, _) = fallback_listing(&reg, "shared", &subject);
    let mut want = ours.clone();
    want.insert(pushed.descriptor.digest().to_string());
    assert_eq!(listed, want);
}

#[test]
fn basic_auth_with_docker_config_and_given_credentials_and_a_clear_refusal() {
    let Some(reg) = Registry::start_with_user("alice", "s3cret") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let src = Layout::open(copy_fixture("oras-referrers", &work.path().join("src"))).unwrap();
    let (tag, desc) = root_tags(&src).remove(0);
    let dest = RegistryRef::parse(&reg.reference(&format!("auth/app:{tag}"))).unwrap();
    let push = |c: &Client| push_r(&src, &desc, c, &dest);

    let config = docker_config(work.path(), &reg.host(), "alice", "s3cret");
    push(&client(&reg, CredentialSource::DockerConfig(config))).unwrap();
    assert_eq!(reg.manifest("auth/app", &tag).status, 200);

    let given = Credentials::new("alice", "s3cret");
    let report = push(&client(&reg, CredentialSource::Given(given))).unwrap();
    assert_eq!(report.uploaded, 0);

    let wrong = Credentials::new("alice", "wrong");
    let err = push(&client(&reg, CredentialSource::Given(wrong))).unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("\"alice\" were refused"), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the password leaked: {err}"
    );

    let err = push(&client(&reg, CredentialSource::Anonymous)).unwrap_err();
    assert!(err.to_string().contains("none were given"), "{err}");
}

#[test]
fn a_refused_connection_is_a_clear_error_and_the_layout_is_unchanged() {
    let work = tempfile::tempdir().unwrap();
    let port = common::registry::free_port();
    let options = ClientOptions::default()
        .plain_http(true)
        .retries(1)
        .backoff(std::time::Duration::from_millis(10));
    let c = Client::new(&format!("127.0.0.1:{port}"), &options).unwrap();
    let dst = Layout::init(work.path().join("dst")).unwrap();
    let before = common::snapshot(dst.root());
    let from = RegistryRef::parse(&format!("docker://127.0.0.1:{port}/a:v1")).unwrap();
    let err = copy::pull(
        &c,
        &from,
        &dst,
        &referrers_options(),
        &PullInto::default(),
        &artifact::no_progress,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert_eq!(common::snapshot(dst.root()), before);
}

#[test]
fn a_sha512_manifest_is_refused_clearly_and_nothing_is_tagged() {
    let Some(reg) = Registry::start() else { return };
    let c = client(&reg, CredentialSource::Anonymous);
    let work = tempfile::tempdir().unwrap();
    let layout = Layout::init(work.path().join("src")).unwrap();
    let empty = layout.write_blob_bytes(b"{}").unwrap();
    let empty = serde_json::json!({
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": empty.digest().to_string(),
        "size": 2,
    });
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example",
        "config": empty,
        "layers": [empty],
    }))
    .unwrap();
    let digest = Digest::of_bytes(ocistow_store::Algorithm::Sha512, &manifest);
    let expected = ocistow_store::Expected::default()
        .digest(Some(digest.clone()))
        .size(Some(manifest.len() as u64));
    layout.write_blob(&mut &manifest[..], expected).unwrap();
    let desc = Descriptor::new(
        "application/vnd.oci.image.manifest.v1+json",
        digest.clone(),
        manifest.len() as u64,
    );
    layout.add_entry(&desc, &["v1".into()]).unwrap();
    let dest = RegistryRef::parse(&reg.reference("wide:v1")).unwrap();
    let err = copy::push(
        &layout,
        &desc,
        &c,
        &dest,
        &CopyOptions::default(),
        &artifact::no_progress,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("sha512"), "{err}");
    assert!(err.to_string().contains("nothing was tagged"), "{err}");
    assert_eq!(reg.manifest("wide", "v1").status, 404);
}

#[test]
fn registry_to_registry_copies_mount_within_one_and_stream_between_two_with_every_referrer() {
    let Some(a) = Registry::start() else { return };
    let Some(b) = Registry::start() else { return };
    let (ca, cb) = (
        client(&a, CredentialSource::Anonymous),
        client(&b, CredentialSource::Anonymous),
    );
    let work = tempfile::tempdir().unwrap();
    let fixture = "oras-multiplatform";
    let src = push_fixture(&a, &ca, fixture, "origin", work.path());
    let from = RegistryRef::parse(&a.reference("origin:multi")).unwrap();
    for (reg, c, repo) in [(&a, &ca, "mirror/app"), (&b, &cb, "far/app")] {
        let to = RegistryRef::parse(&reg.reference(repo)).unwrap();
        let report = copy::copy_between(
            &ca,
            &from,
            c,
            &to,
            &referrers_options(),
            &artifact::no_progress,
        )
        .unwrap();
        assert!(report.uploaded > 0, "{report:?}");
        let want = src.read_manifest(&src.resolve(&Target::Tag("multi".into())).unwrap());
        assert_eq!(reg.manifest(repo, "multi").body, want.unwrap().0);
        for (subject, referrers) in expected_graph(fixture) {
            let (status, listed, _) = fallback_listing(reg, repo, &subject);
            assert_eq!(status, 200, "{repo}: no fallback tag for {subject}");
            assert_eq!(listed, referrers, "{repo}: fallback tag of {subject}");
        }
        let again = copy::copy_between(
            &ca,
            &from,
            c,
            &to,
            &referrers_options(),
            &artifact::no_progress,
        )
        .unwrap();
        assert_eq!((again.uploaded, again.fallback_added), (0, 0), "{again:?}");
    }
}

/// One misbehaviour of a registry and the error kind it must produce.
struct Misbehaviour {
    name: &'static str,
    rewrite: fn(&str, &str, RawResponse) -> Reply,
    expect: fn(&Error) -> bool,
}

/// A plain-HTTP client of a misbehaving proxy.
fn proxy_client(proxy: &Proxy) -> Client {
    Client::new(&proxy.host(), &ClientOptions::default().plain_http(true)).unwrap()
}

fn flip_last_byte(mut r: RawResponse) -> Reply {
    if let Some(b) = r.body.last_mut() {
        *b ^= 1;
    }
    r.into()
}

fn misbehaviours() -> Vec<Misbehaviour> {
    vec![
        Misbehaviour {
            name: "blob content that does not match its digest",
            rewrite: |m, p, r| {
                if m == "GET" && p.contains("/blobs/") && r.status == 200 {
                    flip_last_byte(r)
                } else {
                    r.into()
                }
            },
            expect: |e| matches!(e, Error::DigestMismatch { .. }),
        },
        Misbehaviour {
            name: "a manifest that does not match its digest",
            rewrite: |m, p, r| {
                if m == "GET" && p.contains("/manifests/sha256:") && r.status == 200 {
                    let mut r = r;
                    r.body.extend(b" ");
                    r.into()
                } else {
                    r.into()
                }
            },
            expect: |e| matches!(e, Error::DigestMismatch { .. }),
        },
        Misbehaviour {
            name: "a blob cut off halfway",
            rewrite: |m, p, r| {
                let cut = (r.body.len() / 2).max(1) - 1;
                let mut reply: Reply = r.into();
                if m == "GET" && p.contains("/blobs/") && reply.status == 200 {
                    reply.cut_at = Some(cut);
                }
                reply
            },
            expect: |e| matches!(e, Error::BadResponse { .. }),
        },
        Misbehaviour {
            name: "a manifest over the size limit",
            rewrite: |m, p, r| {
                let mut reply: Reply = r.into();
                if m == "GET" && p.ends_with("/manifests/v1") {
                    reply.body = vec![b' '; (65 << 20) as usize];
                }
                reply
            },
            expect: |e| matches!(e, Error::TooLarge { .. }),
        },
        Misbehaviour {
            name: "a 401 after authenticating",
            rewrite: |_, _, _| Reply {
                status: 401,
                headers: vec![("www-authenticate".into(), "Basic realm=\"x\"".into())],
                body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"no"}]}"#.to_vec(),
                cut_at: None,
            },
            expect: |e| matches!(e, Error::Unauthorized { .. }),
        },
        Misbehaviour {
            name: "a registry that always fails",
            rewrite: |_, _, _| Reply {
                status: 503,
                headers: Vec::new(),
                body: Vec::new(),
                cut_at: None,
            },
            expect: |e| matches!(e, Error::Status { status: 503, .. }),
        },
    ]
}

#[test]
fn a_pull_from_a_misbehaving_registry_is_refused_and_the_layout_is_unchanged() {
    let Some(reg) = Registry::start() else { return };
    let c = client(&reg, CredentialSource::Anonymous);
    let work = tempfile::tempdir().unwrap();
    push_fixture(&reg, &c, "oras-referrers", "app", work.path());
    for (i, case) in misbehaviours().into_iter().enumerate() {
        let proxy = Proxy::start(reg.port, case.rewrite);
        let options = ClientOptions::default()
            .plain_http(true)
            .backoff(std::time::Duration::from_millis(5))
            .credentials(CredentialSource::Given(Credentials::new("u", "p")));
        let pc = Client::new(&proxy.host(), &options).unwrap();
        let dst = Layout::init(work.path().join(format!("dst-{i}"))).unwrap();
        let before = common::snapshot(dst.root());
        let from = RegistryRef::parse(&proxy.reference("app:v1")).unwrap();
        let err = copy::pull(
            &pc,
            &from,
            &dst,
            &referrers_options(),
            &PullInto::default().tags(vec!["v1".into()]),
            &artifact::no_progress,
        )
        .expect_err(case.name);
        assert!((case.expect)(&err), "{}: {err:?}", case.name);
        let after = common::snapshot(dst.root());
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "{}: files appeared",
            case.name
        );
        assert_eq!(after, before, "{}: the layout changed", case.name);
    }
}

#[test]
fn a_link_loop_in_the_tags_list_is_an_error() {
    let Some(reg) = Registry::start() else { return };
    let c = client(&reg, CredentialSource::Anonymous);
    let work = tempfile::tempdir().unwrap();
    push_fixture(&reg, &c, "oras-referrers", "app", work.path());
    let proxy = Proxy::start(reg.port, |_, p, r| {
        let mut reply: Reply = r.into();
        if p.contains("/tags/list") {
            reply
                .headers
                .push(("link".into(), format!("<{p}>; rel=\"next\"")));
        }
        reply
    });
    let pc = proxy_client(&proxy);
    assert!(c.tags("app").unwrap().contains(&"v1".to_string()));
    let err = pc.tags("app").unwrap_err();
    assert!(err.to_string().contains("leads back"), "{err}");
}

#[test]
fn a_push_that_fails_at_its_tag_records_no_fallback_tag() {
    let Some(reg) = Registry::start() else { return };
    let proxy = Proxy::refusing(reg.port, |m, p| {
        let refused = m == "PUT" && p.contains("/manifests/") && !p.contains("/manifests/sha256:");
        refused.then(|| Reply {
            status: 400,
            headers: Vec::new(),
            body:
                br#"{"errors":[{"code":"TAG_INVALID","message":"manifest tag did not match URI"}]}"#
                    .to_vec(),
            cut_at: None,
        })
    });
    let pc = proxy_client(&proxy);
    let work = tempfile::tempdir().unwrap();
    let src = Layout::open(copy_fixture("oras-referrers", &work.path().join("src"))).unwrap();
    let (tag, desc) = root_tags(&src).remove(0);
    let dest = RegistryRef::parse(&proxy.reference(&format!("app:{tag}"))).unwrap();
    let err = push_r(&src, &desc, &pc, &dest).unwrap_err();
    assert!(err.to_string().contains("TAG_INVALID"), "{err}");
    assert_eq!(reg.manifest("app", &tag).status, 404);
    for subject in expected_graph("oras-referrers").keys() {
        assert_eq!(fallback_listing(&reg, "app", subject).0, 404, "{subject}");
    }
}

#[test]
fn a_pull_with_one_platform_takes_that_manifest_as_its_root() {
    let Some(reg) = Registry::start() else { return };
    let c = client(&reg, CredentialSource::Anonymous);
    let work = tempfile::tempdir().unwrap();
    let src = push_fixture(&reg, &c, "oras-multiplatform", "multi", work.path());
    let arm = src.resolve(&Target::Tag("linux-arm64".into())).unwrap();
    let from = RegistryRef::parse(&reg.reference("multi:multi")).unwrap();
    let platform = ocistow_store::Platform::parse("linux/arm64").unwrap();
    let (resolved, bytes) = ocistow_registry::resolve(&c, &from, Some(&platform)).unwrap();
    assert_eq!(resolved.digest(), arm.digest());
    assert_eq!(bytes.bytes, src.read_manifest(&arm).unwrap().0);
    let back = Layout::init(work.path().join("back")).unwrap();
    let options = CopyOptions::default().platforms(vec![platform]);
    let report = copy::pull(
        &c,
        &from,
        &back,
        &options,
        &PullInto::default().tags(vec!["arm".into()]),
        &artifact::no_progress,
    )
    .unwrap();
    assert_eq!(report.root.digest(), arm.digest());
    assert_eq!(
        back.resolve(&Target::Tag("arm".into())).unwrap().digest(),
        arm.digest()
    );
    let err = ocistow_registry::resolve(
        &c,
        &from,
        Some(&ocistow_store::Platform::parse("linux/s390x").unwrap()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("linux/s390x"), "{err}");
}

/// The digests of a discover tree, nested, without the `reference` prefix (which names where
/// the tree was read).
fn tree_digests(v: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "digest": v["digest"],
        "artifactType": v["artifactType"],
        "referrers": v["referrers"]
            .as_array()
            .map(|rs| {
                let mut list: Vec<serde_json::Value> = rs.iter().map(tree_digests).collect();
                list.sort_by_key(|r| r["digest"].as_str().unwrap_or_default().to_string());
                list
            })
            .unwrap_or_default(),
    })
}

fn json_stdout(out: &common::Out) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn cli_copies_to_and_from_a_registry_and_reads_it_like_a_layout() {
    let Some(reg) = Registry::start() else { return };
    let work = tempfile::tempdir().unwrap();
    let src = copy_fixture("oras-referrers", &work.path().join("src"));
    let src_v1 = common::tagged(&src, "v1");
    let remote = reg.reference("team/app:v1");
    let pushed = common::ok(&[
        "copy",
        &src_v1,
        &remote,
        "-r",
        "--plain-http",
        "--format",
        "json",
    ]);
    let report = json_stdout(&pushed);
    assert_eq!(report["referrers"], 3, "{report}");
    assert_eq!(report["fallbackTagEntriesAdded"], 3, "{report}");
    let again = json_stdout(&common::ok(&[
        "copy",
        &src_v1,
        &remote,
        "-r",
        "--plain-http",
        "--format",
        "json",
    ]));
    assert_eq!(
        (
            again["uploaded"].as_u64(),
            again["fallbackTagEntriesAdded"].as_u64()
        ),
        (Some(0), Some(0))
    );

    let layout = Layout::open(&src).unwrap();
    let root = layout.resolve(&Target::Tag("v1".into())).unwrap();
    let resolved = common::ok(&["resolve", &remote, "--plain-http"]);
    assert_eq!(resolved.stdout.trim(), root.digest().as_str());
    let tags = common::ok(&["tags", &reg.reference("team/app"), "--plain-http"]);
    assert!(tags.stdout.lines().any(|l| l == "v1"), "{}", tags.stdout);
    let got = common::cmd()
        .args(["manifest", "get", &remote, "--plain-http"])
        .output()
        .unwrap();
    assert!(got.status.success());
    let (bytes, manifest) = layout.read_manifest(&root).unwrap();
    assert_eq!(got.stdout, bytes);
    let config = manifest.children()[0].clone();
    let file = work.path().join("config.out");
    common::ok(&[
        "blob",
        "get",
        &reg.reference(&format!("team/app@{}", config.digest())),
        "--plain-http",
        "-o",
        &common::s(&file),
    ]);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        layout.read_blob(config.digest()).unwrap()
    );

    let local_tree = json_stdout(&common::ok(&["discover", &src_v1, "--format", "json"]));
    let remote_tree = json_stdout(&common::ok(&[
        "discover",
        &remote,
        "--plain-http",
        "--format",
        "json",
    ]));
    assert_eq!(tree_digests(&remote_tree), tree_digests(&local_tree));
    assert!(
        remote_tree["referrers"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
    );

    let back = work.path().join("back");
    common::ok(&["copy", &remote, &common::s(&back), "-r", "--plain-http"]);
    common::ok(&["fsck", &common::s(&back)]);
    let back_tree = json_stdout(&common::ok(&[
        "discover",
        &common::tagged(&back, "v1"),
        "--format",
        "json",
    ]));
    assert_eq!(tree_digests(&back_tree), tree_digests(&local_tree));

    // A refused pull into a layout it would create leaves nothing behind.
    let missing = work.path().join("never");
    let failed = common::run(&[
        "copy",
        &reg.reference("team/app:absent"),
        &common::s(&missing),
        "--plain-http",
    ]);
    assert_eq!(failed.code, 3, "{}", failed.stderr);
    assert!(!missing.exists());
    // Nor does it touch a directory that was there, layout or not.
    let other = work.path().join("notes");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "mine").unwrap();
    let before = common::snapshot(&other);
    let failed = common::run(&[
        "copy",
        &reg.reference("team/app:absent"),
        &common::s(&other),
        "--plain-http",
    ]);
    assert_eq!(failed.code, 3, "{}", failed.stderr);
    assert_eq!(common::snapshot(&other), before);
}

#[test]
fn cli_basic_auth_from_stdin_and_docker_config_and_a_wrong_password() {
    let Some(reg) = Registry::start_with_user("alice", "s3cret") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let src = copy_fixture("oras-referrers", &work.path().join("src"));
    let src_v1 = common::tagged(&src, "v1");
    let remote = reg.reference("auth/app:v1");
    let push = |password: &str| {
        let mut c = common::cmd();
        c.env_remove("DOCKER_CONFIG")
            .env("HOME", work.path())
            .args(["copy", &src_v1, &remote, "-r", "--plain-http"])
            .args(["--username", "alice", "--password-stdin"])
            .write_stdin(format!("{password}\n"));
        common::exec(c, "copy with --password-stdin")
    };
    let wrong = push("wrong");
    assert_eq!(wrong.code, 8, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("\"alice\" were refused"),
        "{}",
        wrong.stderr
    );
    assert!(
        !wrong.stderr.contains("wrong"),
        "the password leaked: {}",
        wrong.stderr
    );
    assert_eq!(reg.manifest("auth/app", "v1").status, 404);
    let right = push("s3cret");
    assert_eq!(right.code, 0, "{}", right.stderr);
    assert_eq!(reg.manifest("auth/app", "v1").status, 200);

    let anonymous = {
        let mut c = common::cmd();
        c.env_remove("DOCKER_CONFIG")
            .env("HOME", work.path())
            .args(["resolve", &remote, "--plain-http"]);
        common::exec(c, "resolve without credentials")
    };
    assert_ne!(anonymous.code, 0);
    assert!(
        anonymous.stderr.contains("none were given"),
        "{}",
        anonymous.stderr
    );

    let config_dir = work.path().join("docker");
    std::fs::create_dir_all(&config_dir).unwrap();
    docker_config(&config_dir, &reg.host(), "alice", "s3cret");
    let mut c = common::cmd();
    c.env("DOCKER_CONFIG", &config_dir)
        .args(["resolve", &remote, "--plain-http"]);
    let resolved = common::exec(c, "resolve with DOCKER_CONFIG");
    assert_eq!(resolved.code, 0, "{}", resolved.stderr);
    let root = Layout::open(&src)
        .unwrap()
        .resolve(&Target::Tag("v1".into()))
        .unwrap();
    assert_eq!(resolved.stdout.trim(), root.digest().as_str());
}

#[test]
fn a_name_the_registry_rejects_is_a_clear_error_both_ways_and_nothing_changes() {
    let Some(reg) = Registry::start() else { return };
    // A registry whose policy refuses a name the grammar allows (a Harbor project that does not
    // exist, say): every request under it gets the spec's NAME_INVALID, and the real registry
    // never sees it.
    let proxy = Proxy::refusing(reg.port, |_, p| {
        p.starts_with("/v2/reserved/").then(|| Reply {
            status: 400,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: br#"{"errors":[{"code":"NAME_INVALID","message":"invalid repository name"}]}"#
                .to_vec(),
            cut_at: None,
        })
    });
    let pc = proxy_client(&proxy);
    let work = tempfile::tempdir().unwrap();
    let src = Layout::open(copy_fixture("oras-referrers", &work.path().join("src"))).unwrap();
    let (tag, desc) = root_tags(&src).remove(0);
    let before = common::snapshot(src.root());
    let dest = RegistryRef::parse(&proxy.reference(&format!("reserved/app:{tag}"))).unwrap();
    // A push starts with HEAD requests, whose answers have no body to carry the code: the
    // error names the request and its status.
    let err = push_r(&src, &desc, &pc, &dest).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("/v2/reserved/app/") && text.contains("400"),
        "{text}"
    );
    assert_eq!(common::snapshot(src.root()), before);
    let catalog = reg.get("/v2/_catalog", None).json();
    assert_eq!(catalog["repositories"], serde_json::json!([]), "{catalog}");

    let dst = Layout::init(work.path().join("dst")).unwrap();
    let untouched = common::snapshot(dst.root());
    let err = copy::pull(
        &pc,
        &dest,
        &dst,
        &referrers_options(),
        &PullInto::default(),
        &artifact::no_progress,
    )
    .unwrap_err();
    assert!(err.to_string().contains("NAME_INVALID"), "{err}");
    assert_eq!(common::snapshot(dst.root()), untouched);
}

#[test]
fn cli_takes_credentials_from_a_docker_credential_helper() {
    use std::os::unix::fs::PermissionsExt;
    let Some(reg) = Registry::start_with_user("alice", "s3cret") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let src = copy_fixture("oras-referrers", &work.path().join("src"));
    let remote = reg.reference("helper/app:v1");
    // A helper as docker runs it: `docker-credential-<name> get`, the server on stdin, JSON out.
    // It records the server it was asked about, so the test knows it was consulted.
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-ocistowtest");
    let asked = work.path().join("asked");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\ncat > {}\nprintf '%s' '{{\"ServerURL\":\"{}\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}}'\n",
            asked.display(),
            reg.host()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config_dir = work.path().join("docker");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(
        config_dir.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"ocistowtest"}}}}"#, reg.host()),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = common::cmd();
    c.env("DOCKER_CONFIG", &config_dir)
        .env("PATH", &path)
        .args([
            "copy",
            &common::tagged(&src, "v1"),
            &remote,
            "-r",
            "--plain-http",
        ]);
    let pushed = common::exec(c, "copy with a credential helper");
    assert_eq!(pushed.code, 0, "{}", pushed.stderr);
    assert_eq!(reg.manifest("helper/app", "v1").status, 200);
    let asked = std::fs::read_to_string(&asked).unwrap();
    assert!(
        asked.contains(&reg.host()),
        "the helper was asked for {asked:?}"
    );
}

#[test]
fn a_manifest_listed_as_octet_stream_is_pushed_as_the_manifest_it_is() {
    let Some(reg) = Registry::start() else { return };
    let c = client(&reg, CredentialSource::Anonymous);
    let work = tempfile::tempdir().unwrap();
    let dir = copy_fixture("oras-referrers", &work.path().join("src"));
    // Some tools list a manifest without its media type: the walk sniffs it, and so must a push.
    let index_path = dir.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let mut subject = None;
    for e in index["manifests"].as_array_mut().unwrap() {
        if e["annotations"]["org.opencontainers.image.ref.name"] == "v1" {
            e["mediaType"] = "application/octet-stream".into();
            subject = e["digest"].as_str().map(String::from);
        }
    }
    let subject = subject.expect("the fixture tags v1");
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let src = Layout::open(&dir).unwrap();
    let desc = src.resolve(&Target::Tag("v1".into())).unwrap();
    assert_eq!(desc.media_type(), "application/octet-stream");
    let dest = RegistryRef::parse(&reg.reference("octet/app:v1")).unwrap();
    push_r(&src, &desc, &c, &dest).unwrap();
    let r = reg.manifest("octet/app", "v1");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("Content-Type")
            .or_else(|| r.header("content-type")),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    let (status, listed, _) = fallback_listing(&reg, "octet/app", &subject);
    assert_eq!(status, 200);
    let expected = &expected_graph("oras-referrers")[&subject];
    assert_eq!(&listed, expected);
}

#[test]
fn cli_copy_to_a_registry_gives_every_tag_of_a_list() {
    let Some(reg) = Registry::start() else { return };
    let work = tempfile::tempdir().unwrap();
    let src = copy_fixture("oras-referrers", &work.path().join("src"));
    let src_v1 = common::tagged(&src, "v1");
    let digest = common::ok(&["resolve", &src_v1]).stdout;
    common::ok(&[
        "copy",
        &src_v1,
        &reg.reference("team/app:v1,latest,stable"),
        "--plain-http",
    ]);
    // Between repositories of the registry too.
    common::ok(&[
        "copy",
        &reg.reference("team/app:stable"),
        &reg.reference("team/mirror:a,b"),
        "--plain-http",
    ]);
    for (repo, tags) in [
        ("team/app", &["latest", "stable", "v1"][..]),
        ("team/mirror", &["a", "b"]),
    ] {
        let listed = json_stdout(&common::ok(&[
            "tags",
            &reg.reference(repo),
            "--plain-http",
            "--format",
            "json",
        ]));
        let mut listed: Vec<String> = serde_json::from_value(listed["tags"].clone()).unwrap();
        listed.sort();
        assert_eq!(listed, tags, "{repo}");
        for t in tags {
            let r = common::ok(&[
                "resolve",
                &reg.reference(&format!("{repo}:{t}")),
                "--plain-http",
            ]);
            assert_eq!(r.stdout, digest, "{repo}:{t}");
        }
    }
    // An empty or invalid tag in the list is refused before anything is sent.
    for bad in ["team/other:v1,,v2", "team/other:v1,-bad"] {
        let out = common::run(&["copy", &src_v1, &reg.reference(bad), "--plain-http"]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
    }
    let none = reg.get("/v2/team/other/tags/list", None);
    assert_eq!(none.status, 404, "a refused copy created the repository");
}
