//! Property tests for referrers and for the lossless `index.json` model.
//!
//! 1. `graph_survives_random_writes_and_conversions`: random graphs (several referrers per
//!    subject, chains, referrers of an index and of its child manifests, sha512 subjects stored
//!    under `blobs/sha512`, missing sha256 and sha512 subjects, image-manifest and index
//!    referrers, with and without annotations) are recorded with `record_referrer` in random
//!    modes and response keys, then converted 1-4 times in random modes. After every step the
//!    scanned graph must be the graph the blobs define, and the layout must keep what
//!    `docs/referrers.md` ("Guarantees of convert") and conventions.md section 4 promise.
//! 2. `dry_run_convert_writes_nothing`: `convert_referrers(.., dry_run = true)` leaves the layout
//!    directory (not only `index.json`) as it was ("Report what would change; write nothing").
//! 3. `index_json_round_trip_is_lossless` / `index_json_float_fields_round_trip`: random
//!    index.json objects (unknown keys everywhere, absent vs empty annotations, platform
//!    features, random key order), written compactly by `serde_json`, come back byte for byte from
//!    `ImageIndex::parse` + `to_vec`, and through `Layout` writes that leave them alone.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use crate::model::media;
use crate::referrers::{
    Convention, Graph, Issue, Mode, ResponseKey, ScanOptions, fallback_tag, keys,
};
use crate::{Algorithm, Descriptor, Digest, Expected, ImageIndex, Layout};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use tempfile::TempDir;

const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const ARTIFACT_TYPES: [&str; 3] = [
    "application/vnd.example.sbom",
    "application/vnd.example.signature",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
];
const REF_NAME: &str = "org.opencontainers.image.ref.name";

// ---- the generated spec -------------------------------------------------------------------------

/// Which subject a referrer points at. Picks that name something the spec does not have (the
/// index when there is none, an earlier referrer for the first one) fall back to `Base(0)`.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Base(u8),
    Index,
    Child(u8),
    Earlier(u8),
    /// A digest whose blob is never stored (sha256 or sha512, two of each).
    Missing {
        sha512: bool,
        which: u8,
    },
    /// An image manifest stored under `blobs/sha512/` (two available), not listed in index.json.
    Sha512Stored(u8),
}

#[derive(Debug, Clone, Copy)]
struct RefSpec {
    subject: Pick,
    /// An image index (with `manifests: []`) instead of an image manifest.
    is_index: bool,
    artifact_type: Option<u8>,
    /// With annotations (pulled up into records), or made unique by an unknown field instead.
    annotated: bool,
    mode: Mode,
    key: ResponseKey,
}

#[derive(Debug, Clone, Copy)]
struct Conversion {
    to: Mode,
    key: ResponseKey,
    keep: bool,
}

#[derive(Debug, Clone)]
struct Spec {
    /// One base image manifest per element; `true` = tagged `base-<i>`, else untagged.
    bases: Vec<bool>,
    /// An image index tagged `v1` over two child manifests with platforms.
    with_index: bool,
    /// An untagged `application/xml` entry with an unknown field (must be kept as is).
    foreign_entry: bool,
    referrers: Vec<RefSpec>,
    conversions: Vec<Conversion>,
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::Annotation),
        Just(Mode::Response),
        Just(Mode::Tag)
    ]
}

fn key() -> impl Strategy<Value = ResponseKey> {
    prop_oneof![Just(ResponseKey::Oci), Just(ResponseKey::Olareg)]
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        (0u8..3).prop_map(Pick::Base),
        Just(Pick::Index),
        (0u8..2).prop_map(Pick::Child),
        (0u8..8).prop_map(Pick::Earlier),
        (any::<bool>(), 0u8..2).prop_map(|(sha512, which)| Pick::Missing { sha512, which }),
        (0u8..2).prop_map(Pick::Sha512Stored),
    ]
}

fn ref_spec() -> impl Strategy<Value = RefSpec> {
    (
        pick(),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.8, 0u8..3),
        prop::bool::weighted(0.8),
        mode(),
        key(),
    )
        .prop_map(
            |(subject, is_index, artifact_type, annotated, mode, key)| RefSpec {
                subject,
                is_index,
                artifact_type,
                annotated,
                mode,
                key,
            },
        )
}

fn conversion() -> impl Strategy<Value = Conversion> {
    (mode(), key(), any::<bool>()).prop_map(|(to, key, keep)| Conversion { to, key, keep })
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        vec(any::<bool>(), 1..=3),
        any::<bool>(),
        any::<bool>(),
        vec(ref_spec(), 1..=8),
        vec(conversion(), 1..=4),
    )
        .prop_map(
            |(bases, with_index, foreign_entry, referrers, conversions)| Spec {
                bases,
                with_index,
                foreign_entry,
                referrers,
                conversions,
            },
        )
}

// ---- building the layout ------------------------------------------------------------------------

