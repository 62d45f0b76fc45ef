//! References to content in a layout: `DIR:TAG`, `DIR@DIGEST`, a plain `DIR`, and resolution of
//! them against `index.json`. Ambiguity is reported, never guessed.

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::{Error, Result, Subject};
use crate::layout::Layout;
use crate::model::{Descriptor, ImageIndex, Manifest, Platform};

/// What a reference names inside a layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A tag: an `org.opencontainers.image.ref.name` value.
    Tag(String),
    /// A digest, listed in `index.json` or only present under `blobs/`.
    Digest(Digest),
    /// The layout's single entry (a plain `DIR`).
    Only,
}

/// A layout directory plus what to find in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The layout directory.
    pub dir: PathBuf,
    /// What to find in it.
    pub target: Target,
}

impl Reference {
    /// Parses `DIR`, `DIR:TAG` or `DIR@DIGEST`. The tag is what follows the last `:` after the
    /// last `/`; names containing `:` or `/` need [`Reference::in_layout`].
    ///
    /// ```
    /// use ocistow_store::{Reference, reference::Target};
    /// let r = Reference::parse("out/layout:v1").unwrap();
    /// assert_eq!(r.dir.to_str(), Some("out/layout"));
    /// assert_eq!(r.target, Target::Tag("v1".into()));
    /// assert!(Reference::parse("layout@sha256:../../etc/passwd").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidReference {
            input: input.into(),
            reason: reason.into(),
        };
        if input.is_empty() {
            return Err(bad("empty"));
        }
        if let Some(at) = input.rfind('@') {
            let (dir, digest) = (&input[..at], &input[at + 1..]);
            if digest.contains(':') {
                if dir.is_empty() {
                    return Err(bad("no layout directory before '@'"));
                }
                let digest = Digest::parse(digest).map_err(|e| bad(&e.to_string()))?;
                return Ok(Reference {
                    dir: dir.into(),
                    target: Target::Digest(digest),
                });
            }
        }
        let last_slash = input.rfind('/').map_or(0, |i| i + 1);
        if let Some(colon) = input[last_slash..].rfind(':').map(|i| i + last_slash) {
            let (dir, tag) = (&input[..colon], &input[colon + 1..]);
            if dir.is_empty() {
                return Err(bad("no layout directory before ':'"));
            }
            if tag.is_empty() {
                return Err(bad("empty tag after ':'"));
            }
            validate_ref_name(tag).map_err(|e| bad(&e))?;
            return Ok(Reference {
                dir: dir.into(),
                target: Target::Tag(tag.into()),
            });
        }
        Ok(Reference {
            dir: input.into(),
            target: Target::Only,
        })
    }

    /// A reference given separately from its layout (`--layout DIR REF`): `REF` is a digest,
    /// `@DIGEST`, or any ref name, including ones with `:` and `/`.
    pub fn in_layout(dir: impl AsRef<Path>, reference: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidReference {
            input: reference.into(),
            reason,
        };
        let dir = dir.as_ref().to_path_buf();
        let stripped = reference.strip_prefix('@');
        let target = if let Some(d) = stripped {
            Target::Digest(Digest::parse(d).map_err(|e| bad(e.to_string()))?)
        } else if let Ok(d) = Digest::parse(reference) {
            Target::Digest(d)
        } else if reference.is_empty() {
            Target::Only
        } else {
            validate_ref_name(reference).map_err(bad)?;
            Target::Tag(reference.into())
        };
        Ok(Reference { dir, target })
    }

    /// The reference as a user would type it, for messages.
    pub fn display(&self) -> String {
        let dir = self.dir.display();
        match &self.target {
            Target::Tag(t) => format!("{dir}:{t}"),
            Target::Digest(d) => format!("{dir}@{d}"),
            Target::Only => dir.to_string(),
        }
    }
}

/// Checks a ref name against the image-spec grammar:
/// `component ("/" component)*`, `component = alphanum (separator alphanum)*`,
/// `separator = [-._:@+] | "--"`.
pub fn validate_ref_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("a tag cannot be empty".into());
    }
    for component in name.split('/') {
        let bytes = component.as_bytes();
        if bytes.is_empty() {
            return Err(format!("{name:?} has an empty path component"));
        }
        let mut i = 0;
        let mut expect_alnum = true;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_alphanumeric() {
                expect_alnum = false;
                i += 1;
            } else if expect_alnum {
                return Err(format!(
                    "{name:?}: a separator must sit between letters or digits"
                ));
            } else if b == b'-' && bytes.get(i + 1) == Some(&b'-') {
                expect_alnum = true;
                i += 2;
            } else if matches!(b, b'-' | b'.' | b'_' | b':' | b'@' | b'+') {
                expect_alnum = true;
                i += 1;
            } else {
                return Err(format!(
                    "{name:?}: character {:?} is not allowed",
                    b as char
                ));
            }
        }
        if expect_alnum {
            return Err(format!("{name:?} must not end with a separator"));
        }
    }
    Ok(())
}

impl Layout {
    /// Resolves a target to a descriptor.
    pub fn resolve(&self, target: &Target) -> Result<Descriptor> {
        self.resolve_in(&self.read_index()?, target)
    }

