//! The environment `scripts/test` prepares: the S3 server, the data uploaded to it, scratch folders.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The running S3 server and the data uploaded to it by scripts/test.
pub struct Env {
    pub endpoint: String,
    pub data: PathBuf,
    pub bucket: String,
}

/// The environment, or a panic that says how to get one.
pub fn env() -> Env {
    let var = |k: &str| {
        std::env::var(k)
            .unwrap_or_else(|_| panic!("{k} is not set: run the suite with ./scripts/test, which starts the S3 server"))
    };
    Env {
        endpoint: var("GLAUX_TEST_S3_ENDPOINT"),
        data: PathBuf::from(var("GLAUX_TEST_DATA")),
        bucket: var("GLAUX_TEST_BUCKET"),
    }
}

impl Env {
    pub fn s3(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    /// Total size of the local copies of the objects under `prefix` (what S3 holds).
    pub fn size_of(&self, prefix: &str) -> u64 {
        let dir = self.data.join(prefix);
        let mut total = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                total += entry.metadata().unwrap().len();
            }
        }
        total
    }
}

/// A directory of its own for one test (its warehouse, its files); scripts/test clears them.
pub fn scratch(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("glaux-it-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
