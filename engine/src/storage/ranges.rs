//! Which byte ranges of a remote object are fetched together: reads close to each other merge
//! into one request, but only when the gap is small beside what is read, so that reading one
//! column of many costs that column's bytes (and the bill says so) at any file size.

use std::ops::Range;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

/// Requests of one `get_ranges` in flight at once (as object_store's own coalescing does).
const PARALLEL: usize = 10;

/// When two reads of the same object are fetched as one request.
///
/// A request costs a round trip (tens of milliseconds on S3, in parallel with others); a gap
/// costs its bytes, which are billed. Gaps up to `gap` always merge (the round trip costs
/// more than the bytes); larger gaps merge while they stay under `ratio` of the bytes the
/// merged request wants, and never beyond `max_gap`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeMerge {
    pub gap: u64,
    pub ratio: f64,
    pub max_gap: u64,
}

impl Default for RangeMerge {
    /// 16 KiB, as DuckDB merges its Parquet reads; beyond that a thirty-second of the wanted
    /// bytes, up to 1 MiB. (Measured with `bench/run s3`: an eighth merged TPC-H q06's four
    /// lineitem columns with the three between them, 9% more bytes than DuckDB read in a
    /// quarter of its requests; bytes are what users pay for.)
    fn default() -> Self {
        Self { gap: 16 * 1024, ratio: 1.0 / 32.0, max_gap: 1024 * 1024 }
    }
}

impl RangeMerge {
    /// The rule the settings give (`GLAUX_S3_MERGE_GAP`, `GLAUX_S3_MERGE_RATIO`,
    /// `GLAUX_S3_MERGE_MAX_GAP`; `s3.merge_*` in glaux.toml), the default for any not set.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let default = Self::default();
        let bytes = |k: &str, d: u64| var(k).and_then(|v| v.trim().parse().ok()).unwrap_or(d);
        let ratio = var("GLAUX_S3_MERGE_RATIO")
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|r| r.is_finite() && *r >= 0.0)
            .unwrap_or(default.ratio);
        Self {
            gap: bytes("GLAUX_S3_MERGE_GAP", default.gap),
            ratio,
            max_gap: bytes("GLAUX_S3_MERGE_MAX_GAP", default.max_gap),
        }
    }

    /// The requests for `ranges`: sorted, overlapping reads joined, gaps merged by the rule.
    pub fn plan(&self, ranges: &[Range<u64>]) -> Vec<Range<u64>> {
        merge_ranges(ranges, |gap, wanted| {
            let gap = gap.end - gap.start;
            gap <= self.gap || (gap <= self.max_gap && (gap as f64) <= self.ratio * wanted as f64)
        })
    }

    /// Bytes the requests for `ranges` fetch.
    pub fn fetched(&self, ranges: &[Range<u64>]) -> u64 {
        self.plan(ranges).iter().map(|r| r.end - r.start).sum()
    }

    /// Fetches `ranges` with the planned requests (a few at a time) and hands each range its
    /// slice. A response shorter than asked (the object ended) gives the ranges what it has.
    pub async fn fetch<F, Fut, E>(&self, ranges: &[Range<u64>], fetch: F) -> Result<Vec<Bytes>, E>
    where
        F: FnMut(Range<u64>) -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let requests = self.plan(ranges);
        let fetched: Vec<Bytes> =
            futures::stream::iter(requests.iter().cloned()).map(fetch).buffered(PARALLEL).try_collect().await?;
        Ok(slice_requests(&requests, &fetched, ranges))
    }
}

/// `ranges` sorted, empty ones dropped, touching or overlapping ones joined, and two apart joined
/// where `merge(gap, wanted)` says so, `wanted` being the bytes the joined request would be for
/// (its ranges without the gaps between them).
pub fn merge_ranges(ranges: &[Range<u64>], merge: impl Fn(Range<u64>, u64) -> bool) -> Vec<Range<u64>> {
    let mut sorted: Vec<Range<u64>> = ranges.iter().filter(|r| r.start < r.end).cloned().collect();
    sorted.sort_unstable_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<u64>> = vec![];
    let mut wanted = 0u64;
    for r in sorted {
        if let Some(current) = out.last_mut() {
            let added = r.end.saturating_sub(current.end.max(r.start));
            if r.start <= current.end || merge(current.end..r.start, wanted + added) {
                current.end = current.end.max(r.end);
                wanted += added;
                continue;
            }
        }
        wanted = r.end - r.start;
        out.push(r);
    }
    out
}