/// One relation as the blobs define it: the referrer's `subject` descriptor and the referrer's
/// referrers-response descriptor (mediaType, digest, size, annotations, artifactType).
#[derive(Debug, Clone, PartialEq)]
struct Edge {
    subject: Value,
    descriptor: Value,
}

impl Edge {
    fn subject_digest(&self) -> Digest {
        self.subject["digest"].as_str().unwrap().parse().unwrap()
    }
}

struct Built {
    _dir: TempDir,
    layout: Layout,
    /// Referrer digest -> its relation.
    expected: BTreeMap<Digest, Edge>,
    /// The referrer descriptors in the order they were recorded, with the mode used.
    recorded: Vec<(Digest, Mode, ResponseKey)>,
    /// Digests of the index.json entries that are not referrer records.
    plain_entries: BTreeSet<Digest>,
    /// Subjects whose blobs are absent.
    missing: BTreeSet<Digest>,
}

impl Built {
    fn subjects(&self) -> BTreeSet<Digest> {
        self.expected.values().map(Edge::subject_digest).collect()
    }

    fn referrers_of(&self, subject: &Digest) -> BTreeSet<Digest> {
        self.expected
            .iter()
            .filter(|(_, e)| &e.subject_digest() == subject)
            .map(|(d, _)| d.clone())
            .collect()
    }
}

fn to_value(d: &Descriptor) -> Value {
    serde_json::to_value(d).unwrap()
}

fn empty_config() -> Value {
    json!({"mediaType": media::EMPTY, "digest": EMPTY_DIGEST, "size": 2})
}

fn image_manifest(annotations: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::IMAGE_MANIFEST,
        "config": empty_config(),
        "layers": [],
        "annotations": annotations,
    }))
    .unwrap()
}

