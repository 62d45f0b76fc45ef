//! What oras users expect of the command line (issue 12): one JSON style, oras's habits
//! (aliases, `--annotation-file`, several tags, `pull` into `.`), progress for directory pushes,
//! formats taken from file names, layouts created on push, and one style for sizes and counts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::rc::Rc;

use ocistow_store::Layout;
use ocistow_store::artifact::{self, FileSpec, PushRequest};
use ocistow_store::layout::Progress;

/// Every call a push made to its progress factory: the name, the total, and the bytes advanced.
#[derive(Default)]
struct Recorded(RefCell<Vec<(String, u64, Rc<RefCell<u64>>)>>);

struct Counter(Rc<RefCell<u64>>);

impl Progress for Counter {
    fn advance(&self, bytes: u64) {
        *self.0.borrow_mut() += bytes;
    }
}

#[test]
fn a_directory_push_reports_progress_over_the_bytes_of_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("site");
    fs::create_dir_all(tree.join("a/b")).unwrap();
    fs::write(tree.join("index.html"), vec![b'x'; 70_000]).unwrap();
    fs::write(tree.join("a/b/data.bin"), vec![7u8; 200_001]).unwrap();
    fs::write(tree.join("a/empty"), b"").unwrap();
    let layout = Layout::init(tmp.path().join("layout")).unwrap();
    let recorded = Recorded::default();
    let factory = |name: &str, total: u64| -> Box<dyn Progress> {
        let done = Rc::new(RefCell::new(0));
        recorded
            .0
            .borrow_mut()
            .push((name.to_string(), total, done.clone()));
        Box::new(Counter(done))
    };
    let req = PushRequest {
        files: vec![FileSpec {
            path: tree.clone(),
            media_type: None,
        }],
        created: Some(0),
        ..Default::default()
    };
    let _uncommitted = artifact::push(&layout, &req, &factory).unwrap();
    let calls = recorded.0.borrow();
    let dir_bar = calls
        .iter()
        .find(|(name, _, _)| name.ends_with("site"))
        .unwrap_or_else(|| panic!("no progress for the directory; calls: {:?}", calls.len()));
    assert_eq!(
        dir_bar.1, 270_001,
        "the total is the bytes of the tree's files"
    );
    assert_eq!(*dir_bar.2.borrow(), 270_001, "every byte read is reported");
}

#[test]
fn layer_and_config_annotations_land_on_their_descriptors() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("cake.txt");
    fs::write(&file, "cream\n").unwrap();
    let layout = Layout::init(tmp.path().join("layout")).unwrap();
    let req = PushRequest {
        files: vec![FileSpec {
            path: file.clone(),
            media_type: None,
        }],
        layer_annotations: BTreeMap::from([(
            file.clone(),
            BTreeMap::from([("fun".to_string(), "more cream".to_string())]),
        )]),
        config_annotations: BTreeMap::from([("hello".to_string(), "world".to_string())]),
        created: Some(0),
        ..Default::default()
    };
    let pushed = artifact::push(&layout, &req, &artifact::no_progress).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&pushed.manifest).unwrap();
    assert_eq!(m["layers"][0]["annotations"]["fun"], "more cream");
    assert_eq!(
        m["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "cake.txt"
    );
    assert_eq!(m["config"]["annotations"]["hello"], "world");

    let stray = PushRequest {
        layer_annotations: BTreeMap::from([(tmp.path().join("nope"), BTreeMap::new())]),
        ..req
    };
    let before = crate::common::snapshot(layout.root());
    let err = artifact::push(&layout, &stray, &artifact::no_progress)
        .err()
        .unwrap();
    assert!(err.to_string().contains("not pushed"), "{err}");
    assert_eq!(before, crate::common::snapshot(layout.root()));
}
