//! A finished query's rows as the server keeps them for paging: in memory up to a size, past it
//! in an Arrow IPC file on local disk (typed, so both protocols page from it as from memory),
//! removed when the result is dropped.

use std::fs::File;
use std::path::PathBuf;

use glaux_engine::arrow::array::RecordBatch;
use glaux_engine::arrow::datatypes::SchemaRef;
use glaux_engine::arrow::ipc::reader::FileReader;
use glaux_engine::arrow::ipc::writer::FileWriter;

use crate::error::{Error, Result};

/// Rows being collected, then kept.
pub struct Results {
    pub schema: SchemaRef,
    pub rows: usize,
    /// The first row of each batch, in order.
    starts: Vec<usize>,
    memory: Vec<RecordBatch>,
    memory_bytes: usize,
    /// In memory up to this many bytes; then everything goes to `spill`.
    memory_limit: usize,
    spill: Spill,
}

/// The file past the memory limit: open for writing once spilling began, removed on drop.
struct Spill {
    path: PathBuf,
    writer: Option<FileWriter<File>>,
    bytes: u64,
}

impl Spill {
    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Internal(format!("cannot keep the result in {}: {e}", self.path.display()))
    }

    fn open(&mut self, schema: &SchemaRef) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        }
        let file = File::create(&self.path).map_err(|e| self.error(e))?;
        self.writer = Some(FileWriter::try_new(file, schema).map_err(|e| self.error(e))?);
        Ok(())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let written = match self.writer.as_mut() {
            Some(w) => w.write(batch),
            None => return Err(Error::Internal("the result's spill file is not open".into())),
        };
        written.map_err(|e| self.error(e))?;
        self.bytes += batch.get_array_memory_size() as u64;
        Ok(())
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        self.writer = None;
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Results {
    /// An empty result that keeps up to `memory_limit` bytes in memory and spills the rest into
    /// `spill_path`.
    pub fn new(schema: SchemaRef, memory_limit: usize, spill_path: PathBuf) -> Self {
        let spill = Spill { path: spill_path, writer: None, bytes: 0 };
        Self { schema, rows: 0, starts: vec![], memory: vec![], memory_bytes: 0, memory_limit, spill }
    }

    /// Adds a batch; past the memory limit every batch so far moves to the spill file.
    pub fn push(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.starts.push(self.rows);
        self.rows += batch.num_rows();
        if !self.spilled() && self.memory_bytes + batch.get_array_memory_size() <= self.memory_limit {
            self.memory_bytes += batch.get_array_memory_size();
            self.memory.push(batch);
            return Ok(());
        }
        if !self.spilled() {
            self.spill.open(&self.schema)?;
            for kept in std::mem::take(&mut self.memory) {
                self.spill.write(&kept)?;
            }
            self.memory_bytes = 0;
        }
        self.spill.write(&batch)
    }

    /// Ends collecting: the spill file, if any, is completed for reading.
    pub fn finish(&mut self) -> Result<()> {
        let finished = match self.spill.writer.as_mut() {
            Some(w) => w.finish(),
            None => return Ok(()),
        };
        finished.map_err(|e| self.spill.error(e))
    }

    /// Bytes kept in all, in memory and on disk (as Arrow holds them).
    pub fn size(&self) -> u64 {
        self.memory_bytes as u64 + self.spill.bytes
    }

    /// Whether the rows are on disk rather than in memory.
    pub fn spilled(&self) -> bool {
        self.spill.writer.is_some()
    }

    /// Rows `from..from+n` as slices of the kept batches.
    pub fn slice(&self, from: usize, n: usize) -> Result<Vec<RecordBatch>> {
        if n == 0 || from >= self.rows {
            return Ok(vec![]);
        }
        let first = self.starts.partition_point(|&s| s <= from) - 1;
        let mut out = vec![];
        let mut reader = None;
        let (mut at, mut left) = (from, n);
        for (i, &start) in self.starts.iter().enumerate().skip(first) {
            if left == 0 {
                break;
            }
            let batch = if self.spilled() {
                let reader = match &mut reader {
                    Some(r) => r,
                    None => {
                        let file = File::open(&self.spill.path).map_err(|e| self.spill.error(e))?;
                        reader.insert(FileReader::try_new(file, None).map_err(|e| self.spill.error(e))?)
                    }
                };
                reader.set_index(i).map_err(|e| self.spill.error(e))?;
                match reader.next() {
                    Some(b) => b.map_err(|e| self.spill.error(e))?,
                    None => return Err(self.spill.error(format!("batch {i} is missing"))),
                }
            } else {
                self.memory[i].clone()
            };
            let offset = at - start;
            let take = (batch.num_rows() - offset).min(left);
            out.push(batch.slice(offset, take));
            at += take;
            left -= take;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use glaux_engine::arrow::array::Int64Array;
    use glaux_engine::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(schema: &SchemaRef, from: i64, n: i64) -> RecordBatch {
        RecordBatch::try_new(Arc::clone(schema), vec![Arc::new(Int64Array::from_iter_values(from..from + n))]).unwrap()
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
            .collect()
    }

    #[test]
    fn pages_read_the_same_from_memory_and_from_the_spill_file() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let dir = std::env::temp_dir().join(format!("glaux-results-{}", std::process::id()));
        let mut small = Results::new(Arc::clone(&schema), 1 << 20, dir.join("small.arrow"));
        let mut big = Results::new(Arc::clone(&schema), 10_000, dir.join("big.arrow"));
        for k in 0..10 {
            small.push(batch(&schema, k * 1000, 1000)).unwrap();
            big.push(batch(&schema, k * 1000, 1000)).unwrap();
        }
        small.finish().unwrap();
        big.finish().unwrap();
        assert!(!small.spilled() && big.spilled());
        assert!(big.memory_bytes == 0 && big.size() > 0 && dir.join("big.arrow").exists());
        for (from, n) in [(0, 5), (995, 10), (2500, 3000), (9990, 50), (10_000, 5)] {
            let expected: Vec<i64> = (from as i64..(from + n).min(10_000) as i64).collect();
            assert_eq!(values(&small.slice(from, n).unwrap()), expected);
            assert_eq!(values(&big.slice(from, n).unwrap()), expected);
        }
        drop(big);
        assert!(!dir.join("big.arrow").exists(), "the spill file goes with its result");
        drop(small);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