fn build(spec: &Spec) -> Built {
    let dir = TempDir::new().unwrap();
    let layout = Layout::init(dir.path().join("layout")).unwrap();
    let empty = layout.write_blob_bytes(b"{}").unwrap();
    assert_eq!(empty.digest().as_str(), EMPTY_DIGEST);
    let mut plain_entries = BTreeSet::new();

    let mut bases = Vec::new();
    for (i, tagged) in spec.bases.iter().enumerate() {
        let bytes = image_manifest(&json!({"test.base": i.to_string()}));
        let desc = layout
            .put_manifest(&bytes, Some(media::IMAGE_MANIFEST), false)
            .unwrap();
        let tags = if *tagged {
            vec![format!("base-{i}")]
        } else {
            Vec::new()
        };
        layout.add_entry(&desc, &tags).unwrap();
        plain_entries.insert(desc.digest().clone());
        bases.push(desc.plain());
    }

    let mut index = None;
    let mut children = Vec::new();
    if spec.with_index {
        let platforms = [
            json!({"architecture": "amd64", "os": "linux"}),
            json!({"architecture": "arm64", "os": "linux", "variant": "v8", "features": ["x"]}),
        ];
        let mut listed = Vec::new();
        for (j, platform) in platforms.into_iter().enumerate() {
            let bytes = image_manifest(&json!({"test.child": j.to_string()}));
            let desc = layout
                .put_manifest(&bytes, Some(media::IMAGE_MANIFEST), false)
                .unwrap();
            children.push(desc.plain());
            let mut v = to_value(&desc.plain());
            v["platform"] = platform;
            listed.push(v);
        }
        let bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": media::IMAGE_INDEX,
            "manifests": listed,
        }))
        .unwrap();
        let desc = layout
            .put_manifest(&bytes, Some(media::IMAGE_INDEX), false)
            .unwrap();
        layout.add_entry(&desc, &["v1".to_string()]).unwrap();
        plain_entries.insert(desc.digest().clone());
        index = Some(desc.plain());
    }

    if spec.foreign_entry {
        let blob = layout.write_blob_bytes(b"<foreign/>").unwrap();
        let desc = Descriptor::from_value(json!({
            "mediaType": "application/xml",
            "digest": blob.digest().as_str(),
            "size": blob.size(),
            "x-extra": {"k": [1, 2]},
        }))
        .unwrap();
        layout.add_entry(&desc, &[]).unwrap();
        plain_entries.insert(desc.digest().clone());
    }

    let mut missing = BTreeSet::new();
    let mut sha512_stored: BTreeMap<u8, Descriptor> = BTreeMap::new();
    let mut referrers: Vec<Descriptor> = Vec::new();
    let mut expected = BTreeMap::new();
    let mut recorded = Vec::new();
    for (i, r) in spec.referrers.iter().enumerate() {
        let subject = match r.subject {
            Pick::Base(b) => bases[b as usize % bases.len()].clone(),
            Pick::Index if index.is_some() => index.clone().unwrap(),
            Pick::Child(c) if !children.is_empty() => children[c as usize % 2].clone(),
            Pick::Earlier(k) if i > 0 => referrers[k as usize % i].plain(),
            Pick::Missing { sha512, which } => {
                let alg = if sha512 {
                    Algorithm::Sha512
                } else {
                    Algorithm::Sha256
                };
                let d = Digest::of_bytes(alg, format!("never stored {which}").as_bytes());
                missing.insert(d.clone());
                Descriptor::new(media::IMAGE_MANIFEST, d, 1000 + u64::from(which))
            }
            Pick::Sha512Stored(k) => sha512_stored
                .entry(k)
                .or_insert_with(|| {
                    let bytes = image_manifest(&json!({"test.sha512": k.to_string()}));
                    let digest = Digest::of_bytes(Algorithm::Sha512, &bytes);
                    let (d, size) = layout
                        .write_blob(
                            &mut &bytes[..],
                            Expected {
                                digest: Some(digest),
                                size: Some(bytes.len() as u64),
                                ..Default::default()
                            },
                        )
                        .unwrap();
                    assert!(
                        layout
                            .blob_path(&d)
                            .starts_with(layout.root().join("blobs/sha512"))
                    );
                    Descriptor::new(media::IMAGE_MANIFEST, d, size)
                })
                .clone(),
            _ => bases[0].clone(),
        };

        let mt = if r.is_index {
            media::IMAGE_INDEX
        } else {
            media::IMAGE_MANIFEST
        };
        let annotations = json!({
            "test.referrer": i.to_string(),
            "org.opencontainers.image.created": "2020-01-01T00:00:00Z",
        });
        let mut m = Map::new();
        m.insert("schemaVersion".into(), json!(2));
        m.insert("mediaType".into(), json!(mt));
        if let Some(a) = r.artifact_type {
            m.insert("artifactType".into(), json!(ARTIFACT_TYPES[a as usize]));
        }
        if r.is_index {
            m.insert("manifests".into(), json!([]));
        } else {
            m.insert("config".into(), empty_config());
            m.insert("layers".into(), json!([]));
        }
        m.insert("subject".into(), to_value(&subject));
        if r.annotated {
            m.insert("annotations".into(), annotations.clone());
        } else {
            m.insert("x-test-id".into(), json!(i));
        }
        let bytes = serde_json::to_vec(&Value::Object(m)).unwrap();
        let stored = layout.put_manifest(&bytes, Some(mt), true).unwrap();

        // The referrers-response descriptor (distribution-spec): artifactType is the manifest's,
        // else its config media type; an index's, else none.
        let effective = match (r.artifact_type, r.is_index) {
            (Some(a), _) => Some(ARTIFACT_TYPES[a as usize]),
            (None, false) => Some(media::EMPTY),
            (None, true) => None,
        };
        assert_eq!(stored.artifact_type(), effective);
        let mut desc = Descriptor::new(mt, stored.digest().clone(), stored.size());
        if r.annotated {
            desc.set_annotations(annotations.as_object().unwrap().clone());
        }
        if let Some(at) = effective {
            desc.set_artifact_type(at);
        }
        layout
            .record_referrer(&desc, subject.digest(), r.mode, r.key)
            .unwrap();
        expected.insert(
            desc.digest().clone(),
            Edge {
                subject: to_value(&subject),
                descriptor: to_value(&desc),
            },
        );
        recorded.push((desc.digest().clone(), r.mode, r.key));
        referrers.push(desc);
    }
    Built {
        _dir: dir,
        layout,
        expected,
        recorded,
        plain_entries,
        missing,
    }
}

// ---- observing the layout -----------------------------------------------------------------------

fn edges(graph: &Graph) -> BTreeMap<Digest, Edge> {
    graph
        .referrers()
        .iter()
        .map(|r| {
            (
                r.digest().clone(),
                Edge {
                    subject: to_value(&r.subject),
                    descriptor: to_value(&r.descriptor),
                },
            )
        })
        .collect()
}

fn index_bytes(layout: &Layout) -> Vec<u8> {
    fs::read(layout.index_path()).unwrap()
}

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The index.json entries that are not referrer records, serialized as they are in the file.
fn plain_entry_bytes(b: &Built) -> Vec<String> {
    b.layout
        .read_index()
        .unwrap()
        .manifests()
        .iter()
        .filter(|e| b.plain_entries.contains(e.digest()))
        .map(|e| serde_json::to_string(e).unwrap())
        .collect()
}

/// The conventions whose record indexes the test writes (responses, fallback tags).
const RECORD_CONVENTIONS: [Convention; 2] = [Convention::Response, Convention::FallbackTag];

fn convention_of(mode: Mode) -> Option<Convention> {
    match mode {
        Mode::Annotation => None,
        Mode::Response => Some(Convention::Response),
        Mode::Tag => Some(Convention::FallbackTag),
    }
}

