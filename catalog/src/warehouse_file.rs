//! Files of the warehouse that hold state (catalog documents, workgroups, history): one place
//! for the lock, the write-beside-then-rename and the fsyncs that make a change survive a crash
//! whole or not at all.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An exclusive lock on a file, held until dropped (`flock`, so it also keeps other processes
/// out).
#[derive(Debug)]
pub struct Locked {
    file: File,
}

impl Locked {
    /// Takes the exclusive lock on `path`, creating the file if needed; waits for other holders.
    pub fn exclusive(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
        file.lock()?;
        Ok(Self { file })
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// The JSON document at `path`, or the empty one when there is none yet.
pub fn read_json<T: DeserializeOwned + Default>(path: &Path) -> std::io::Result<T> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| std::io::Error::other(format!("not valid JSON: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(e),
    }
}

/// Reads the JSON document at `path`, lets `change` alter it and, when `change` succeeds,
/// writes it back atomically — all under the document's lock (`<path>.lock`), so concurrent
/// processes never lose each other's changes. `io` says which document an I/O error is about.
pub fn update_json<T, R, E>(
    path: &Path,
    io: impl Fn(std::io::Error) -> E,
    change: impl FnOnce(&mut T) -> Result<R, E>,
) -> Result<R, E>
where
    T: Serialize + DeserializeOwned + Default,
{
    let _lock = Locked::exclusive(&path.with_extension("lock")).map_err(&io)?;
    let mut document: T = read_json(path).map_err(&io)?;
    let out = change(&mut document)?;
    let text = serde_json::to_string_pretty(&document).map_err(|e| io(std::io::Error::other(e)))?;
    write_atomically(path, text.as_bytes()).map_err(io)?;
    Ok(out)
}

/// Makes `dir`'s entries (a file created or renamed in it) durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` beside `path`, syncs it, renames it over `path` and syncs the folder: readers
/// see the old document or the new one, and after a crash the change is there whole or not at
/// all. Callers that read-modify-write hold a [`Locked`] around this.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let written = File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let renamed = written.and_then(|_| fs::rename(&tmp, path));
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed?;
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => Ok(()),
    }
}

/// Appends one line (`line` ends with a newline) to `path` under an exclusive lock and syncs it.
/// A writer killed mid-line leaves a fragment without its newline: it is ended first, so the new
/// line starts on its own and only the fragment is lost.
pub fn append_line(path: &Path, line: &[u8]) -> std::io::Result<()> {
    let created = !path.exists();
    let mut file = OpenOptions::new().create(true).append(true).read(true).open(path)?;
    file.lock()?;
    let written = (|| {
        if ends_mid_line(&mut file)? {
            file.write_all(b"\n")?;
        }
        file.write_all(line)?;
        file.sync_data()
    })();
    let _ = file.unlock();
    written?;
    match path.parent() {
        Some(dir) if created && !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => Ok(()),
    }
}

/// Whether the file's last byte is not a newline (a fragment left by a killed writer).
fn ends_mid_line(file: &mut File) -> std::io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Reads a file from byte `from` to its end under a shared lock, so that a line being appended
/// is never half-seen.
pub fn read_locked_from(path: &Path, from: u64) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    file.lock_shared()?;
    let mut text = String::new();
    let read = file.seek(SeekFrom::Start(from)).and_then(|_| file.read_to_string(&mut text));
    let _ = file.unlock();
    read.map(|_| text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_and_leave_no_temporaries() {
        let dir = std::env::temp_dir().join(format!("glaux-wf-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("doc.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file is left beside it");
        // a torn line is ended before the next one
        let log = dir.join("log.jsonl");
        fs::write(&log, "{\"a\":1}\n{\"tor").unwrap();
        append_line(&log, b"{\"b\":2}\n").unwrap();
        assert_eq!(read_locked_from(&log, 0).unwrap(), "{\"a\":1}\n{\"tor\n{\"b\":2}\n");
        let _lock = Locked::exclusive(&dir.join(".lock")).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }
}
