//! The client against scripted servers: hostile answers are refused, auth and pagination
//! work, and a registry with the referrers API gets no fallback tags.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ocistow_store::artifact::no_progress;
use ocistow_store::layout::NoProgress;
use ocistow_store::referrers::ScanOptions;
use ocistow_store::{Algorithm, Descriptor, Digest, Layout, Target};

use super::fake::{FakeRequest, FakeResponse, FakeServer, Memory};
use super::{Client, ClientOptions};
use crate::copy::{self, CopyOptions, PullInto};
use crate::error::Error;
use crate::reference::RegistryRef;

fn client(server: &FakeServer) -> Client {
    let options = ClientOptions::default()
        .plain_http(true)
        .retries(2)
        .backoff(std::time::Duration::from_millis(1));
    Client::new(&server.addr, &options).unwrap()
}

fn digest_of(bytes: &[u8]) -> Digest {
    Digest::of_bytes(Algorithm::Sha256, bytes)
}

#[test]
fn content_that_does_not_match_its_digest_is_refused_and_not_stored() {
    let good = b"the real blob".to_vec();
    let desc = Descriptor::new(
        "application/octet-stream",
        digest_of(&good),
        good.len() as u64,
    );
    let server = FakeServer::start(|req| {
        if req.path.contains("/blobs/") {
            FakeResponse::new(200).body(b"the fake blob".to_vec())
        } else {
            FakeResponse::new(200)
                .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                .body(br#"{"schemaVersion":2,"manifests":[]}"#.to_vec())
        }
    });
    let c = client(&server);
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::init(dir.path()).unwrap();
    let err = c.fetch_blob("r", &desc, &layout, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    assert!(!layout.blob_exists(desc.digest()).unwrap());
    let err = c.get_manifest("r", desc.digest().as_str()).unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
}

#[test]
fn short_and_endless_bodies_are_refused() {
    let declared = 1000u64;
    let body = vec![7u8; 4 << 20];
    let digest = digest_of(&body[..declared as usize]);
    let desc = Descriptor::new("application/octet-stream", digest, declared);
    let endless = body.clone();
    let server = FakeServer::start(move |req| {
        if req.path.contains("short") {
            // Promises the full size, sends a tenth, then hangs up.
            FakeResponse::new(200)
                .header("Content-Length", "1000")
                .body(endless[..100].to_vec())
        } else {
            FakeResponse::new(200).body(endless.clone())
        }
    });
    let c = client(&server);
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::init(dir.path()).unwrap();
    let err = c
        .fetch_blob("long", &desc, &layout, &NoProgress)
        .unwrap_err();
    assert!(err.to_string().contains("1000"), "{err}");
    let err = c
        .fetch_blob("short", &desc, &layout, &NoProgress)
        .unwrap_err();
    assert!(!matches!(err, Error::Store(_)), "{err:?}");
    assert!(!layout.blob_exists(desc.digest()).unwrap());
}

#[test]
fn a_manifest_over_the_limit_is_refused() {
    let server = FakeServer::start(|_| {
        FakeResponse::new(200)
            .header("Content-Type", "application/vnd.oci.image.index.v1+json")
            .body(vec![b' '; 10_000])
    });
    let options = ClientOptions::default()
        .plain_http(true)
        .max_manifest_size(4096);
    let c = Client::new(&server.addr, &options).unwrap();
    let err = c.get_manifest("r", "v1").unwrap_err();
    assert!(
        matches!(err, Error::TooLarge { limit: 4096, .. }),
        "{err:?}"
    );
}

#[test]
fn a_link_loop_is_an_error_not_a_hang() {
    let server = FakeServer::start(|req| {
        let next = if req.path.contains("tags") {
            "</v2/r/tags/list?n=1000>; rel=\"next\""
        } else {
            "</v2/r/referrers/x?page=2>; rel=\"next\""
        };
        let page = if req.path.contains("page=2") {
            "</v2/r/referrers/x?page=3>; rel=\"next\""
        } else {
            next
        };
        let next_page = if req.path.contains("page=3") {
            next
        } else {
            page
        };
        FakeResponse::new(200)
            .header("Link", next_page)
            .header("Content-Type", "application/vnd.oci.image.index.v1+json")
            .body(br#"{"schemaVersion":2,"manifests":[],"tags":[]}"#.to_vec())
    });
    let c = client(&server);
    let err = c.tags("r").unwrap_err();
    assert!(err.to_string().contains("leads back"), "{err}");
    let subject = digest_of(b"x");
    let err = c.referrers("r", &subject, None).unwrap_err();
    assert!(err.to_string().contains("leads back"), "{err}");
}

#[test]
fn referrers_api_pages_are_followed_and_the_filter_applied_here_when_the_registry_did_not() {
    let d = |n: u8, at: &str| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":1,"artifactType":"{at}"}}"#,
            digest_of(&[n])
        )
    };
    let (a, b, c2) = (d(1, "t/sig"), d(2, "t/sbom"), d(3, "t/sig"));
    let server = FakeServer::start(move |req| {
        let (items, link) = if req.path.contains("last=") {
            (c2.clone(), None)
        } else {
            (
                format!("{a},{b}"),
                Some(format!("<{}&last=2>; rel=\"next\"", req.path)),
            )
        };
        let mut r = FakeResponse::new(200)
            .header("Content-Type", "application/vnd.oci.image.index.v1+json")
            .body(format!(r#"{{"schemaVersion":2,"manifests":[{items}]}}"#));
        if let Some(l) = link {
            r = r.header("Link", &l);
        }
        r
    });
    let c = client(&server);
    let subject = digest_of(b"s");
    let all = c.referrers("r", &subject, None).unwrap();
    assert!(all.from_api);
    assert_eq!(all.descriptors.len(), 3);
    let sigs = c.referrers("r", &subject, Some("t/sig")).unwrap();
    let got: Vec<Digest> = sigs
        .descriptors
        .iter()
        .map(|d| d.digest().clone())
        .collect();
    assert_eq!(got, [digest_of(&[1]), digest_of(&[3])]);
}

#[test]
fn bearer_tokens_are_fetched_for_the_scope_and_5xx_is_retried() {
    let token_requests = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let (t, f) = (token_requests.clone(), failures.clone());
    let server = FakeServer::start(move |req: &FakeRequest| {
        if req.path.starts_with("/token") {
            t.fetch_add(1, Ordering::Relaxed);
            assert!(req.path.contains("service=fake"), "{}", req.path);
            assert!(
                req.path.contains("scope=repository%3Ateam%2Fapp%3Apull"),
                "{}",
                req.path
            );
            return FakeResponse::new(200).body(br#"{"access_token":"tok"}"#.to_vec());
        }
        if req.header("authorization") != Some("Bearer tok") {
            let host = req.header("host").unwrap_or_default().to_string();
            return FakeResponse::new(401).header(
                "WWW-Authenticate",
                &format!(r#"Bearer realm="http://{host}/token",service="fake",scope="repository:team/app:pull""#),
            );
        }
        if f.fetch_add(1, Ordering::Relaxed) == 0 {
            return FakeResponse::new(503);
        }
        FakeResponse::new(200).body(br#"{"name":"team/app","tags":["v1","v2"]}"#.to_vec())
    });
    let c = client(&server);
    assert_eq!(c.tags("team/app").unwrap(), ["v1", "v2"]);
    assert_eq!(c.tags("team/app").unwrap(), ["v1", "v2"]);
    assert_eq!(
        token_requests.load(Ordering::Relaxed),
        1,
        "the token is cached"
    );
    assert_eq!(
        failures.load(Ordering::Relaxed),
        3,
        "one 503, then two answers"
    );
}

#[test]
fn a_401_after_authenticating_is_a_clear_refusal() {
    let server = FakeServer::start(|req| {
        let host = req.header("host").unwrap_or_default().to_string();
        if req.path.starts_with("/token") {
            return FakeResponse::new(200).body(br#"{"token":"tok"}"#.to_vec());
        }
        FakeResponse::new(401)
            .header("WWW-Authenticate", &format!(r#"Bearer realm="http://{host}/token""#))
            .body(br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#.to_vec())
    });
    let err = client(&server).tags("r").unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("DENIED"), "{err}");
}

fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

#[test]
fn a_registry_with_the_referrers_api_indexes_every_referrer_and_gets_no_fallback_tag() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fixtures/oras-referrers");
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture.join("layout"), &dir.path().join("src"));
    let src = Layout::open(dir.path().join("src")).unwrap();
    let root = src.resolve(&Target::Tag("v1".into())).unwrap();
    let memory = Arc::new(Memory::default());
    let m = memory.clone();
    let server = FakeServer::start(move |req| m.handle(req));
    let c = client(&server);
    let options = CopyOptions::default().referrers(true);
    let dest = RegistryRef::parse(&format!("docker://{}/app:v1", server.addr)).unwrap();
    let report = copy::push(&src, &root, &c, &dest, &options, &no_progress).unwrap();
    assert_eq!(report.referrers, 3);
    assert_eq!(report.indexed_by_api, 3);
    assert_eq!(report.fallback_added, 0);
    assert_eq!(memory.tags(), ["v1"]);

    let again = copy::push(&src, &root, &c, &dest, &options, &no_progress).unwrap();
    assert_eq!((again.uploaded, again.indexed_by_api), (0, 3));

    let back = Layout::init(dir.path().join("back")).unwrap();
    let into = PullInto::default().tags(vec!["v1".into()]);
    let pulled = copy::pull(&c, &dest, &back, &options, &into, &no_progress).unwrap();
    assert_eq!(pulled.referrers, 3);
    let want = src.scan_referrers(ScanOptions::default()).unwrap();
    let got = back.scan_referrers(ScanOptions::default()).unwrap();
    let pairs = |g: &ocistow_store::referrers::Graph| {
        let mut v: Vec<(String, String)> = g
            .referrers()
            .iter()
            .map(|r| (r.subject.digest().to_string(), r.digest().to_string()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(pairs(&got), pairs(&want));
}