/// The record-completeness issues the scan must report for the records `record_referrer` wrote:
/// for each of C (responses, whatever the key) and B (fallback tags) that has at least one
/// record, every referrer not listed there is `record-missing` when its subject has a record
/// of that convention, else `unrecorded` (scan.rs `check_claims`). A subject's records list
/// every referrer of it that was recorded, in whatever mode.
fn initial_record_issues(b: &Built) -> Vec<Issue> {
    let mut issues = Vec::new();
    for convention in RECORD_CONVENTIONS {
        let written: BTreeSet<&Digest> = b
            .recorded
            .iter()
            .filter(|(_, m, _)| convention_of(*m) == Some(convention))
            .map(|(d, _, _)| d)
            .collect();
        if written.is_empty() {
            continue;
        }
        let with_record: BTreeSet<Digest> = written
            .iter()
            .map(|d| b.expected[*d].subject_digest())
            .collect();
        // Every record of a subject lists every referrer of it recorded in any mode (issue 8):
        // recording one updates them all.
        let listed: BTreeSet<&Digest> = b
            .recorded
            .iter()
            .map(|(d, _, _)| d)
            .filter(|d| with_record.contains(&b.expected[*d].subject_digest()))
            .collect();
        for (referrer, edge) in &b.expected {
            if listed.contains(referrer) {
                continue;
            }
            let subject = edge.subject_digest();
            issues.push(if with_record.contains(&subject) {
                Issue::RecordMissing {
                    convention,
                    subject,
                    referrer: referrer.clone(),
                }
            } else {
                Issue::Unrecorded {
                    convention,
                    subject,
                    referrer: referrer.clone(),
                }
            });
        }
    }
    issues
}

/// Asserts the scanned graph is the graph of the blobs, and that the issues are exactly the
/// ones this state must have: `subject-missing` for every absent subject (with its referrers),
/// and the record-completeness issues of the conventions still holding `partial` records.
/// Anything else (record-wrong, annotation-disagrees, subject-mismatch, ambiguous-tag, ...) is
/// a bug: every record in these layouts was written by ocistow from correct descriptors.
fn check_graph(
    ctx: &str,
    b: &Built,
    graph: &Graph,
    partial: &BTreeSet<Convention>,
    initial_issues: &[Issue],
) {
    // The one source of truth is `subject` in the blobs: same relations, same descriptors.
    assert_eq!(edges(graph), b.expected, "{ctx}: graph differs");
    assert_eq!(
        graph.referrers().len(),
        b.expected.len(),
        "{ctx}: a referrer is listed twice"
    );
    let subjects: BTreeSet<Digest> = graph.subjects().iter().cloned().collect();
    assert_eq!(subjects, b.subjects(), "{ctx}: subjects differ");
    for s in &subjects {
        let found: BTreeSet<Digest> = graph
            .referrers_of(s)
            .iter()
            .map(|r| r.digest().clone())
            .collect();
        assert_eq!(found, b.referrers_of(s), "{ctx}: referrers_of({s}) differ");
    }

    let mut want: Vec<Issue> = initial_issues
        .iter()
        .filter(|i| match i {
            Issue::RecordMissing { convention, .. } | Issue::Unrecorded { convention, .. } => {
                partial.contains(convention)
            }
            _ => false,
        })
        .cloned()
        .collect();
    for s in subjects.intersection(&b.missing) {
        want.push(Issue::SubjectMissing {
            subject: s.clone(),
            referrers: Vec::new(), // compared as a set below
        });
    }
    let normalize = |issues: &[Issue]| -> Vec<Issue> {
        let mut v: Vec<Issue> = issues
            .iter()
            .map(|i| match i {
                Issue::SubjectMissing { subject, referrers } => {
                    let listed: BTreeSet<Digest> = referrers.iter().cloned().collect();
                    assert_eq!(
                        listed,
                        b.referrers_of(subject),
                        "{ctx}: subject-missing {subject} lists the wrong referrers"
                    );
                    Issue::SubjectMissing {
                        subject: subject.clone(),
                        referrers: Vec::new(),
                    }
                }
                other => other.clone(),
            })
            .collect();
        v.sort();
        v
    };
    let got = normalize(graph.issues());
    want.sort();
    assert_eq!(
        got,
        want,
        "{ctx}: issues differ; got {:#?}",
        graph
            .issues()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    );
}

