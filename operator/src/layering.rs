//! The import direction of the crate, enforced: each module may use only the modules
//! above it in `LAYERS` (the table in `lib.rs`), never one below it. The test reads
//! every source file's code (comments and doc comments left out) for `crate::<module>`
//! paths, including those inside `use crate::{...}` groups.

#![allow(clippy::unwrap_used)]

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// The modules, top (used by everything) to bottom (uses everything). A module may use
/// its own submodules and any module listed before it.
const LAYERS: &[&[&str]] = &[
    &["api"],
    &["engine"],
    &["storage"],
    &["audit"],
    &["catalogue"],
    &["ingest"],
    &["disclosure"],
    &["controller"],
    &["runtime"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments (line comments, doc comments, block comments).
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |i| &after[i..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else if rest.starts_with("'\"'") {
            rest = &rest[3..]; // the character literal '"'
        } else if let Some(after) = rest.strip_prefix("r#\"") {
            rest = after.find("\"#").map_or("", |i| &after[i + 2..]);
            out.push_str("\"\"");
        } else if rest.starts_with('"') {
            // skip string literals, which may contain "//"
            let bytes = rest.as_bytes();
            let mut i = 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            rest = rest.get(i + 1..).unwrap_or("");
            out.push_str("\"\"");
        } else {
            let ch = rest.chars().next().unwrap();
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

/// The top-level modules a file's code names: `crate::x` anywhere, and the first path
/// segment of every item in a `use crate::{...}` group.
fn used_modules(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // a use group: top-level names at brace depth 0
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        let name = ident(&group[j..]);
                        if !name.is_empty() && name != "self" {
                            used.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(after);
            if !name.is_empty() {
                used.insert(name);
            }
        }
        rest = after;
    }
    used
}

#[test]
fn imports_go_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        let Some(own) = layer_of(&module) else {
            assert!(
                matches!(module.as_str(), "lib" | "main" | "layering"),
                "{}: module `{module}` is not in the layer table",
                rel.display()
            );
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in used_modules(&code_only(&text)) {
            if used == module {
                continue;
            }
            match layer_of(&used) {
                Some(layer) if layer < own => {}
                Some(_) => wrong.push(format!("{}: {module} uses {used}", rel.display())),
                None => wrong.push(format!(
                    "{}: {module} uses `{used}`, which is not in the layer table",
                    rel.display()
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the direction of the table in lib.rs:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_reader_sees_groups_paths_and_not_comments() {
    let code = code_only(
        "use crate::{\n  api::{A, b::C},\n  storage::{D},\n};\n// crate::cli\nlet s = \"crate::cli\"; let x = crate::engine::f();",
    );
    let used = used_modules(&code);
    assert_eq!(
        used,
        ["api", "engine", "storage"]
            .into_iter()
            .map(String::from)
            .collect()
    );
}