    /// Resolves a target against `index`, this layout's `index.json` as the caller already
    /// read it (so a command that also scans it parses it once).
    pub fn resolve_in(&self, index: &ImageIndex, target: &Target) -> Result<Descriptor> {
        let entries = index.manifests();
        match target {
            Target::Tag(tag) => {
                let hits: Vec<&Descriptor> = entries
                    .iter()
                    .filter(|d| d.ref_name() == Some(tag))
                    .collect();
                let Some(first) = hits.first() else {
                    let tags: Vec<&str> = entries.iter().filter_map(Descriptor::ref_name).collect();
                    return Err(Error::NotFound {
                        what: Subject::Tag {
                            tag: tag.clone(),
                            layout: self.root().to_path_buf(),
                        },
                        hint: candidates_hint("tags", &tags),
                    });
                };
                let mut digests: Vec<&Digest> = hits.iter().map(|d| d.digest()).collect();
                digests.dedup();
                if digests.len() > 1 {
                    return Err(Error::Ambiguous {
                        what: Subject::Tag {
                            tag: tag.clone(),
                            layout: self.root().to_path_buf(),
                        },
                        candidates: digests
                            .into_iter()
                            .map(|d| Reference {
                                dir: self.root().to_path_buf(),
                                target: Target::Digest(d.clone()),
                            })
                            .collect(),
                    });
                }
                Ok((*first).clone())
            }
            Target::Digest(digest) => match entries.iter().find(|d| d.digest() == digest) {
                Some(d) => Ok(d.clone()),
                None => self.describe_blob(digest),
            },
            Target::Only => match entries {
                [one] => Ok(one.clone()),
                [] => Err(Error::NotFound {
                    what: Subject::Entry {
                        layout: self.root().to_path_buf(),
                    },
                    hint: " (index.json is empty)".into(),
                }),
                many => Err(Error::Ambiguous {
                    what: Subject::Reference(self.root().display().to_string()),
                    candidates: many
                        .iter()
                        .map(|d| Reference {
                            dir: self.root().to_path_buf(),
                            target: match d.ref_name() {
                                Some(t) => Target::Tag(t.to_string()),
                                None => Target::Digest(d.digest().clone()),
                            },
                        })
                        .collect(),
                }),
            },
        }
    }

    /// Picks the child of an index that matches `platform`; anything else is returned as is.
    pub fn select_platform(&self, desc: &Descriptor, platform: &Platform) -> Result<Descriptor> {
        let (_, manifest) = self.read_manifest(desc)?;
        let Manifest::Index(index) = manifest else {
            return Ok(desc.clone());
        };
        let found: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(|d| d.platform().map(|p| p.to_string()))
            .collect();
        index
            .manifests()
            .iter()
            .find(|d| d.platform().is_some_and(|p| platform.matches(&p)))
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: Subject::Platform {
                    platform: platform.to_string(),
                    index: desc.digest().clone(),
                },
                hint: candidates_hint(
                    "platforms",
                    &found.iter().map(String::as_str).collect::<Vec<_>>(),
                ),
            })
    }
}

fn candidates_hint(kind: &str, items: &[&str]) -> String {
    if items.is_empty() {
        return format!(" (the layout has no {kind})");
    }
    let shown: Vec<&str> = items.iter().take(20).copied().collect();
    let more = items.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(" (available {kind}: {}{tail})", shown.join(", "))
}

/// Repository names as the distribution spec allows them: `/`-separated lowercase components,
/// separators `.`, `_`, `__` and runs of `-` between alphanumerics.
pub fn validate_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("no repository".into());
    }
    if repo.len() > 255 {
        return Err("repository name longer than 255 characters".into());
    }
    for component in repo.split('/') {
        let ok = !component.is_empty()
            && component
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && component.starts_with(|c: char| c.is_ascii_alphanumeric())
            && component.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !component.contains("..")
            && !component.contains("___");
        if !ok {
            return Err(format!(
                "repository component {component:?} is not lowercase letters and digits \
                 separated by '.', '_', '__' or '-'"
            ));
        }
    }
    Ok(())
}

/// Tags: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if !first_ok
        || tag.len() > 128
        || !chars.all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(format!(
            "tag {tag:?} is not 1 to 128 of [A-Za-z0-9._-] starting with a letter, digit or '_'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = Reference::parse("a/b:c").unwrap();
        assert_eq!(
            (r.dir.to_str().unwrap(), r.target),
            ("a/b", Target::Tag("c".into()))
        );
        let r = Reference::parse("a:b/c").unwrap();
        assert_eq!((r.dir.to_str().unwrap(), r.target), ("a:b/c", Target::Only));
        let d = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let r = Reference::parse(&format!("x@{d}")).unwrap();
        assert_eq!(r.target, Target::Digest(d.parse().unwrap()));
        for bad in ["", ":v1", "dir:", "dir:bad tag", "dir@sha256:ABC", "dir:-x"] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        let r = Reference::in_layout("x", "docker.io/library/alpine:3.20").unwrap();
        assert_eq!(
            r.target,
            Target::Tag("docker.io/library/alpine:3.20".into())
        );
        assert_eq!(
            Reference::in_layout("x", &format!("@{d}")).unwrap().target,
            Target::Digest(d.parse().unwrap())
        );
    }

    #[test]
    fn ref_name_grammar() {
        for ok in [
            "v1",
            "1.0",
            "a--b",
            "docker.io/library/alpine:3.20",
            "sha256-abc.sig",
            "A_b+c@d",
        ] {
            assert!(validate_ref_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a/", "/a", "a//b", "-a", "a-", "a---b", "a b", "a\u{e9}",
        ] {
            assert!(validate_ref_name(bad).is_err(), "{bad}");
        }
    }
}