/// After converting to `c`, the target convention's records are complete and well-formed.
fn check_target_records(ctx: &str, b: &Built, c: Conversion) {
    let index = b.layout.read_index().unwrap();
    let entries = index.manifests();
    match c.to {
        Mode::Annotation => {
            // D + A: one untagged top-level entry per referrer, annotated with its subject,
            // carrying artifactType and the manifest's annotations.
            for (r, edge) in &b.expected {
                let found: Vec<&Descriptor> = entries
                    .iter()
                    .filter(|e| e.digest() == r && e.ref_name().is_none())
                    .collect();
                assert_eq!(found.len(), 1, "{ctx}: entries for referrer {r}: {found:?}");
                let e = found[0];
                let subject = edge.subject_digest();
                assert_eq!(
                    e.annotation(keys::CONTAINERD_SUBJECT),
                    Some(subject.as_str()),
                    "{ctx}: {r}"
                );
                assert_eq!(
                    e.artifact_type(),
                    edge.descriptor["artifactType"].as_str(),
                    "{ctx}: {r}"
                );
                if let Some(Value::Object(want)) = edge.descriptor.get("annotations") {
                    for (k, v) in want {
                        assert_eq!(e.annotation(k), v.as_str(), "{ctx}: {r} annotation {k}");
                    }
                }
            }
        }
        Mode::Response | Mode::Tag => {
            // B / C: one record index per subject listing exactly its referrers' descriptors,
            // sorted by digest; none for anything else.
            let is_record = |e: &Descriptor, s: &Digest| match c.to {
                Mode::Response => e.annotation(c.key.subject_key()) == Some(s.as_str()),
                _ => {
                    e.ref_name() == Some(fallback_tag(s).as_str())
                        && e.media_type() == media::IMAGE_INDEX
                }
            };
            for s in b.subjects() {
                let found: Vec<&Descriptor> = entries.iter().filter(|e| is_record(e, &s)).collect();
                assert_eq!(found.len(), 1, "{ctx}: records for {s}: {found:?}");
                let bytes = b.layout.read_blob(found[0].digest()).unwrap();
                let listing = ImageIndex::parse(&bytes).unwrap();
                let listed: Vec<&Digest> =
                    listing.manifests().iter().map(Descriptor::digest).collect();
                assert!(
                    listed.windows(2).all(|w| w[0] < w[1]),
                    "{ctx}: record for {s} is not sorted by digest: {listed:?}"
                );
                let listed: BTreeSet<Digest> = listed.into_iter().cloned().collect();
                assert_eq!(listed, b.referrers_of(&s), "{ctx}: record for {s}");
                for d in listing.manifests() {
                    assert_eq!(
                        to_value(d),
                        b.expected[d.digest()].descriptor,
                        "{ctx}: record for {s} lists a wrong descriptor"
                    );
                }
            }
            let record_entries = entries
                .iter()
                .filter(|e| match c.to {
                    Mode::Response => e.annotation(c.key.subject_key()).is_some(),
                    _ => e
                        .ref_name()
                        .is_some_and(crate::referrers::looks_like_fallback_tag),
                })
                .count();
            assert_eq!(
                record_entries,
                b.subjects().len(),
                "{ctx}: stale or duplicate records"
            );
        }
    }
    if !c.keep {
        // Without --keep only the target convention's records remain next to the plain entries.
        for e in entries {
            if b.plain_entries.contains(e.digest()) {
                continue;
            }
            let ok = match c.to {
                Mode::Annotation => {
                    b.expected.contains_key(e.digest())
                        && e.ref_name().is_none()
                        && e.annotation(keys::CONTAINERD_SUBJECT).is_some()
                }
                Mode::Response => {
                    e.annotation(c.key.subject_key()).is_some()
                        && e.annotation(keys::CONTAINERD_SUBJECT).is_none()
                        && e.ref_name().is_none()
                }
                Mode::Tag => {
                    e.ref_name()
                        .is_some_and(crate::referrers::looks_like_fallback_tag)
                        && e.annotation(keys::OCI_RESPONSE_SUBJECT).is_none()
                        && e.annotation(keys::OLAREG_RESPONSE_SUBJECT).is_none()
                }
            };
            assert!(ok, "{ctx}: entry left from another convention: {e:?}");
        }
        let expected_mode = match c.to {
            Mode::Response => (Mode::Response, c.key),
            m => (m, ResponseKey::Oci),
        };
        assert_eq!(
            b.layout.referrers_mode_in_use().unwrap(),
            Some(expected_mode),
            "{ctx}: mode in use"
        );
    }
}

fn check_convert_flags(ctx: &str, b: &Built, flags: &BTreeSet<&'static str>) {
    let index = b.layout.read_index().unwrap();
    for k in [ResponseKey::Oci, ResponseKey::Olareg] {
        let want = flags.contains(k.convert_key()).then_some("true");
        assert_eq!(
            index.annotation(k.convert_key()),
            want,
            "{ctx}: top-level {}",
            k.convert_key()
        );
    }
}

