//! Tidy checks on the source tree (after rust-analyzer's): every Rust source file opens with a
//! `//!` paragraph saying what it owns, and no file outside tests grows past 800 lines.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for krate in [
        "event-schemas",
        "domain",
        "event-log",
        "crypto",
        "commands",
        "projections",
        "api",
        "replay-tools",
        "test-support",
        "tests",
    ] {
        rust_files(&root.join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            !text.trim_start().starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` module doc: {missing:#?}"
    );
}

/// Files over this many lines are hard to hold in one's head; split them by what they own.
const MAX_LINES: usize = 800;

/// Test code is exempt: a test module (`tests.rs`, `tests/...`) reads as a list of cases.
fn is_test_code(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name == "tests.rs")
        || path.components().any(|part| part.as_os_str() == "tests")
}

#[test]
fn no_source_file_outside_tests_is_over_800_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for krate in [
        "event-schemas",
        "domain",
        "event-log",
        "crypto",
        "commands",
        "projections",
        "api",
        "replay-tools",
        "test-support",
    ] {
        rust_files(&root.join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let long: Vec<(usize, &PathBuf)> = files
        .iter()
        .filter(|path| !is_test_code(path))
        .map(|path| (std::fs::read_to_string(path).unwrap().lines().count(), path))
        .filter(|(lines, _)| *lines > MAX_LINES)
        .collect();
    assert!(
        long.is_empty(),
        "source files over {MAX_LINES} lines: {long:#?}"
    );
}
