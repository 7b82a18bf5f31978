//! The embedded default bucket: a local directory receiving the exact keys and
//! bytes an S3 bucket would (SPEC §3), so the agent is useful without
//! credentials and tests can inspect what would have been uploaded.
//!
//! Objects are written to a temporary name, fsynced, and renamed into place,
//! so a reader never sees half an object and a crash leaves either the old
//! object or the new one. Metadata lives beside the tree in
//! `.meta/{key}.json`, out of the way of anything listing the keys.
//!
//! With retention by level (SPEC §13) the store's lifecycle rules have no
//! equivalent here, so [`DirBucket::prune_classes`] plays their part: every
//! `retain-{days}d/` tree loses the objects written more than `days` ago
//! (by file modification time, which is when the object was stored).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;

use super::digest::ObjectFile;
use super::{Bucket, Depth, ListPage, Listed, ObjectBody, ObjectInfo, ObjectMeta, ShipError};

/// Keys per listing page, as S3 does.
const PAGE: usize = 1000;

pub struct DirBucket {
    root: PathBuf,
}

impl DirBucket {
    pub fn new(root: impl Into<PathBuf>) -> DirBucket {
        DirBucket { root: root.into() }
    }

    /// The path of `key`, refusing anything that would leave the root. Keys
    /// are built from validated ids, so a refusal here is a bug upstream.
    fn path_of(&self, base: &Path, key: &str) -> Result<PathBuf, ShipError> {
        let rel = Path::new(key);
        if key.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(ShipError::slowly(format!(
                "refusing unsafe object key {key:?}"
            )));
        }
        Ok(base.join(rel))
    }

    fn meta_path(&self, key: &str) -> Result<PathBuf, ShipError> {
        let mut p = self.path_of(&self.root.join(".meta"), key)?;
        p.as_mut_os_string().push(".json");
        Ok(p)
    }
}

