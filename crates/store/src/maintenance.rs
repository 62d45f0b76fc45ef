//! Maintenance: garbage collection ([`crate::gc`], [`Layout::gc`](crate::Layout::gc)) and
//! integrity checks with repair ([`crate::fsck`], [`Layout::fsck`](crate::Layout::fsck)).
//! This module keeps the public paths callers use; the code lives in those two modules.

pub use crate::fsck::{FsckOptions, FsckReport, Note, Problem};
pub use crate::gc::{GcOptions, GcReport, RemovedBlob, RemovedFile};

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::fs;
    use std::num::NonZeroUsize;

    use super::*;
    use crate::error::Error;
    use crate::fsck::hash::SubjectSniffer;
    use crate::layout::Layout;
    use crate::layout::NoProgress;
    use crate::model::Descriptor;
    use crate::model::media;
    use crate::referrers::{Mode, ResponseKey};

    fn manifest_bytes(
        config: &Descriptor,
        layers: &[&Descriptor],
        subject: Option<&Descriptor>,
    ) -> Vec<u8> {
        let mut m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::IMAGE_MANIFEST,
            "config": config,
            "layers": layers,
        });
        if let Some(s) = subject {
            m["subject"] = serde_json::to_value(s.plain()).unwrap();
        }
        serde_json::to_vec(&m).unwrap()
    }

    fn put(layout: &Layout, bytes: &[u8]) -> Descriptor {
        layout.put_manifest(bytes, None, false).unwrap()
    }

    #[test]
    fn gc_keeps_referrers_of_live_subjects() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let config = layout.write_blob_bytes(b"{}").unwrap();
        let layer = layout.write_blob_bytes(b"layer").unwrap();
        let subject = put(&layout, &manifest_bytes(&config, &[&layer], None));
        layout.add_entry(&subject, &["v1".into()]).unwrap();
        let sbom_layer = layout.write_blob_bytes(b"sbom").unwrap();
        let sbom = put(
            &layout,
            &manifest_bytes(&config, &[&sbom_layer], Some(&subject)),
        );
        // Recorded nowhere (what a killed attach leaves): only a deep scan finds it, and it
        // survives within the grace.
        let loose = layout.write_blob_bytes(b"garbage").unwrap();
        let report = layout
            .gc(&GcOptions {
                grace: std::time::Duration::from_hours(1),
                ..GcOptions::default()
            })
            .unwrap();
        assert_eq!(
            report.blobs_removed,
            vec![RemovedBlob {
                digest: loose.digest().clone(),
                size: 7
            }]
        );
        for d in [&config, &layer, &subject, &sbom, &sbom_layer] {
            assert!(layout.blob_exists(d.digest()).unwrap());
        }
        // Untagged, the subject dies and takes its referrer along.
        layout.untag("v1").unwrap();
        let dry = layout
            .gc(&GcOptions {
                dry_run: true,
                ..GcOptions::default()
            })
            .unwrap();
        assert_eq!(dry.blobs_removed.len(), 5);
        assert!(layout.blob_exists(sbom.digest()).unwrap());
        let kept = layout
            .gc(&GcOptions {
                keep_orphan_referrers: true,
                ..GcOptions::default()
            })
            .unwrap();
        assert_eq!(kept.blobs_removed.len(), 2, "{kept:?}");
        assert!(layout.blob_exists(sbom.digest()).unwrap());
        let report = layout.gc(&GcOptions::default()).unwrap();
        assert_eq!(report.blobs_removed.len(), 3);
        assert!(!layout.blob_exists(sbom.digest()).unwrap());
    }

    #[test]
    fn gc_removes_records_of_dead_subjects() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let config = layout.write_blob_bytes(b"{}").unwrap();
        let subject = put(&layout, &manifest_bytes(&config, &[], None));
        layout.add_entry(&subject, &["v1".into()]).unwrap();
        let sig = put(&layout, &manifest_bytes(&config, &[], Some(&subject)));
        let mut referrer = sig.clone();
        referrer.set_artifact_type(media::EMPTY);
        layout
            .record_referrer(
                &referrer,
                subject.digest(),
                Mode::Response,
                ResponseKey::Oci,
            )
            .unwrap();
        assert_eq!(layout.read_index().unwrap().manifests().len(), 2);
        assert!(
            layout
                .gc(&GcOptions::default())
                .unwrap()
                .blobs_removed
                .is_empty()
        );
        layout.untag("v1").unwrap();
        let report = layout.gc(&GcOptions::default()).unwrap();
        assert_eq!(report.entries_removed.len(), 1);
        assert!(layout.read_index().unwrap().manifests().is_empty());
        // subject, referrer, response index; the config too now.
        assert_eq!(report.blobs_removed.len(), 4);
    }

    #[test]
    fn gc_refuses_when_a_live_manifest_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let config = layout.write_blob_bytes(b"{}").unwrap();
        let m = put(&layout, &manifest_bytes(&config, &[], None));
        layout.add_entry(&m, &["v1".into()]).unwrap();
        let loose = layout.write_blob_bytes(b"x").unwrap();
        let path = layout.blob_path(m.digest());
        let mut bytes = fs::read(&path).unwrap();
        bytes[0] = b' ';
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            layout.gc(&GcOptions::default()),
            Err(Error::Corrupt { .. })
        ));
        assert!(layout.blob_exists(loose.digest()).unwrap());
    }

    #[test]
    fn fsck_finds_and_repairs() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        let config = layout.write_blob_bytes(b"{}").unwrap();
        let layer = layout.write_blob_bytes(b"layer").unwrap();
        let m = put(&layout, &manifest_bytes(&config, &[&layer], None));
        layout.add_entry(&m, &["v1".into()]).unwrap();
        let clean = layout.fsck(&FsckOptions::default(), &NoProgress).unwrap();
        assert!(clean.is_clean(), "{clean:?}");
        assert_eq!(clean.blobs_checked, 3);
        // A referrer nothing records (issue 8: an interrupted write) is a note; repair records
        // it only when asked to.
        let sig = put(&layout, &manifest_bytes(&config, &[], Some(&m)));
        let report = layout.fsck(&FsckOptions::default(), &NoProgress).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.to_string().contains(sig.digest().as_str())),
            "{report:?}"
        );
        let options = FsckOptions {
            repair: true,
            record_unlisted: true,
            ..FsckOptions::default()
        };
        let repaired = layout.fsck(&options, &NoProgress).unwrap();
        assert!(repaired.is_clean(), "{repaired:?}");
        assert!(!repaired.repaired.is_empty());
        assert!(
            layout
                .read_index()
                .unwrap()
                .manifests()
                .iter()
                .any(|e| e.digest() == sig.digest())
        );
        // Missing and truncated blobs.
        fs::remove_file(layout.blob_path(layer.digest())).unwrap();
        fs::write(layout.blob_path(config.digest()), b"{").unwrap();
        let report = layout.fsck(&FsckOptions::default(), &NoProgress).unwrap();
        let kinds: BTreeSet<&str> = report.problems.iter().map(Problem::kind).collect();
        assert_eq!(
            kinds,
            BTreeSet::from(["corrupt-blob", "missing-blob", "size-mismatch"])
        );
    }

    #[test]
    fn subject_sniffer() {
        let sniff = |chunks: &[&[u8]]| {
            let mut s = SubjectSniffer::default();
            for c in chunks {
                if !s.feed(c) {
                    break;
                }
            }
            s.suspect()
        };
        assert!(sniff(&[b"  {\"a\":1,\"subject\":{}}"]));
        assert!(sniff(&[b"{\"a\":1,\"sub", b"ject\":{}}"]));
        assert!(sniff(&[b"   ", b"", b"{\"s", b"u", b"bject\""]));
        assert!(!sniff(&[b"{\"a\":1}"]));
        assert!(!sniff(&[b"\x1f\x8b \"subject\""]));
        assert!(!sniff(&[b"[\"subject\"]"]));
    }

    #[test]
    fn parallel_and_serial_hashing_agree() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::init(dir.path()).unwrap();
        for i in 0..50u32 {
            layout
                .write_blob_bytes(&i.to_le_bytes().repeat(i as usize))
                .unwrap();
        }
        let bad = layout.write_blob_bytes(b"bad").unwrap();
        fs::write(layout.blob_path(bad.digest()), b"bAd").unwrap();
        let run = |n: usize| {
            let r = layout
                .fsck(
                    &FsckOptions {
                        threads: NonZeroUsize::new(n),
                        ..FsckOptions::default()
                    },
                    &NoProgress,
                )
                .unwrap();
            (r.blobs_checked, r.bytes_hashed, r.problems)
        };
        assert_eq!(run(1), run(4));
        assert_eq!(run(1).2.len(), 1);
    }
}
