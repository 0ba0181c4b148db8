//! The edge catalog (issue 32): every kind of the registry has one, each entry names its
//! source, and the book's page `docs/src/providers/edges.md` is exactly what the catalog
//! renders (regenerate it with `TETHER_BLESS=1 cargo test --test edges_doc`).

use tether_provider::Topic;

const HEADER: &str = "# The services' edges\n\n\
Generated from the edge catalog (`providers/*/src/edges.rs`) by `tests/edges_doc.rs`; do not \
edit by hand. Each kind's table says what its service documents about its hard edges, what \
tether does about each, and where it is documented. Two figures are the defaults of an \
account's settings: `not_found_grace` (how long a job just created may read \"not found\" \
before that means it was never made) and `forgotten_after` (how long the service keeps an \
ended job; one it reported and then forgot ends `outcome_unknown`). Declared providers \
(`kind = \"http\"`) state their own in their account table.\n\n";

fn rendered() -> String {
    let mut text = HEADER.to_string();
    for kind in tether::registry::kinds() {
        let factory = tether::registry::factory(kind).expect("a registered kind");
        text.push_str(&factory.edges(kind).markdown());
    }
    text
}

#[test]
fn every_kind_has_a_sourced_catalog() {
    for kind in tether::registry::kinds() {
        let edges = tether::registry::factory(kind).unwrap().edges(kind);
        assert_eq!(edges.kind, kind);
        let topics: Vec<Topic> = edges.entries.iter().map(|e| e.topic).collect();
        for needed in [Topic::Consistency, Topic::Retention] {
            assert!(topics.contains(&needed), "{kind}: no {needed:?} entry");
        }
        for e in edges.entries {
            assert!(
                !e.source.trim().is_empty() && !e.says.is_empty() && !e.tether.is_empty(),
                "{kind}: an entry without its source, its text or what tether does: {e:?}"
            );
        }
        assert!(!edges.visible_after_create.is_zero(), "{kind}");
    }
}

#[test]
fn docs_edges_md_is_the_catalog() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/src/providers/edges.md");
    let want = rendered();
    if std::env::var_os("TETHER_BLESS").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "docs/src/providers/edges.md is not what the catalog renders: run TETHER_BLESS=1 cargo test --test edges_doc"
    );
}
