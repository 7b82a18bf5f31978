//! The embedded default bucket: a local directory receiving the exact keys and
//! bytes an S3 bucket would (SPEC §3), so the agent is useful without
//! credentials and tests can inspect what would have been uploaded.
//!
//! Objects are written to a temporary name, fsynced, and renamed into place,
//! so a reader never sees half an object and a crash leaves either the old
//! object or the new one. Metadata lives beside the tree in
//! `.meta/{key}.json`, out of the way of anything listing the keys.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;

use super::digest::ObjectFile;
use super::{Bucket, ObjectInfo, ObjectMeta, ShipError};

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
            Ok(m) => {
                let meta: BTreeMap<String, String> = fs::read(&meta_path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                Ok(Some(ObjectInfo {
                    size: m.len(),
                    meta,
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ShipError::soon(format!("stat {}: {e}", path.display()))),
        })
        .await
        .map_err(|e| ShipError::soon(format!("dir bucket task failed: {e}")))?
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