fn read_meta(meta_path: &Path) -> BTreeMap<String, String> {
    fs::read(meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The keys under `prefix` (a key prefix, not necessarily a whole
/// directory name), sorted; with [`Depth::OneLevel`], deeper keys become
/// their first directory below the prefix.
fn walk(root: &Path, prefix: &str, depth: Depth) -> std::io::Result<ListPage> {
    let (dir_part, name_part) = prefix.rsplit_once('/').unwrap_or(("", prefix));
    let dir_key = if dir_part.is_empty() {
        String::new()
    } else {
        format!("{dir_part}/")
    };
    let mut page = ListPage::default();
    let mut stack = vec![(root.join(dir_part), dir_key, true)];
    while let Some((dir, key, top)) = stack.pop() {
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in rd {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue; // not a key this bucket wrote
            };
            if top && !name.starts_with(name_part) {
                continue;
            }
            if key.is_empty() && name == ".meta" {
                continue;
            }
            let t = entry.file_type()?;
            if t.is_dir() {
                let sub = format!("{key}{name}/");
                match depth {
                    Depth::OneLevel => page.dirs.push(sub),
                    Depth::All => stack.push((entry.path(), sub, false)),
                }
            } else if t.is_file() && !name.ends_with(".tmp") {
                page.objects.push(Listed {
                    key: format!("{key}{name}"),
                    size: entry.metadata()?.len(),
                });
            }
        }
    }
    page.objects.sort_by(|a, b| a.key.cmp(&b.key));
    page.dirs.sort();
    Ok(page)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    replace_atomic(path, |f| f.write_all(bytes))
}

/// Write a temporary file with `fill`, fsync it, rename it to `path`.
fn replace_atomic(
    path: &Path,
    fill: impl FnOnce(&mut fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = path.to_path_buf();
    tmp.as_mut_os_string().push(".tmp");
    let mut f = fs::File::create(&tmp)?;
    fill(&mut f)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

impl DirBucket {
    /// Delete the objects (and their metadata) under every
    /// `{key_prefix}/retain-{days}d/` tree that were stored more than
    /// `days` days before `now`, then the directories left empty. The days
    /// come from each tree's name, so a class no longer configured still
    /// expires what was written under it. Blocking; returns how many
    /// objects were deleted.
    pub fn prune_classes(
        &self,
        key_prefix: &str,
        now: std::time::SystemTime,
    ) -> std::io::Result<usize> {
        let base = match key_prefix {
            "" => self.root.clone(),
            p => self.root.join(p),
        };
        let rd = match fs::read_dir(&base) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut removed = 0;
        for entry in rd {
            let entry = entry?;
            let name = entry.file_name();
            let Some(days) = name
                .to_str()
                .and_then(crate::ship::retention::parse_class_dir)
            else {
                continue;
            };
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let max_age = std::time::Duration::from_secs(u64::from(days) * 86_400);
            let cutoff = now.checked_sub(max_age).unwrap_or(std::time::UNIX_EPOCH);
            removed += self.prune_tree(&entry.path(), cutoff)?;
        }
        Ok(removed)
    }

    /// Delete files under `dir` modified before `cutoff`; remove `dir` if
    /// that leaves it empty.
    fn prune_tree(&self, dir: &Path, cutoff: std::time::SystemTime) -> std::io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let t = entry.file_type()?;
            if t.is_dir() {
                removed += self.prune_tree(&path, cutoff)?;
            } else if t.is_file() && entry.metadata()?.modified()? < cutoff {
                fs::remove_file(&path)?;
                if let Some(key) = path.strip_prefix(&self.root).ok().and_then(|k| k.to_str()) {
                    if let Ok(meta) = self.meta_path(key) {
                        let _ = fs::remove_file(meta);
                    }
                }
                removed += 1;
            }
        }
        // Fails while the directory still holds something: that is fine.
        let _ = fs::remove_dir(dir);
        Ok(removed)
    }
}

#[async_trait]
impl Bucket for DirBucket {
    async fn put(&self, key: &str, body: Vec<u8>, meta: &ObjectMeta) -> Result<(), ShipError> {
        let path = self.path_of(&self.root, key)?;
        let meta_path = self.meta_path(key)?;
        let meta = serde_json::to_vec(&meta.to_map()).unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            // Metadata first: an object is only ever visible with its metadata.
            write_atomic(&meta_path, &meta)?;
            write_atomic(&path, &body)
        })
        .await
        .map_err(|e| ShipError::soon(format!("dir bucket task failed: {e}")))?
        .map_err(|e| ShipError::soon(format!("writing {key}: {e}")))
    }

    /// Copies the file (in the kernel where it can), never holding it whole.
    async fn put_file(
        &self,
        key: &str,
        obj: &ObjectFile,
        meta: &ObjectMeta,
    ) -> Result<(), ShipError> {
        let path = self.path_of(&self.root, key)?;
        let meta_path = self.meta_path(key)?;
        let meta = serde_json::to_vec(&meta.to_map()).unwrap_or_default();
        let src = obj.path.clone();
        tokio::task::spawn_blocking(move || {
            write_atomic(&meta_path, &meta)?;
            replace_atomic(&path, |f| {
                std::io::copy(&mut fs::File::open(&src)?, f).map(|_| ())
            })
        })
        .await
        .map_err(|e| ShipError::soon(format!("dir bucket task failed: {e}")))?
        .map_err(|e| ShipError::soon(format!("writing {key}: {e}")))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, ShipError> {
        let path = self.path_of(&self.root, key)?;
        let meta_path = self.meta_path(key)?;
        tokio::task::spawn_blocking(move || match fs::metadata(&path) {
            Ok(m) => Ok(Some(ObjectInfo {
                size: m.len(),
                meta: read_meta(&meta_path),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ShipError::soon(format!("stat {}: {e}", path.display()))),
        })
        .await
        .map_err(|e| ShipError::soon(format!("dir bucket task failed: {e}")))?
    }

    async fn list(
        &self,
        prefix: &str,
        depth: Depth,
        token: Option<String>,
    ) -> Result<ListPage, ShipError> {
        if prefix.split('/').any(|c| c == "..") {
            return Err(ShipError::slowly(format!(
                "refusing unsafe prefix {prefix:?}"
            )));
        }
        let (root, p) = (self.root.clone(), prefix.to_string());
        let mut page = tokio::task::spawn_blocking(move || walk(&root, &p, depth))
            .await
            .map_err(|e| ShipError::soon(format!("dir bucket task failed: {e}")))?
            .map_err(|e| ShipError::soon(format!("listing {prefix}: {e}")))?;
        // Pages continue after the last key handed out, as S3's do.
        if let Some(after) = token {
            page.objects.retain(|o| o.key > after);
            page.dirs.retain(|d| *d > after);
        }
        if page.objects.len() > PAGE {
            page.objects.truncate(PAGE);
            page.next = page.objects.last().map(|o| o.key.clone());
            page.dirs
                .retain(|d| page.next.as_ref().is_some_and(|n| d < n));
        }
        Ok(page)
    }

    async fn get(&self, key: &str) -> Result<Option<(ObjectInfo, ObjectBody)>, ShipError> {
        let path = self.path_of(&self.root, key)?;
        let meta_path = self.meta_path(key)?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ShipError::soon(format!("opening {key}: {e}"))),
        };
        let size = file
            .metadata()
            .await
            .map_err(|e| ShipError::soon(format!("stat {key}: {e}")))?
            .len();
        let meta = tokio::task::spawn_blocking(move || read_meta(&meta_path))
            .await
            .map_err(|e| ShipError::soon(format!("dir bucket task failed: {e}")))?;
        let body: ObjectBody = Box::pin(tokio::io::BufReader::with_capacity(64 * 1024, file));
        Ok(Some((ObjectInfo { size, meta }, body)))
    }

    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_then_head() {
        let d = tempfile::tempdir().unwrap();
        let b = DirBucket::new(d.path());
        let meta = ObjectMeta {
            lines: 3,
            tier: "system".into(),
            ..Default::default()
        };
        b.put("system/2026/01/02/h-x.ndjson.gz", vec![1, 2, 3], &meta)
            .await
            .unwrap();
        let info = b
            .head("system/2026/01/02/h-x.ndjson.gz")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.size, 3);
        assert_eq!(info.meta["lines"], "3");
        assert!(b.head("nope").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn lists_by_prefix_and_level_and_gets() {
        let d = tempfile::tempdir().unwrap();
        let b = DirBucket::new(d.path());
        let meta = ObjectMeta {
            first_ts: 5,
            ..Default::default()
        };
        for key in [
            "system/2026/01/02/a.ndjson.gz",
            "system/2026/01/03/b.ndjson.gz",
            "system/2026/01/30/c.ndjson.gz",
            "projects/p1/2026/01/02/d.ndjson.gz",
        ] {
            b.put(key, key.as_bytes().to_vec(), &meta).await.unwrap();
        }
        let keys = |p: &ListPage| p.objects.iter().map(|o| o.key.clone()).collect::<Vec<_>>();
        let p = b.list("system/2026/01/0", Depth::All, None).await.unwrap();
        assert_eq!(
            keys(&p),
            [
                "system/2026/01/02/a.ndjson.gz",
                "system/2026/01/03/b.ndjson.gz"
            ]
        );
        let p = b.list("", Depth::OneLevel, None).await.unwrap();
        assert_eq!(p.dirs, ["projects/", "system/"]);
        assert!(p.objects.is_empty());
        let (info, mut body) = b
            .get("system/2026/01/30/c.ndjson.gz")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(info.meta["first-ts"], "5");
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut body, &mut got)
            .await
            .unwrap();
        assert_eq!(got, b"system/2026/01/30/c.ndjson.gz");
        assert!(b.get("system/nope").await.unwrap().is_none());
        assert!(b.list("../", Depth::All, None).await.is_err());
    }

    #[tokio::test]
    async fn class_trees_are_pruned_by_the_age_their_name_says() {
        let d = tempfile::tempdir().unwrap();
        let b = DirBucket::new(d.path());
        let meta = ObjectMeta::default();
        for key in [
            "p/retain-1d/system/2026/01/02/a.ndjson.gz",
            "p/retain-7d/system/2026/01/02/a.ndjson.gz",
            "p/system/2026/01/02/a.ndjson.gz",
        ] {
            b.put(key, vec![1], &meta).await.unwrap();
        }
        let day = std::time::Duration::from_secs(86_400);
        let now = std::time::SystemTime::now();
        assert_eq!(b.prune_classes("p", now).unwrap(), 0);
        // Two days later: the 1-day class goes, with its metadata.
        assert_eq!(b.prune_classes("p", now + 2 * day).unwrap(), 1);
        assert!(b
            .head("p/retain-1d/system/2026/01/02/a.ndjson.gz")
            .await
            .unwrap()
            .is_none());
        assert!(!d
            .path()
            .join(".meta/p/retain-1d/system/2026/01/02/a.ndjson.gz.json")
            .exists());
        assert!(!d.path().join("p/retain-1d").exists());
        assert!(b
            .head("p/retain-7d/system/2026/01/02/a.ndjson.gz")
            .await
            .unwrap()
            .is_some());
        // Objects outside the classes are never touched.
        assert_eq!(b.prune_classes("p", now + 365 * day).unwrap(), 1);
        assert!(b
            .head("p/system/2026/01/02/a.ndjson.gz")
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test]
    async fn refuses_escaping_keys() {
        let d = tempfile::tempdir().unwrap();
        let b = DirBucket::new(d.path());
        for key in ["../x", "/etc/passwd", "a/../../b", ""] {
            assert!(
                b.put(key, vec![], &ObjectMeta::default()).await.is_err(),
                "{key}"
            );
        }
    }
}