fn run_graph_case(spec: &Spec) {
    let b = build(spec);
    let layout = &b.layout;
    let plain_before = plain_entry_bytes(&b);
    let initial_issues = initial_record_issues(&b);
    // Conventions whose records may be partial (as record_referrer left them, per subject).
    let mut partial: BTreeSet<Convention> = RECORD_CONVENTIONS.into_iter().collect();
    // Top-level convert flags: record_referrer in response mode sets its key's flag.
    let mut flags: BTreeSet<&'static str> = b
        .recorded
        .iter()
        .filter(|(_, m, _)| *m == Mode::Response)
        .map(|(_, _, k)| k.convert_key())
        .collect();

    // Every referrer was recorded somewhere reachable from index.json: a plain scan sees them all.
    let graph = layout.scan_referrers(ScanOptions::default()).unwrap();
    check_graph(
        "after record_referrer",
        &b,
        &graph,
        &partial,
        &initial_issues,
    );
    check_convert_flags("after record_referrer", &b, &flags);

    // referrers_mode_in_use: Some only when every record is of one mode (and, for responses,
    // one key). "Converting to the mode already in place changes nothing."
    let norm = |m: Mode, k: ResponseKey| match m {
        Mode::Response => (m, k),
        _ => (m, ResponseKey::Oci),
    };
    let used: BTreeSet<(&str, &str)> = b
        .recorded
        .iter()
        .map(|(_, m, k)| {
            let (m, k) = norm(*m, *k);
            (m.as_str(), k.subject_key())
        })
        .collect();
    let in_use = layout.referrers_mode_in_use().unwrap();
    if used.len() == 1 {
        let (m, k) = norm(b.recorded[0].1, b.recorded[0].2);
        assert_eq!(in_use, Some((m, k)), "uniform mode not detected");
        for keep in [true, false] {
            let before = index_bytes(layout);
            let report = layout.convert_referrers(m, k, keep, false).unwrap();
            assert_eq!(
                index_bytes(layout),
                before,
                "converting to the mode in place ({m:?}, {k:?}, keep={keep}) changed index.json"
            );
            assert!(!report.changed, "{report:?}");
        }
    } else {
        assert_eq!(in_use, None, "mixed modes reported as one");
    }

    for (step, &c) in spec.conversions.iter().enumerate() {
        let ctx = format!("after conversion {step} {c:?}");
        let blobs_before = snapshot(&layout.root().join("blobs"));
        let index_before = index_bytes(layout);

        // A dry run changes no byte of index.json and reports what the real run then does.
        let dry = layout.convert_referrers(c.to, c.key, c.keep, true).unwrap();
        assert!(dry.dry_run);
        assert_eq!(
            index_bytes(layout),
            index_before,
            "{ctx}: dry run changed index.json"
        );

        let report = layout
            .convert_referrers(c.to, c.key, c.keep, false)
            .unwrap();
        assert_eq!(report.referrers, b.expected.len(), "{ctx}: {report:?}");
        assert_eq!(
            report.changed,
            index_bytes(layout) != index_before,
            "{ctx}: report.changed is wrong: {report:?}"
        );
        assert_eq!(
            (dry.changed, dry.added, dry.updated, dry.removed),
            (report.changed, report.added, report.updated, report.removed),
            "{ctx}: the dry run reported something else than the run: {dry:?} vs {report:?}"
        );

        // Track what the conversion must leave: with keep, the other conventions' records stay
        // exactly as they were (so their completeness issues stay); the target's are complete.
        // Without keep, the other conventions' records are gone.
        if c.keep {
            if let Some(conv) = convention_of(c.to) {
                partial.remove(&conv);
            }
            if c.to == Mode::Response {
                flags.insert(c.key.convert_key());
            }
        } else {
            partial.clear();
            flags.clear();
            if c.to == Mode::Response {
                flags.insert(c.key.convert_key());
            }
        }

        let graph = layout.scan_referrers(ScanOptions::default()).unwrap();
        check_graph(&ctx, &b, &graph, &partial, &initial_issues);
        check_target_records(&ctx, &b, c);
        check_convert_flags(&ctx, &b, &flags);

        // Entries that are not referrer records keep their position and bytes.
        assert_eq!(
            plain_entry_bytes(&b),
            plain_before,
            "{ctx}: non-record entries changed"
        );
        // Blobs are never rewritten or deleted (old records are left for gc).
        let blobs_after = snapshot(&layout.root().join("blobs"));
        for (path, bytes) in &blobs_before {
            assert!(
                blobs_after.get(path) == Some(bytes),
                "{ctx}: blob {path} rewritten or deleted"
            );
        }

        // Converting to the mode already in place changes nothing.
        let after = index_bytes(layout);
        let again = layout
            .convert_referrers(c.to, c.key, c.keep, false)
            .unwrap();
        assert_eq!(
            index_bytes(layout),
            after,
            "{ctx}: the same conversion again changed index.json"
        );
        assert!(
            !again.changed && again.added == 0 && again.updated == 0 && again.removed == 0,
            "{ctx}: the same conversion again reported work: {again:?}"
        );
    }

    // A deep scan also reads every blob (old records included) and finds the same graph:
    // everything is reachable from index.json, so nothing is `only-deep-scan`.
    let shallow = layout.scan_referrers(ScanOptions::default()).unwrap();
    let deep = layout
        .scan_referrers(ScanOptions::default().deep(true))
        .unwrap();
    assert_eq!(edges(&deep), b.expected, "deep scan graph differs");
    assert_eq!(deep.issues(), shallow.issues(), "deep scan issues differ");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        // Keep the source tree clean: no `.proptest-regressions` file next to this one.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn graph_survives_random_writes_and_conversions(spec in spec()) {
        run_graph_case(&spec);
    }

    #[test]
    fn dry_run_convert_writes_nothing(spec in spec()) {
        let b = build(&spec);
        for c in &spec.conversions {
            let before = snapshot(b.layout.root());
            let report = b.layout.convert_referrers(c.to, c.key, c.keep, true).unwrap();
            let after = snapshot(b.layout.root());
            let added: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
            prop_assert!(
                before == after,
                "dry run {c:?} ({report:?}) changed the layout; new files: {added:?}"
            );
            // Move on to the next state, so later dry runs start from converted layouts.
            b.layout.convert_referrers(c.to, c.key, c.keep, false).unwrap();
        }
    }
}

