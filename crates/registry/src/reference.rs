//! Registry references: `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`, as skopeo spells them.

use std::fmt;

use ocistow_store::Digest;
use ocistow_store::reference::validate_repository;
/// The distribution grammar of names lives with the store's other reference rules (`ocistow serve`
/// checks names with it too).
pub use ocistow_store::reference::validate_tag;

use crate::error::{Error, ReferenceProblem, Result};

/// The scheme prefix that marks a registry reference.
pub const SCHEME: &str = "docker://";

/// What a reference names inside a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryTarget {
    /// A tag.
    Tag(String),
    /// A manifest digest.
    Digest(Digest),
    /// Only the repository (for a tags list, or a copy that keeps the source's tag).
    Repository,
}

/// A parsed `docker://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// `HOST[:PORT]`, as written.
    pub registry: String,
    /// The repository path (`library/alpine`).
    pub repository: String,
    /// The tag or digest.
    pub target: RegistryTarget,
}

/// True when `input` is written as a registry reference.
pub fn is_registry_ref(input: &str) -> bool {
    input.starts_with(SCHEME)
}

impl RegistryRef {
    /// Parses `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`. The host is never implied: a reference
    /// without one is an error rather than a silent trip to a public registry.
    ///
    /// ```
    /// use ocistow_registry::reference::{RegistryRef, RegistryTarget};
    /// let r = RegistryRef::parse("docker://127.0.0.1:5000/team/app:v1").unwrap();
    /// assert_eq!(r.registry, "127.0.0.1:5000");
    /// assert_eq!(r.repository, "team/app");
    /// assert_eq!(r.target, RegistryTarget::Tag("v1".into()));
    /// assert!(RegistryRef::parse("docker://app:v1").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Self> {
        let bad = |problem| Error::InvalidReference {
            input: input.into(),
            problem,
        };
        let rest = input
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad(ReferenceProblem::NoScheme))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad(ReferenceProblem::NoRepository))?;
        validate_registry(registry).map_err(bad)?;
        let (repository, target) = if let Some((repo, digest)) = path.split_once('@') {
            let digest =
                Digest::parse(digest).map_err(|e| bad(ReferenceProblem::Digest(Box::new(e))))?;
            (repo, RegistryTarget::Digest(digest))
        } else {
            let last_slash = path.rfind('/').map_or(0, |i| i + 1);
            match path[last_slash..].find(':') {
                Some(colon) => {
                    let at = last_slash + colon;
                    let tag = &path[at + 1..];
                    validate_tag(tag).map_err(|r| bad(ReferenceProblem::Grammar(r)))?;
                    (&path[..at], RegistryTarget::Tag(tag.into()))
                }
                None => (path, RegistryTarget::Repository),
            }
        };
        validate_repository(repository).map_err(|r| bad(ReferenceProblem::Grammar(r)))?;
        Ok(RegistryRef {
            registry: registry.into(),
            repository: repository.into(),
            target,
        })
    }

    /// Parses a destination that may name several tags at once, oras's
    /// `docker://HOST[:PORT]/REPO:T1,T2`: the reference of the first tag, and every tag (each
    /// checked as [`RegistryRef::parse`] checks one; an empty one is refused). Without a list,
    /// as [`RegistryRef::parse`], with its tag (or none).
    ///
    /// ```
    /// use ocistow_registry::reference::{RegistryRef, RegistryTarget};
    /// let (r, tags) = RegistryRef::parse_with_tags("docker://127.0.0.1:5000/app:v1,latest").unwrap();
    /// assert_eq!(r.target, RegistryTarget::Tag("v1".into()));
    /// assert_eq!(tags, ["v1", "latest"]);
    /// assert!(RegistryRef::parse_with_tags("docker://127.0.0.1:5000/app:v1,,v2").is_err());
    /// ```
    pub fn parse_with_tags(input: &str) -> Result<(Self, Vec<String>)> {
        // The list follows the last ':' with no '/' after it, as a tag does; a tag has no ','.
        let list = input
            .rfind(':')
            .filter(|&i| !input[i..].contains('/') && input[i..].contains(','));
        let Some(i) = list else {
            let r = Self::parse(input)?;
            let tags = match &r.target {
                RegistryTarget::Tag(t) => vec![t.clone()],
                _ => Vec::new(),
            };
            return Ok((r, tags));
        };
        let tags: Vec<String> = input[i + 1..].split(',').map(String::from).collect();
        for tag in &tags {
            validate_tag(tag).map_err(|problem| Error::InvalidReference {
                input: input.into(),
                problem: if tag.is_empty() {
                    ReferenceProblem::EmptyTagInList
                } else {
                    ReferenceProblem::Grammar(problem)
                },
            })?;
        }
        let first = Self::parse(&format!("{}:{}", &input[..i], tags[0]))?;
        Ok((first, tags))
    }

    /// The same repository with another target.
    #[must_use]
    pub fn with_target(&self, target: RegistryTarget) -> RegistryRef {
        RegistryRef {
            target,
            ..self.clone()
        }
    }

    /// The tag or digest as the manifests endpoint takes it, if any.
    pub fn manifest_reference(&self) -> Option<String> {
        match &self.target {
            RegistryTarget::Tag(t) => Some(t.clone()),
            RegistryTarget::Digest(d) => Some(d.to_string()),
            RegistryTarget::Repository => None,
        }
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        match &self.target {
            RegistryTarget::Tag(t) => write!(f, ":{t}"),
            RegistryTarget::Digest(d) => write!(f, "@{d}"),
            RegistryTarget::Repository => Ok(()),
        }
    }
}

fn validate_registry(registry: &str) -> Result<(), ReferenceProblem> {
    if registry.is_empty() {
        return Err(ReferenceProblem::NoHost);
    }
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (registry, None),
        Some((h, p)) => (h, Some(p)),
        None => (registry, None),
    };
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Err(ReferenceProblem::BadPort { port: p.into() });
    }
    let is_host_char = |c: char| c.is_ascii_alphanumeric() || "-.[]:".contains(c);
    if host.is_empty() || !host.chars().all(is_host_char) {
        return Err(ReferenceProblem::BadHost { host: host.into() });
    }
    // A first component without a dot, a port or `localhost` is a repository name in docker's
    // grammar: refuse it instead of guessing a registry.
    if !(host.contains('.') || host.contains(':') || port.is_some() || host == "localhost") {
        return Err(ReferenceProblem::NotARegistryHost { host: host.into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_digests_and_bare_repositories() {
        let d = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let r = RegistryRef::parse(&format!("docker://localhost/a/b@{d}")).unwrap();
        assert_eq!(r.target, RegistryTarget::Digest(d.parse().unwrap()));
        assert_eq!(r.to_string(), format!("docker://localhost/a/b@{d}"));
        let r = RegistryRef::parse("docker://reg.example:5000/a").unwrap();
        assert_eq!(r.target, RegistryTarget::Repository);
        assert_eq!(r.registry, "reg.example:5000");
        let r = RegistryRef::parse("docker://[::1]:5000/a:latest").unwrap();
        assert_eq!(r.registry, "[::1]:5000");
    }

    #[test]
    fn refuses_what_a_registry_would() {
        for bad in [
            "localhost/a:b",
            "docker://localhost",
            "docker://localhost/Upper:v1",
            "docker://localhost/a:-bad",
            "docker://localhost/a@sha256:../../x",
            "docker://localhost:99999/a",
            "docker://localhost/a//b",
            "docker://noport/a",
        ] {
            assert!(RegistryRef::parse(bad).is_err(), "{bad}");
        }
    }
}
