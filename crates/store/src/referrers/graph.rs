//! The referrers graph a scan yields: subjects, their referrers, and discover trees.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Convention, Issue};
use crate::digest::Digest;
use crate::model::Descriptor;

/// One referrer: its descriptor as a referrers response lists it, the `subject` its blob names,
/// and every convention that records (or found) it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Referrer {
    /// The referrer as a referrers response lists it.
    pub descriptor: Descriptor,
    /// The `subject` its blob names.
    pub subject: Descriptor,
    /// Every convention that records (or found) it.
    pub recorded: Conventions,
}

/// A set of conventions, as bits: a referrer's set costs no allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Conventions(u8);

impl Conventions {
    /// Every convention, in the order of [`Convention`].
    const ALL: &'static [Convention; 7] = &[
        Convention::Plain,
        Convention::FallbackTag,
        Convention::Response,
        Convention::SubjectAnnotation,
        Convention::Attestation,
        Convention::Nested,
        Convention::DeepScan,
    ];

    fn bit(c: Convention) -> u8 {
        1 << (c as u8)
    }

    /// The set of `c` alone.
    pub fn of(c: Convention) -> Self {
        Conventions(Self::bit(c))
    }

    /// True when `c` is in the set.
    pub fn contains(&self, c: &Convention) -> bool {
        self.0 & Self::bit(*c) != 0
    }

    /// Adds `c`; true when it was not there.
    pub fn insert(&mut self, c: Convention) -> bool {
        let new = !self.contains(&c);
        self.0 |= Self::bit(c);
        new
    }

    /// How many conventions are in the set.
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The conventions in the set, in the order of [`Convention`].
    pub fn iter(&self) -> impl Iterator<Item = &'static Convention> + '_ {
        Self::ALL.iter().filter(|c| self.contains(c))
    }
}

impl Referrer {
    /// The referrer's digest.
    pub fn digest(&self) -> &Digest {
        self.descriptor.digest()
    }
}

/// The referrers graph of a layout.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub(super) referrers: Vec<Referrer>,
    pub(super) position: HashMap<Digest, usize>,
    pub(super) by_subject: HashMap<Digest, Vec<usize>>,
    pub(super) subject_order: Vec<Digest>,
    pub(super) issues: Vec<Issue>,
    /// Subjects that have a record of each convention (C and B), for convert and status.
    pub(crate) records: HashMap<Convention, usize>,
    /// `index.json` entries with an exact fallback tag whose listing holds only referrers of
    /// that tag's digest: the only fallback tags that are records.
    pub(super) fallback_records: HashSet<Digest>,
}

impl Graph {
    /// Every referrer, in the order the scan met them.
    pub fn referrers(&self) -> &[Referrer] {
        &self.referrers
    }

    /// The direct referrers of `subject`, in discovery order.
    pub fn referrers_of(&self, subject: &Digest) -> Vec<&Referrer> {
        self.by_subject
            .get(subject)
            .map(|v| v.iter().map(|&i| &self.referrers[i]).collect())
            .unwrap_or_default()
    }

    /// The referrer with this digest, when the scan found it.
    pub fn get(&self, referrer: &Digest) -> Option<&Referrer> {
        self.position.get(referrer).map(|&i| &self.referrers[i])
    }

    /// Subjects with at least one referrer, in discovery order.
    pub fn subjects(&self) -> &[Digest] {
        &self.subject_order
    }

    /// Inconsistencies found, sorted.
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// How many referrers are recorded in `convention`.
    pub fn count(&self, convention: Convention) -> usize {
        self.referrers
            .iter()
            .filter(|r| r.recorded.contains(&convention))
            .count()
    }

    /// True when `entry` is a fallback-tag record: its tag is exactly the fallback tag of a
    /// digest, it is an image index, and everything it lists is a referrer of that digest.
    /// Anything else with a tag is a root, kept by every command.
    pub fn is_fallback_record(&self, entry: &Descriptor) -> bool {
        entry.ref_name().is_some() && self.fallback_records.contains(entry.digest())
    }

    /// How many record indexes (responses, fallback tags) of `convention` index.json lists.
    pub fn record_count(&self, convention: Convention) -> usize {
        self.records.get(&convention).copied().unwrap_or(0)
    }

    /// Adds `via` to a referrer already in the graph; false when it is not.
    pub(super) fn add_via(&mut self, referrer: &Digest, via: Convention) -> bool {
        match self.position.get(referrer) {
            Some(&i) => {
                self.referrers[i].recorded.insert(via);
                true
            }
            None => false,
        }
    }

