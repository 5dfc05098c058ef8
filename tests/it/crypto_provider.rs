//! One rustls crypto provider for the whole dependency graph: ring. With a second provider
//! (aws-lc-rs) compiled in, rustls cannot pick one by itself and every client built without
//! an explicitly installed provider panics at run time (facts: rust-stack.md).

/// Package names in `Cargo.lock`.
fn locked_packages() -> Vec<String> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .expect("Cargo.lock is committed");
    lock.lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .map(|n| n.trim_end_matches('"').to_string())
        .collect()
}

#[test]
fn the_dependency_graph_has_ring_and_no_aws_lc() {
    let packages = locked_packages();
    assert!(packages.iter().any(|p| p == "ring"), "ring is the provider");
    for other in ["aws-lc-rs", "aws-lc-sys", "aws-lc-fips-sys"] {
        assert!(
            !packages.iter().any(|p| p == other),
            "{other} is in Cargo.lock: a dependency enabled a second rustls provider"
        );
    }
}
