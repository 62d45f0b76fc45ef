//! The referrers graph a scan yields: subjects, their referrers, and discover trees.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Convention, Issue};
use crate::digest::{Digest, DigestMap, DigestSet};
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
    pub(super) position: DigestMap<usize>,
    pub(super) by_subject: DigestMap<Vec<usize>>,
    pub(super) subject_order: Vec<Digest>,
    pub(super) issues: Vec<Issue>,
    /// Subjects that have a record of each convention (C and B), for convert and status.
    pub(crate) records: HashMap<Convention, usize>,
    /// `index.json` entries with an exact fallback tag whose listing holds only referrers of
    /// that tag's digest: the only fallback tags that are records.
    pub(super) fallback_records: DigestSet,
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
            referrers: Below::Nodes(&self.referrers),
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
            referrers: Below::Nothing,
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
    referrers: Below<'a>,
}

/// What an oras JSON object lists below its descriptor.
enum Below<'a> {
    /// No `referrers` member (a descriptor, not a discover node).
    Nothing,
    /// The referrers of a tree already built.
    Nodes(&'a [Node]),
    /// The referrers in the graph, down to this many levels, found as they are written.
    Graph(&'a Levels<'a>, Option<usize>),
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
        match self.referrers {
            Below::Nothing => {}
            Below::Nodes(nodes) => m.serialize_entry("referrers", &OrasList(self.prefix, nodes))?,
            Below::Graph(levels, depth) => m.serialize_entry(
                "referrers",
                &GraphList {
                    levels,
                    prefix: self.prefix,
                    subject: d,
                    depth,
                },
            )?,
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

/// What every level of a tree written straight from the graph shares.
struct Levels<'a> {
    graph: &'a Graph,
    types: &'a [String],
    /// The levels from the root down to the one being written, by position in the graph
    /// (`usize::MAX` for a root that is no referrer): a cycle is cut where [`Graph::tree`]
    /// cuts it.
    path: RefCell<HashSet<usize>>,
}

/// The referrers of `subject` (filtered, down to `depth`), as [`Graph::subtree`] lists them.
struct GraphList<'a> {
    levels: &'a Levels<'a>,
    prefix: &'a str,
    subject: &'a Descriptor,
    depth: Option<usize>,
}

impl Serialize for GraphList<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let Levels { graph, types, path } = self.levels;
        let digest = self.subject.digest();
        let key = graph.position.get(digest).copied().unwrap_or(usize::MAX);
        let mut seq = s.serialize_seq(None)?;
        if self.depth != Some(0) && path.borrow_mut().insert(key) {
            let below = self.depth.map(|d| d - 1);
            for &i in graph.by_subject.get(digest).map_or(&[][..], Vec::as_slice) {
                let r = &graph.referrers[i];
                let at = r.descriptor.artifact_type().unwrap_or("");
                if !types.is_empty() && !types.iter().any(|t| t == at) {
                    continue;
                }
                seq.serialize_element(&Oras {
                    prefix: self.prefix,
                    descriptor: &r.descriptor,
                    referrers: Below::Graph(self.levels, below),
                })?;
            }
            path.borrow_mut().remove(&key);
        }
        seq.end()
    }
}

/// [`Graph::oras_tree`]'s answer.
struct OrasTree<'a> {
    levels: Levels<'a>,
    root: &'a Descriptor,
    depth: Option<usize>,
    prefix: &'a str,
}

impl Serialize for OrasTree<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Oras {
            prefix: self.prefix,
            descriptor: self.root,
            referrers: Below::Graph(&self.levels, self.depth),
        }
        .serialize(s)
    }
}

impl Graph {
    /// `self.tree(root, artifact_types, depth).oras_json(prefix)`, written straight from the
    /// graph: no tree (a copy of every referrer's descriptor) is built only to be printed.
    pub fn oras_tree<'a>(
        &'a self,
        root: &'a Descriptor,
        artifact_types: &'a [String],
        depth: Option<usize>,
        prefix: &'a str,
    ) -> impl Serialize + 'a {
        OrasTree {
            levels: Levels {
                graph: self,
                types: artifact_types,
                path: RefCell::new(HashSet::new()),
            },
            root,
            depth,
            prefix,
        }
    }
}

impl Graph {
    /// The referrers of `root`, recursively, keeping only `artifact_types` when some are given,
    /// down to `depth` levels (all when `None`). Cycles are cut.
    pub fn tree(&self, root: &Descriptor, artifact_types: &[String], depth: Option<usize>) -> Node {
        let mut path = DigestSet::default();
        self.subtree(root.clone(), artifact_types, depth, &mut path)
    }

    fn subtree(
        &self,
        descriptor: Descriptor,
        types: &[String],
        depth: Option<usize>,
        path: &mut DigestSet,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    fn desc(name: &str, artifact_type: &str) -> Descriptor {
        let mut d = Descriptor::new(
            "application/vnd.oci.image.manifest.v1+json",
            Digest::of_bytes(Algorithm::Sha256, name.as_bytes()),
            name.len() as u64,
        );
        d.set_artifact_type(artifact_type);
        d.set_annotation("name", name);
        d
    }

    #[test]
    fn the_tree_written_from_the_graph_is_the_tree_built() {
        // root <- c <- e, root <- f; a <- b <- a (a cycle), b <- d: roots that are referrers.
        let [root, ma, mb, mc, md, me, mf] = [
            ("root", "t/root"),
            ("a", "t/x"),
            ("b", "t/y"),
            ("c", "t/x"),
            ("d", "t/y"),
            ("e", "t/y"),
            ("f", "t/y"),
        ]
        .map(|(n, t)| desc(n, t));
        let mut graph = Graph::default();
        for (referrer, subject) in [
            (&mc, &root),
            (&me, &mc),
            (&mf, &root),
            (&mb, &ma),
            (&ma, &mb),
            (&md, &mb),
        ] {
            graph.add(referrer.clone(), subject.plain(), Convention::Plain);
        }
        assert!(
            serde_json::to_string(&graph.tree(&ma, &[], None).oras_json("P"))
                .unwrap()
                .contains(r#""referrers":[]"#),
            "the cycle is cut"
        );
        let stranger = desc("absent", "t/z");
        let types: [&[String]; 3] = [&[], &["t/x".to_string()], &["t/y".to_string()]];
        for top in [&root, &ma, &mb, &mc, &stranger] {
            for t in types {
                for depth in [None, Some(0), Some(1), Some(2), Some(5)] {
                    let built =
                        serde_json::to_string_pretty(&graph.tree(top, t, depth).oras_json("P"))
                            .unwrap();
                    let direct =
                        serde_json::to_string_pretty(&graph.oras_tree(top, t, depth, "P")).unwrap();
                    assert_eq!(direct, built, "{top:?} {t:?} {depth:?}");
                }
            }
        }
    }
}
