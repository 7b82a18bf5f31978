//! Which files belong to a source: include/exclude globs, and the
//! directories to watch so that files created later are found.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::config::SourceConfig;

/// A directory to watch for one include pattern.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WatchRoot {
    pub dir: PathBuf,
    /// The pattern reaches below `dir` (a `/` or `**` after the first glob).
    pub recursive: bool,
}

#[derive(Clone, Debug)]
pub struct SourceMatcher {
    include: GlobSet,
    exclude: GlobSet,
    roots: Vec<WatchRoot>,
}

/// Why a source's globs do not build.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MatcherError {
    #[error("include pattern {0:?} must be an absolute path (relative ones are resolved against the config file's directory)")]
    Relative(String),
    #[error("invalid glob {pattern:?}: {source}")]
    Glob {
        pattern: String,
        source: globset::Error,
    },
    #[error("{0}")]
    Set(globset::Error),
}

fn glob(pattern: &str) -> Result<Glob, MatcherError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|source| MatcherError::Glob {
            pattern: pattern.to_string(),
            source,
        })
}

impl SourceMatcher {
    pub fn new(cfg: &SourceConfig) -> Result<SourceMatcher, MatcherError> {
        let mut include = GlobSetBuilder::new();
        let mut roots = Vec::new();
        for p in cfg.include.get_ref() {
            if !p.starts_with('/') {
                return Err(MatcherError::Relative(p.clone()));
            }
            include.add(glob(p)?);
            roots.push(watch_root(p));
        }
        let mut exclude = GlobSetBuilder::new();
        for p in &cfg.exclude {
            exclude.add(glob(p)?);
        }
        roots.sort();
        roots.dedup();
        Ok(SourceMatcher {
            include: include.build().map_err(MatcherError::Set)?,
            exclude: exclude.build().map_err(MatcherError::Set)?,
            roots,
        })
    }

    /// Whether `path` is one of this source's files. Excludes are matched
    /// against the full path and against the file name, so `*.gz` works.
    pub fn matches(&self, path: &Path) -> bool {
        if !self.include.is_match(path) {
            return false;
        }
        let by_name = path
            .file_name()
            .is_some_and(|n| self.exclude.is_match(Path::new(n)));
        !(by_name || self.exclude.is_match(path))
    }

    pub fn roots(&self) -> &[WatchRoot] {
        &self.roots
    }
}

/// The longest directory prefix of `pattern` without glob syntax.
fn watch_root(pattern: &str) -> WatchRoot {
    let meta = pattern.find(['*', '?', '[', '{']).unwrap_or(pattern.len());
    let dir_end = pattern[..meta].rfind('/').unwrap_or(0);
    let dir = if dir_end == 0 {
        "/"
    } else {
        &pattern[..dir_end]
    };
    let rest = &pattern[dir_end + 1..];
    WatchRoot {
        dir: PathBuf::from(dir),
        recursive: rest.contains('/') || rest.contains("**"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(include: &[&str], exclude: &[&str]) -> SourceConfig {
        let text = format!(
            "name = \"s\"\ninclude = {:?}\nexclude = {:?}\n",
            include, exclude
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn include_exclude() {
        let m = SourceMatcher::new(&cfg(
            &["/var/log/app/*.log", "/var/log/app/*.log.*"],
            &["*.gz"],
        ))
        .unwrap();
        assert!(m.matches(Path::new("/var/log/app/a.log")));
        assert!(m.matches(Path::new("/var/log/app/a.log.1")));
        assert!(!m.matches(Path::new("/var/log/app/a.log.2.gz")));
        assert!(!m.matches(Path::new("/var/log/app/sub/a.log")));
        assert_eq!(
            m.roots(),
            &[WatchRoot {
                dir: "/var/log/app".into(),
                recursive: false
            }]
        );
    }

    #[test]
    fn nested_patterns_watch_recursively() {
        let m = SourceMatcher::new(&cfg(&["/var/log/app/builds/*/*.log"], &[])).unwrap();
        assert!(m.matches(Path::new("/var/log/app/builds/2026-01-01/b1.log")));
        assert_eq!(
            m.roots(),
            &[WatchRoot {
                dir: "/var/log/app/builds".into(),
                recursive: true
            }]
        );
        assert!(SourceMatcher::new(&cfg(&["relative/*.log"], &[])).is_err());
        assert!(SourceMatcher::new(&cfg(&["/x/[.log"], &[])).is_err());
    }
}
