//! Local disk limited to one folder: what a server allows SQL to read of its own machine.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// An [`ObjectStore`] that refuses every path outside `root` (paths are normalised, so `..`
/// cannot climb out of it).
#[derive(Debug)]
pub struct FencedStore {
    inner: Arc<dyn ObjectStore>,
    fence: Fence,
    shown: String,
}

/// The folder, by name and as it really is on disk (to compare real paths, links followed).
#[derive(Debug, Clone)]
struct Fence {
    root: Path,
    real_root: std::path::PathBuf,
}

impl Fence {
    /// Inside the folder by name, and — where the path exists — by what it really is, so a link
    /// inside the folder that points outside it is outside.
    fn inside(&self, location: &Path) -> bool {
        if !location.prefix_matches(&self.root) {
            return false;
        }
        // the file system's own names: object_store encodes some characters in its paths
        let mut path = std::path::PathBuf::from("/");
        for part in location.parts() {
            path.push(crate::athena::run::percent_decode(part.as_ref()));
        }
        crate::gate::real_path(&path).is_ok_and(|real| real.starts_with(&self.real_root))
    }
}

impl FencedStore {
    /// `root` is an absolute folder of the local file system.
    pub fn new(inner: Arc<dyn ObjectStore>, root: &std::path::Path) -> Self {
        let shown = root.display().to_string();
        let real_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let root = Path::from(shown.trim_start_matches('/'));
        Self { inner, fence: Fence { root, real_root }, shown }
    }

    fn check(&self, location: &Path) -> Result<()> {
        if self.fence.inside(location) {
            return Ok(());
        }
        Err(object_store::Error::PermissionDenied {
            path: format!("/{location}"),
            source: format!("outside the folder this server allows SQL to read ({})", self.shown).into(),
        })
    }

    /// Listing a prefix above the root shows only what lies inside it.
    fn fence_list(
        &self,
        prefix: Option<&Path>,
        listed: BoxStream<'static, Result<ObjectMeta>>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        match prefix.map(|p| self.check(p)) {
            Some(Err(e)) => stream::once(async move { Err(e) }).boxed(),
            // what a link leads to outside the folder is not listed
            _ => {
                let fence = self.fence.clone();
                listed
                    .filter(move |m| std::future::ready(m.as_ref().map_or(true, |m| fence.inside(&m.location))))
                    .boxed()
            }
        }
    }
}

impl fmt::Display for FencedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FencedStore({}, {})", self.inner, self.shown)
    }
}

#[async_trait]
impl ObjectStore for FencedStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.check(location)?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.check(location)?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.check(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let fence = self.fence.clone();
        let checked = locations.map(move |l| {
            let l = l?;
            if fence.inside(&l) {
                Ok(l)
            } else {
                Err(object_store::Error::PermissionDenied {
                    path: format!("/{l}"),
                    source: "outside the allowed folder".into(),
                })
            }
        });
        self.inner.delete_stream(checked.boxed())
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let prefix = prefix.cloned().unwrap_or_default();
        self.fence_list(Some(&prefix), self.inner.list(Some(&prefix)))
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        let prefix = prefix.cloned().unwrap_or_default();
        self.fence_list(Some(&prefix), self.inner.list_with_offset(Some(&prefix), offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let prefix = prefix.cloned().unwrap_or_default();
        self.check(&prefix)?;
        self.inner.list_with_delimiter(Some(&prefix)).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.check(from)?;
        self.check(to)?;
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::local::LocalFileSystem;

    #[tokio::test]
    async fn reads_inside_the_root_and_refuses_the_rest() {
        let dir = std::env::temp_dir().join(format!("glaux-fence-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("allowed")).unwrap();
        std::fs::write(dir.join("allowed/a.csv"), "x\n1\n").unwrap();
        std::fs::write(dir.join("secret.csv"), "x\n2\n").unwrap();
        let root = dir.join("allowed");
        let store = FencedStore::new(Arc::new(LocalFileSystem::new()), &root);
        let inside = Path::from_filesystem_path(root.join("a.csv")).unwrap();
        assert_eq!(store.get(&inside).await.unwrap().bytes().await.unwrap().as_ref(), b"x\n1\n");
        let listed: Vec<_> = store.list(Some(&Path::from_filesystem_path(&root).unwrap())).try_collect().await.unwrap();
        assert_eq!(listed.len(), 1);

        let outside = Path::from_filesystem_path(dir.join("secret.csv")).unwrap();
        let err = store.get(&outside).await.unwrap_err().to_string();
        assert!(err.contains("secret.csv") && err.contains("outside the folder"), "{err}");
        // a sibling whose name merely starts like the root is outside too
        let sibling = Path::from(format!("{}-more/a.csv", root.display().to_string().trim_start_matches('/')));
        assert!(store.head(&sibling).await.is_err());
        assert!(store.list(Some(&Path::from_filesystem_path(&dir).unwrap())).try_collect::<Vec<_>>().await.is_err());
        // a link inside the folder to a file or a folder outside it is outside
        std::os::unix::fs::symlink(dir.join("secret.csv"), root.join("link.csv")).unwrap();
        std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
        std::fs::write(dir.join("elsewhere/b.csv"), "x\n3\n").unwrap();
        std::os::unix::fs::symlink(dir.join("elsewhere"), root.join("linked")).unwrap();
        for linked in ["link.csv", "linked/b.csv"] {
            // the path as named (from_filesystem_path would resolve the link itself)
            let named = Path::from(format!("{}/{linked}", root.display().to_string().trim_start_matches('/')));
            let err = store.get(&named).await.unwrap_err().to_string();
            assert!(err.contains("outside the folder"), "{linked}: {err}");
        }
        let listed: Vec<_> = store.list(Some(&Path::from_filesystem_path(&root).unwrap())).try_collect().await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
