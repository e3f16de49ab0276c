//! The file side of `check`: which files a path names (directories searched
//! recursively for `*.yaml` / `*.yml`), how a file splits into YAML documents, and on
//! which line of a document a field is, so that a finding points at the line to fix.

use std::path::{Path, PathBuf};

use super::CheckError;

/// The files `path` names: itself when it is a file, the YAML files under it when it is
/// a directory.
pub(super) fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), CheckError> {
    let read = |source| CheckError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path).map_err(read)? {
        let p = entry.map_err(read)?.path();
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// One YAML document of a file.
pub(super) struct Doc<'a> {
    pub(super) file: &'a Path,
    /// 1-based line of the document's first line.
    pub(super) start: usize,
    pub(super) lines: Vec<&'a str>,
}

impl Doc<'_> {
    /// The line of the value at `path` (keys and list indexes), best effort: the
    /// deepest segment found.
    pub(super) fn line_of(&self, path: &[&str]) -> usize {
        let mut at: Option<usize> = None;
        let mut indent: isize = -1;
        for seg in path {
            let from = at.map_or(0, |i| i + 1);
            if let Some(text) = seg.strip_prefix('=') {
                // the first line from here on that contains this text
                let Some(i) = (from..self.lines.len()).find(|i| self.lines[*i].contains(text))
                else {
                    break;
                };
                at = Some(i);
                continue;
            }
            if let Ok(index) = seg.parse::<usize>() {
                // the index-th item of the list below the current key
                let Some((i, _)) = self.list_items(from).nth(index) else {
                    break;
                };
                at = Some(i);
                indent = indent_of(self.lines[i]) as isize;
                continue;
            }
            let found = self.lines.iter().enumerate().skip(from).find(|(i, l)| {
                let t = l.trim_start();
                let t = t.strip_prefix("- ").unwrap_or(t).trim_start();
                let is_key = t.starts_with(&format!("{seg}:"))
                    || t.starts_with(&format!("\"{seg}\":"))
                    || t.starts_with(&format!("'{seg}':"));
                let own_item = at == Some(*i);
                is_key && (own_item || indent_of(l) as isize > indent || at.is_none())
            });
            let Some((i, l)) = found else { break };
            at = Some(i);
            // a key on a list item's line is indented past the dash
            let t = l.trim_start();
            indent = if t.starts_with("- ") {
                (indent_of(l) + 2) as isize
            } else {
                indent_of(l) as isize
            };
        }
        self.start + at.unwrap_or(0)
    }

    /// The list items (line index, line) of the block sequence starting at or after
    /// line `from`.
    fn list_items(&self, from: usize) -> impl Iterator<Item = (usize, &str)> + '_ {
        let is_item = |l: &str| l.trim_start().starts_with("- ") || l.trim() == "-";
        let first = self
            .lines
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, l)| is_item(l))
            .map(|(i, l)| (i, indent_of(l)));
        let (start, item_indent) = first.unwrap_or((self.lines.len(), 0));
        self.lines
            .iter()
            .enumerate()
            .skip(start)
            .take_while(move |(_, l)| {
                let t = l.trim_start();
                t.is_empty()
                    || t.starts_with('#')
                    || indent_of(l) > item_indent
                    || (indent_of(l) == item_indent && is_item(l))
            })
            .filter(move |(_, l)| indent_of(l) == item_indent && is_item(l))
            .map(|(i, l)| (i, *l))
    }
}

/// How many spaces a line starts with.
fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Split a file into YAML documents, remembering where each starts.
pub(super) fn split_docs<'a>(file: &'a Path, text: &'a str) -> Vec<Doc<'a>> {
    let mut docs = Vec::new();
    let mut start = 1;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            docs.push(Doc {
                file,
                start,
                lines: std::mem::take(&mut lines),
            });
            start = i + 2;
        } else {
            lines.push(line);
        }
    }
    docs.push(Doc { file, start, lines });
    docs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_lines_and_fields_are_found() {
        let text = "a: 1\n---\nspec:\n  categories:\n    - name: x\n      retention: 1d\n    - name: y\n      retention: 2d\n";
        let docs = split_docs(Path::new("f.yaml"), text);
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[0].start, docs[1].start), (1, 3));
        let d = &docs[1];
        assert_eq!(d.line_of(&["spec", "categories", "1", "retention"]), 8);
        assert_eq!(d.line_of(&["spec", "categories", "0"]), 5);
        assert_eq!(d.line_of(&["spec", "=2d"]), 8);
        // best effort: the deepest segment found
        assert_eq!(d.line_of(&["spec", "categories", "missing"]), 4);
    }
}