    pub(super) fn add(&mut self, descriptor: Descriptor, subject: Descriptor, via: Convention) {
        if let Some(&i) = self.position.get(descriptor.digest()) {
            self.referrers[i].recorded.insert(via);
            return;
        }
        let i = self.referrers.len();
        self.position.insert(descriptor.digest().clone(), i);
        // Most referrers share a subject: its digest is copied only for the first.
        if let Some(list) = self.by_subject.get_mut(subject.digest()) {
            list.push(i);
        } else {
            self.by_subject.insert(subject.digest().clone(), vec![i]);
            self.subject_order.push(subject.digest().clone());
        }
        self.referrers.push(Referrer {
            descriptor,
            subject,
            recorded: Conventions::of(via),
        });
    }
}

/// A node of a discover tree: a manifest and the referrers below it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Node {
    /// The manifest of this node.
    pub descriptor: Descriptor,
    /// Its referrers, each with theirs.
    pub referrers: Vec<Node>,
}

impl Node {
    /// A node for `descriptor` with these referrers (a tree read from elsewhere, a registry say).
    pub fn new(descriptor: Descriptor, referrers: Vec<Node>) -> Self {
        Node {
            descriptor,
            referrers,
        }
    }

    /// The node as `oras discover --format json` prints it, `reference` being
    /// `<prefix>@<digest>`: reference, mediaType, digest, size, annotations, artifactType,
    /// then the nested referrers.
    pub fn to_oras_json(&self, prefix: &str) -> Value {
        serde_json::to_value(self.oras_json(prefix)).unwrap_or_default()
    }

    /// [`Node::to_oras_json`] written straight to a serializer: no JSON value is built for a
    /// tree of 100,000 referrers only to be printed.
    pub fn oras_json<'a>(&'a self, prefix: &'a str) -> impl Serialize + 'a {
        Oras {
            prefix,
            descriptor: &self.descriptor,
            referrers: Some(&self.referrers),
        }
    }

    /// A descriptor as oras's `--format json` prints one (a discover node without its
    /// referrers; the CLI's push, attach and pull print the same): `reference`
    /// (`<prefix>@<digest>`), `mediaType`, `digest`, `size`, then `annotations` and
    /// `artifactType` when the descriptor has them.
    pub fn oras_descriptor(prefix: &str, d: &Descriptor) -> Map<String, Value> {
        let oras = Oras {
            prefix,
            descriptor: d,
            referrers: None,
        };
        match serde_json::to_value(oras) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        }
    }
}

/// The one writer of oras's JSON for a descriptor, and a discover node's referrers below it.
struct Oras<'a> {
    prefix: &'a str,
    descriptor: &'a Descriptor,
    referrers: Option<&'a [Node]>,
}

impl Serialize for Oras<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let d = self.descriptor;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("reference", &format_args!("{}@{}", self.prefix, d.digest()))?;
        m.serialize_entry("mediaType", d.media_type())?;
        m.serialize_entry("digest", d.digest().as_str())?;
        m.serialize_entry("size", &d.size())?;
        if let Some(a) = d.annotations() {
            m.serialize_entry("annotations", a)?;
        }
        if let Some(at) = d.artifact_type() {
            m.serialize_entry("artifactType", at)?;
        }
        if let Some(nodes) = self.referrers {
            m.serialize_entry("referrers", &OrasList(self.prefix, nodes))?;
        }
        m.end()
    }
}

struct OrasList<'a>(&'a str, &'a [Node]);

impl Serialize for OrasList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.1.iter().map(|n| n.oras_json(self.0)))
    }
}

impl Graph {
    /// The referrers of `root`, recursively, keeping only `artifact_types` when some are given,
    /// down to `depth` levels (all when `None`). Cycles are cut.
    pub fn tree(&self, root: &Descriptor, artifact_types: &[String], depth: Option<usize>) -> Node {
        let mut path = HashSet::new();
        self.subtree(root.clone(), artifact_types, depth, &mut path)
    }

    fn subtree(
        &self,
        descriptor: Descriptor,
        types: &[String],
        depth: Option<usize>,
        path: &mut HashSet<Digest>,
    ) -> Node {
        let mut referrers = Vec::new();
        if depth != Some(0) && path.insert(descriptor.digest().clone()) {
            for r in self.referrers_of(descriptor.digest()) {
                let at = r.descriptor.artifact_type().unwrap_or("");
                if !types.is_empty() && !types.iter().any(|t| t == at) {
                    continue;
                }
                referrers.push(self.subtree(
                    r.descriptor.clone(),
                    types,
                    depth.map(|d| d - 1),
                    path,
                ));
            }
            path.remove(descriptor.digest());
        }
        Node {
            descriptor,
            referrers,
        }
    }
}