// ---- index.json round trip ----------------------------------------------------------------------

/// JSON values without floats (integers, strings with escapes and non-ASCII, nesting); floats
/// have their own property below.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        "[a-z\"\\\\/\n\t\u{e9}\u{1F600}\u{7f}\u{0}]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..3).prop_map(Value::Array),
            vec(("[a-z]{1,4}", inner), 0..3).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Unknown fields: `x-<name>` keys, so they never collide with known ones.
fn unknown_fields() -> impl Strategy<Value = Vec<(String, Value)>> {
    vec(("x-[a-z]{1,5}", json_value()), 0..3)
}

fn shuffled_object(pairs: Vec<(String, Value)>) -> impl Strategy<Value = Value> {
    Just(pairs)
        .prop_shuffle()
        .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
}

/// Absent, empty, or some annotations.
fn annotations() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(json!({}))),
        vec(
            (
                prop_oneof![
                    Just(REF_NAME.to_string()),
                    Just("org.opencontainers.image.created".to_string()),
                    "[a-z.]{1,12}",
                ],
                "[ -~\u{e9}]{0,10}",
            ),
            1..4
        )
        .prop_map(|kv| Some(Value::Object(
            kv.into_iter().map(|(k, v)| (k, Value::from(v))).collect()
        ))),
    ]
}

fn platform() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("amd64"), Just("arm64"), Just("s390x")],
        prop_oneof![Just("linux"), Just("windows")],
        prop::option::of("[0-9.]{1,8}"),
        prop::option::of(vec("[a-z0-9]{1,6}", 0..3)),
        prop::option::of(prop_oneof![Just("v7"), Just("v8")]),
        prop::option::of(vec("[a-z0-9]{1,6}", 0..3)),
        unknown_fields(),
    )
        .prop_flat_map(|(arch, os, osv, osf, variant, features, unknown)| {
            let mut pairs = vec![
                ("architecture".to_string(), json!(arch)),
                ("os".to_string(), json!(os)),
            ];
            if let Some(v) = osv {
                pairs.push(("os.version".into(), json!(v)));
            }
            if let Some(v) = osf {
                pairs.push(("os.features".into(), json!(v)));
            }
            if let Some(v) = variant {
                pairs.push(("variant".into(), json!(v)));
            }
            if let Some(v) = features {
                pairs.push(("features".into(), json!(v)));
            }
            pairs.extend(unknown);
            shuffled_object(pairs)
        })
}

fn descriptor() -> impl Strategy<Value = Value> {
    (
        prop::option::weighted(
            0.9,
            prop_oneof![
                Just(media::IMAGE_MANIFEST),
                Just(media::IMAGE_INDEX),
                Just("application/xml"),
                Just(media::DOCKER_MANIFEST),
            ],
        ),
        (any::<bool>(), vec(any::<u8>(), 0..8)),
        any::<u64>(),
        annotations(),
        prop::option::weighted(0.3, platform()),
        prop::option::weighted(0.2, vec("https://[a-z]{1,5}\\.invalid/[a-z]{0,5}", 0..3)),
        prop::option::weighted(0.2, Just("e30=")),
        prop::option::weighted(0.3, Just("application/vnd.example.sbom")),
        unknown_fields(),
    )
        .prop_flat_map(
            |(mt, (sha512, content), size, ann, platform, urls, data, at, unknown)| {
                let alg = if sha512 {
                    Algorithm::Sha512
                } else {
                    Algorithm::Sha256
                };
                let mut pairs = vec![
                    (
                        "digest".to_string(),
                        json!(Digest::of_bytes(alg, &content).as_str()),
                    ),
                    ("size".to_string(), json!(size)),
                ];
                let optional = [
                    ("mediaType", mt.map(Value::from)),
                    ("annotations", ann),
                    ("platform", platform),
                    ("urls", urls.map(Value::from)),
                    ("data", data.map(Value::from)),
                    ("artifactType", at.map(Value::from)),
                ];
                for (k, v) in optional {
                    if let Some(v) = v {
                        pairs.push((k.to_string(), v));
                    }
                }
                pairs.extend(unknown);
                shuffled_object(pairs)
            },
        )
}