/// Each of `ranges` cut from the bytes `fetched` for `requests` (sorted, not overlapping, and
/// together covering every range). A response shorter than asked (the object ended) gives the
/// ranges what it has.
pub fn slice_requests(requests: &[Range<u64>], fetched: &[Bytes], ranges: &[Range<u64>]) -> Vec<Bytes> {
    ranges
        .iter()
        .map(|r| {
            if r.start >= r.end {
                return Bytes::new();
            }
            // the request that starts at or before this range and covers it
            let i = requests.partition_point(|q| q.start <= r.start).saturating_sub(1);
            let (Some(request), Some(bytes)) = (requests.get(i), fetched.get(i)) else { return Bytes::new() };
            let start = (r.start.saturating_sub(request.start) as usize).min(bytes.len());
            let end = (r.end.saturating_sub(request.start) as usize).min(bytes.len());
            bytes.slice(start..end.max(start))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // a plan of one merged range is what these tests expect
mod tests {
    use super::*;

    const KIB: u64 = 1024;

    #[test]
    fn small_gaps_merge_and_large_ones_do_not() {
        let rule = RangeMerge::default();
        // 4 KiB apart: one request
        assert_eq!(rule.plan(&[0..100 * KIB, 104 * KIB..200 * KIB]), [0..200 * KIB]);
        // one column chunk of sixteen per row group, 1 MiB row groups: each chunk alone
        let chunks: Vec<Range<u64>> = (0..4).map(|g| g * 1024 * KIB..g * 1024 * KIB + 64 * KIB).collect();
        assert_eq!(rule.plan(&chunks), chunks);
        assert_eq!(rule.fetched(&chunks), 4 * 64 * KIB);
    }

    #[test]
    fn gaps_merge_while_small_beside_what_is_read() {
        let rule = RangeMerge::default();
        // 8 MiB read, 512 KiB apart: 512 KiB is a thirty-second of 16 MiB, so they merge
        let big = [0..8192 * KIB, 8704 * KIB..16896 * KIB];
        assert_eq!(rule.plan(&big), [0..16896 * KIB]);
        // the same gap between 100 KiB reads does not
        let small = [0..100 * KIB, 612 * KIB..712 * KIB];
        assert_eq!(rule.plan(&small).len(), 2);
        // and no gap past max_gap merges, however much is read
        let huge = [0..64 * 1024 * KIB, 66 * 1024 * KIB..128 * 1024 * KIB];
        assert_eq!(rule.plan(&huge).len(), 2);
    }

    #[test]
    fn overlapping_unsorted_and_empty_ranges() {
        let rule = RangeMerge { gap: 0, ratio: 0.0, max_gap: 0 };
        assert_eq!(rule.plan(&[50..60, 0..10, 5..20, 30..30, 20..25]), [0..25, 50..60]);
        assert_eq!(rule.fetched(&[]), 0);
    }

    #[tokio::test]
    async fn each_range_gets_its_own_bytes() {
        let data: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        let rule = RangeMerge { gap: 16, ratio: 0.0, max_gap: 0 };
        let ranges = [100..110, 0..10, 5..15, 3000..3010, 4090..4100, 7..7];
        let mut requests = vec![];
        let got = rule
            .fetch(&ranges, |r: Range<u64>| {
                requests.push(r.clone());
                // the object ends at 4096: the last request comes back short
                let end = (r.end as usize).min(data.len());
                let bytes = Bytes::copy_from_slice(&data[r.start as usize..end]);
                async move { Ok::<_, ()>(bytes) }
            })
            .await
            .unwrap();
        assert_eq!(requests, [0..15, 100..110, 3000..3010, 4090..4100]);
        for (r, b) in ranges.iter().zip(&got) {
            let end = (r.end as usize).min(data.len());
            assert_eq!(b.as_ref(), &data[r.start as usize..end], "range {r:?}");
        }
    }
}
