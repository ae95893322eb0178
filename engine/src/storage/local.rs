//! Local disk, with ranged reads that fill their buffers straight from the file.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetResult, ObjectMeta, Result};

/// [`LocalFileSystem`], except for [`object_store::ObjectStore::get_ranges`], which is how Parquet column
/// chunks are read. `LocalFileSystem` zero-fills each buffer before it reads into it. That was
/// 1.6% of TPC-H SF1's CPU, and it is memory written twice for every byte scanned. Here the
/// file is read into the buffer's reserved capacity instead.
#[derive(Debug)]
pub struct LocalDisk {
    inner: Arc<LocalFileSystem>,
}

impl LocalDisk {
    pub fn new() -> Self {
        Self { inner: Arc::new(LocalFileSystem::new()) }
    }

    /// Every range, read in full. A range that is inverted or runs past the end of the file is
    /// an error before anything is allocated for it: a damaged Parquet footer can name any
    /// offsets, and a buffer reserved for them must not take the process down.
    fn read(path: &std::path::Path, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>> {
        let mut file = File::open(path)?;
        let size = file.metadata()?.len();
        let mut out = Vec::with_capacity(ranges.len());
        for range in ranges {
            if range.start > range.end || range.end > size {
                let wanted = format!("bytes {}..{} of a {size}-byte file", range.start, range.end);
                return Err(io::Error::new(io::ErrorKind::InvalidInput, wanted));
            }
            let len = range.end - range.start;
            let mut buf = Vec::with_capacity(len as usize);
            file.seek(SeekFrom::Start(range.start))?;
            (&mut file).take(len).read_to_end(&mut buf)?;
            if buf.len() as u64 != len {
                let cut = format!("bytes {}..{}: the file ended after {} of them", range.start, range.end, buf.len());
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, cut));
            }
            out.push(Bytes::from(buf));
        }
        Ok(out)
    }
}

/// The most entries a folder may hold to be read on the calling thread: a few dozen directory
/// entries and file attributes, tens of microseconds, well within what an async task may take
/// between two awaits.
const READ_HERE: usize = 64;

/// The objects of a folder of at most [`READ_HERE`] plain files with plain names, exactly as
/// `LocalFileSystem` lists them (location, modification time, size, e-tag), read on the calling
/// thread. `None` for any other folder (missing, larger, holding a folder or a link, a name
/// `LocalFileSystem` skips, a file gone while it was read), which is left to `LocalFileSystem`.
fn small_folder(disk: &LocalFileSystem, prefix: &Path) -> Option<Vec<ObjectMeta>> {
    let folder = disk.path_to_filesystem(prefix).ok()?;
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(folder).ok()? {
        let entry = entry.ok()?;
        if entries.len() == READ_HERE || !entry.file_type().ok()?.is_file() {
            return None;
        }
        entries.push(entry);
    }
    entries
        .into_iter()
        .map(|entry| {
            // `LocalFileSystem` skips names ending in `#` and digits (its upload staging)
            entry.file_name().to_str().filter(|name| !name.contains('#'))?;
            let attributes = entry.metadata().ok()?;
            let modified = attributes.modified().ok()?;
            let micros = modified.duration_since(std::time::UNIX_EPOCH).ok()?.as_micros();
            Some(ObjectMeta {
                location: Path::from_absolute_path(entry.path()).ok()?,
                last_modified: modified.into(),
                size: attributes.len(),
                // `LocalFileSystem`'s e-tag: inode, modification time in microseconds, size
                e_tag: Some(format!("{:x}-{micros:x}-{:x}", attributes.ino(), attributes.len())),
                version: None,
            })
        })
        .collect()
}

impl Default for LocalDisk {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for LocalDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalDisk({})", self.inner)
    }
}