fn index_json() -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        any::<bool>(),
        vec(descriptor(), 0..4),
        annotations(),
        prop::option::weighted(0.2, descriptor()),
        prop::option::weighted(0.2, Just("application/vnd.example")),
        unknown_fields(),
    )
        .prop_flat_map(|(schema, mt, manifests, ann, subject, at, unknown)| {
            let mut pairs = vec![("manifests".to_string(), Value::Array(manifests))];
            if schema {
                pairs.push(("schemaVersion".into(), json!(2)));
            }
            if mt {
                pairs.push(("mediaType".into(), json!(media::IMAGE_INDEX)));
            }
            for (k, v) in [
                ("annotations", ann),
                ("subject", subject),
                ("artifactType", at.map(Value::from)),
            ] {
                if let Some(v) = v {
                    pairs.push((k.to_string(), v));
                }
            }
            pairs.extend(unknown);
            shuffled_object(pairs)
        })
}

fn check_round_trip(value: &Value) -> Result<(), TestCaseError> {
    let bytes = serde_json::to_vec(value).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let parsed = ImageIndex::parse(&bytes)
        .map_err(|e| TestCaseError::fail(format!("parse failed: {e}\n{text}")))?;
    prop_assert_eq!(
        String::from_utf8_lossy(&parsed.to_vec()).into_owned(),
        text.clone(),
        "to_vec differs from the input"
    );
    let input = value["manifests"].as_array().unwrap();
    prop_assert_eq!(parsed.manifests().len(), input.len());
    for (d, v) in parsed.manifests().iter().zip(input) {
        // Each descriptor serializes back to its own bytes; absent and empty annotations stay so.
        prop_assert_eq!(
            serde_json::to_vec(d).unwrap(),
            serde_json::to_vec(v).unwrap()
        );
        prop_assert_eq!(
            d.annotations().map(Map::len),
            v.get("annotations")
                .and_then(Value::as_object)
                .map(Map::len)
        );
    }
    prop_assert_eq!(
        parsed.annotations().map(Map::len),
        value
            .get("annotations")
            .and_then(Value::as_object)
            .map(Map::len)
    );
    prop_assert_eq!(&ImageIndex::parse(&parsed.to_vec()).unwrap(), &parsed);
    Ok(())
}

/// The same objects as `index.json` of a layout: a write that adds an entry changes only the
/// `manifests` list (the new entry appended); a convert with no referrers changes nothing.
fn check_layout_writes(value: &Value, c: Conversion) -> Result<(), TestCaseError> {
    let bytes = serde_json::to_vec(value).unwrap();
    // Generated entries could look like referrer records; only plain ones are checked here.
    let has_record_like = ImageIndex::parse(&bytes)
        .unwrap()
        .manifests()
        .iter()
        .any(|d| {
            d.ref_name()
                .is_some_and(crate::referrers::looks_like_fallback_tag)
        });
    let dir = TempDir::new().unwrap();
    let layout = Layout::init(dir.path().join("l")).unwrap();
    fs::write(layout.index_path(), &bytes).unwrap();

    if !has_record_like {
        layout
            .convert_referrers(c.to, c.key, c.keep, false)
            .unwrap();
        prop_assert_eq!(
            String::from_utf8_lossy(&index_bytes(&layout)).into_owned(),
            String::from_utf8_lossy(&bytes).into_owned(),
            "convert {:?} of an index.json without referrers changed it",
            c
        );
    }

    let blob = layout.write_blob_bytes(b"{}").unwrap();
    let entry = Descriptor::new(media::EMPTY, blob.digest().clone(), blob.size());
    let mut want = value.clone();
    let listed = want["manifests"].as_array_mut().unwrap();
    if !listed
        .iter()
        .any(|d| d["digest"].as_str() == Some(blob.digest().as_str()))
    {
        listed.push(to_value(&entry));
    }
    layout.add_entry(&entry, &[]).unwrap();
    prop_assert_eq!(
        String::from_utf8_lossy(&index_bytes(&layout)).into_owned(),
        String::from_utf8_lossy(&serde_json::to_vec(&want).unwrap()).into_owned(),
        "add_entry changed more than the manifests list"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn index_json_round_trip_is_lossless(value in index_json(), c in conversion()) {
        check_round_trip(&value)?;
        check_layout_writes(&value, c)?;
    }

    /// An unknown field holding a float, as serde_json writes it (shortest digits that read
    /// back as the same f64), must come back with the same digits, at the top level and in an
    /// entry.
    #[test]
    fn index_json_float_fields_round_trip(
        f in any::<f64>().prop_filter("finite", |f| f.is_finite()),
        in_entry in any::<bool>(),
    ) {
        let value = if in_entry {
            json!({"schemaVersion": 2, "manifests": [
                {"mediaType": media::EMPTY, "digest": EMPTY_DIGEST, "size": 2, "x-float": f},
            ]})
        } else {
            json!({"schemaVersion": 2, "manifests": [], "x-float": f})
        };
        check_round_trip(&value)?;
    }
}
