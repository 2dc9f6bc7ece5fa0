//! `cargo xtask links`: every relative link in the repository's Markdown files points at a
//! file or directory that exists, and every `#anchor` into a Markdown file names one of its
//! headings. External links (`https:`, `mailto:` ...) are not fetched.

use crate::project_root;
use std::path::{Path, PathBuf};

/// Directories never searched: build output, dependencies, VCS data, generated corpora.
const SKIP_DIRS: [&str; 5] = ["target", "node_modules", ".git", "artifacts", "corpus"];

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !SKIP_DIRS.contains(&name.as_ref()) {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The text outside fenced code blocks and inline code spans.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // drop inline code: split on backticks, keep the even parts
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                out.push_str(part);
            }
        }
        out.push('\n');
    }
    out
}

/// Targets of inline links and images: `[text](target)` and `![alt](target "title")`.
fn targets(prose: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = prose;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].split_whitespace().next().unwrap_or("");
        found.push(target.trim_matches(|c| c == '<' || c == '>').to_string());
        rest = &rest[end..];
    }
    found
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    prose(text)
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

/// The broken links of one file, as messages.
fn check(file: &Path, root: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return vec![format!("{}: unreadable", file.display())];
    };
    let shown = file
        .strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string();
    let mut broken = Vec::new();
    for target in targets(&prose(&text)) {
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, fragment) = match target.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            file.to_path_buf()
        } else if let Some(from_root) = path.strip_prefix('/') {
            root.join(from_root)
        } else {
            file.parent().unwrap_or(root).join(path)
        };
        if !resolved.exists() {
            broken.push(format!("{shown}: {target}: no such file"));
            continue;
        }
        if let Some(fragment) = fragment {
            let is_md = resolved.extension().is_some_and(|e| e == "md");
            let text = std::fs::read_to_string(&resolved).unwrap_or_default();
            if is_md && !anchors(&text).iter().any(|a| a == fragment) {
                broken.push(format!("{shown}: {target}: no such heading"));
            }
        }
    }
    broken
}

/// The root README is read first: it stays short, the reference lives in rustdoc.
const README_MAX_BYTES: u64 = 12_000;

pub(crate) fn run() -> Result<(), String> {
    let root = project_root();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    files.sort();
    let mut broken: Vec<String> = files.iter().flat_map(|f| check(f, &root)).collect();
    let readme = std::fs::metadata(root.join("README.md")).map_or(0, |m| m.len());
    if readme > README_MAX_BYTES {
        broken.push(format!(
            "README.md: {readme} bytes, over the {README_MAX_BYTES} a newcomer reads in five minutes"
        ));
    }
    if broken.is_empty() {
        eprintln!(
            "links: {} Markdown files, every relative link resolves; README.md {readme} bytes",
            files.len()
        );
        Ok(())
    } else {
        Err(format!("links: broken:\n  {}", broken.join("\n  ")))
    }
}

#[cfg(test)]
mod tests {
    use super::{anchor, prose, targets};

    #[test]
    fn finds_links_outside_code() {
        let text =
            "see [a](docs/a.md) and ![p](bench/p.svg \"t\")\n`[x](no.md)`\n```\n[y](no.md)\n```\n";
        assert_eq!(targets(&prose(text)), ["docs/a.md", "bench/p.svg"]);
    }

    #[test]
    fn anchors_like_github() {
        assert_eq!(anchor(" Quick start (hyper)"), "quick-start-hyper");
        assert_eq!(anchor("From Kashvi"), "from-kashvi");
    }
}
