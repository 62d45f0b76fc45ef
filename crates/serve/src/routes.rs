//! Request paths of the distribution API. Names contain `/`, so the endpoint is found from the
//! right: the last path segments say what is asked, everything before them is the name. Nothing
//! is percent-decoded: an encoded name fails the name grammar instead of turning into `..`.

/// What a request path asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags { name: &'a str },
    /// `/v2/<name>/manifests/<reference>`
    Manifest { name: &'a str, reference: &'a str },
    /// `/v2/<name>/blobs/<digest>`
    Blob { name: &'a str, digest: &'a str },
    /// `/v2/<name>/blobs/uploads/` and `/v2/<name>/blobs/uploads/<id>`
    Upload { name: &'a str, id: Option<&'a str> },
    /// `/v2/<name>/referrers/<digest>`
    Referrers { name: &'a str, digest: &'a str },
}

impl<'a> Route<'a> {
    pub fn parse(path: &'a str) -> Option<Route<'a>> {
        let rest = path.strip_prefix("/v2")?;
        if rest.is_empty() || rest == "/" {
            return Some(Route::Base);
        }
        let rest = rest.strip_prefix('/')?;
        if rest == "_catalog" {
            return Some(Route::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Some(Route::Tags { name });
        }
        if let Some(name) = rest.strip_suffix("/blobs/uploads/") {
            return Some(Route::Upload { name, id: None });
        }
        if let Some(name) = rest.strip_suffix("/blobs/uploads") {
            return Some(Route::Upload { name, id: None });
        }
        let (head, last) = rest.rsplit_once('/')?;
        if last.is_empty() {
            return None;
        }
        let (name, kind) = head.rsplit_once('/')?;
        match kind {
            "manifests" => Some(Route::Manifest {
                name,
                reference: last,
            }),
            "blobs" => Some(Route::Blob { name, digest: last }),
            "referrers" => Some(Route::Referrers { name, digest: last }),
            "uploads" => {
                let name = name.strip_suffix("/blobs")?;
                Some(Route::Upload {
                    name,
                    id: Some(last),
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_slashes_and_every_endpoint() {
        assert_eq!(Route::parse("/v2/"), Some(Route::Base));
        assert_eq!(Route::parse("/v2"), Some(Route::Base));
        assert_eq!(Route::parse("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(
            Route::parse("/v2/a/b/tags/list"),
            Some(Route::Tags { name: "a/b" })
        );
        assert_eq!(
            Route::parse("/v2/a/manifests/b/manifests/v1"),
            Some(Route::Manifest {
                name: "a/manifests/b",
                reference: "v1"
            })
        );
        assert_eq!(
            Route::parse("/v2/a/blobs/uploads/"),
            Some(Route::Upload {
                name: "a",
                id: None
            })
        );
        assert_eq!(
            Route::parse("/v2/a/b/blobs/uploads/xyz"),
            Some(Route::Upload {
                name: "a/b",
                id: Some("xyz")
            })
        );
        assert_eq!(
            Route::parse("/v2/a/blobs/sha256:00"),
            Some(Route::Blob {
                name: "a",
                digest: "sha256:00"
            })
        );
        assert_eq!(
            Route::parse("/v2/a/referrers/sha256:00"),
            Some(Route::Referrers {
                name: "a",
                digest: "sha256:00"
            })
        );
        assert_eq!(
            Route::parse("/v2/%2e%2e/manifests/v1"),
            Some(Route::Manifest {
                name: "%2e%2e",
                reference: "v1"
            })
        );
        assert_eq!(Route::parse("/v2/a/other/x"), None);
        assert_eq!(Route::parse("/v3/a/manifests/x"), None);
    }
}