impl_store_over_inner!(LocalDisk, own list {
    /// A table's or a partition's folder is, as a rule, a few files. Such a folder (see
    /// [`small_folder`]) is read right here: handing it to tokio's blocking pool and back cost
    /// more than reading it, and most of what a catalog scan spent planning beyond DataFusion's
    /// own tables (these keep their first listing; glaux lists at every statement, to see files
    /// another writer adds). A larger folder is read in the blocking pool in one trip, one level
    /// deep, when it has no subfolders; `LocalFileSystem`'s recursive listing takes two (one for
    /// the files, one to find there are no more). A folder with subfolders is listed whole, as
    /// `LocalFileSystem` lists it.
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let (inner, prefix) = (Arc::clone(&self.inner), prefix.cloned());
        futures::stream::once(async move {
            if let Some(objects) = prefix.as_ref().and_then(|p| small_folder(&inner, p)) {
                return futures::stream::iter(objects.into_iter().map(Ok)).boxed();
            }
            match inner.list_with_delimiter(prefix.as_ref()).await {
                Ok(level) if level.common_prefixes.is_empty() => futures::stream::iter(level.objects.into_iter().map(Ok)).boxed(),
                Ok(_) => inner.list(prefix.as_ref()),
                Err(e) => futures::stream::once(async { Err(e) }).boxed(),
            }
        })
        .flatten()
        .boxed()
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let path = self.inner.path_to_filesystem(location)?;
        let owned = ranges.to_vec();
        let file = path.clone();
        // file reads block: off the async workers, as LocalFileSystem does
        let read = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn_blocking(move || Self::read(&file, &owned)).await.map_err(io::Error::other),
            Err(_) => Ok(Self::read(&file, &owned)),
        };
        read.and_then(|r| r).map_err(|e| {
            let path = path.display().to_string();
            match e.kind() {
                io::ErrorKind::NotFound => object_store::Error::NotFound { path, source: Box::new(e) },
                _ => object_store::Error::Generic { store: "LocalDisk", source: format!("{path}: {e}").into() },
            }
        })
    }
});

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::ObjectStore;

    #[tokio::test]
    async fn folders_list_as_local_file_system_lists_them() {
        let dir = std::env::temp_dir().join(format!("glaux-local-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let write = |rel: &str, bytes: &[u8]| {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        };
        write("flat/a.csv", b"1\n");
        write("flat/b.csv", b"2\n3\n");
        write("flat/empty.csv", b"");
        write("nested/a.csv", b"1\n");
        write("nested/sub/b.csv", b"2\n");
        write("nested/_glaux_staging/c.csv", b"3\n");
        write("flat/with space%20and %.csv", b"4\n");
        for i in 0..=READ_HERE {
            write(&format!("many/{i}.csv"), b"5\n");
        }
        write("linked/a.csv", b"6\n");
        std::os::unix::fs::symlink(dir.join("flat/a.csv"), dir.join("linked/b.csv")).unwrap();
        let (disk, plain) = (LocalDisk::new(), LocalFileSystem::new());
        let folder = |name: &str| Path::from(dir.join(name).display().to_string().trim_start_matches('/'));
        let sorted = |mut all: Vec<ObjectMeta>| {
            all.sort_by(|a, b| a.location.cmp(&b.location));
            all
        };
        // a few plain files are read here; more, or a link, in one level in the blocking pool;
        // with subfolders, the whole tree
        let many = READ_HERE + 1;
        for (name, count, here) in [
            ("flat", 4, true),
            ("many", many, false),
            ("linked", 2, false),
            ("nested", 3, false),
            ("missing", 0, false),
        ] {
            let prefix = folder(name);
            assert_eq!(small_folder(&plain, &prefix).is_some(), here, "{name}");
            let listed = sorted(disk.list(Some(&prefix)).try_collect().await.unwrap());
            assert_eq!(listed.len(), count, "{name}: {listed:?}");
            assert_eq!(listed, sorted(plain.list(Some(&prefix)).try_collect().await.unwrap()), "{name}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn ranges_read_as_local_file_system_reads_them() {
        let dir = std::env::temp_dir().join(format!("glaux-local-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("data.bin");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
        std::fs::write(&file, &data).unwrap();
        let location = Path::from_filesystem_path(&file).unwrap();
        let (disk, plain) = (LocalDisk::new(), LocalFileSystem::new());

        let ranges = [0..0, 0..1, 5..70_000, 69_999..200_000, 199_999..200_000, 100..100, 3..9];
        let read = disk.get_ranges(&location, &ranges).await.unwrap();
        assert_eq!(read, plain.get_ranges(&location, &ranges).await.unwrap());
        for (range, bytes) in ranges.iter().zip(&read) {
            assert_eq!(bytes.as_ref(), &data[range.start as usize..range.end as usize], "{range:?}");
        }

        // past the end or inverted (as a damaged footer may ask): an error naming the file and the
        // bytes, before any buffer is reserved for them
        let range = |start: u64, end: u64| std::ops::Range { start, end };
        for (bad, says) in [
            (vec![0..10, 150_000..200_001], "bytes 150000..200001 of a 200000-byte file"),
            (vec![range(300_000, 1 << 50)], "bytes 300000..1125899906842624 of a 200000-byte file"),
            (vec![range(10, 5)], "bytes 10..5 of a 200000-byte file"),
        ] {
            let err = disk.get_ranges(&location, &bad).await.unwrap_err().to_string();
            assert!(err.contains("data.bin") && err.contains(says), "{bad:?}: {err}");
        }
        let missing = Path::from(format!("{}/missing.parquet", dir.display().to_string().trim_start_matches('/')));
        let err = disk.get_ranges(&missing, &[range(0, 4)]).await.unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("missing.parquet"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
