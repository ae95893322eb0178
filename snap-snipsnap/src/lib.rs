//! The `snap` crate's API, as parquet and orc-rust call it, answered by snipsnap.
//!
//! Snappy decoding was a fifth of the CPU of TPC-H SF1 through glaux (a `perf` profile of the
//! 22 queries); snipsnap decodes the same pages in less time than `snap` and also encodes, so
//! glaux's CTAS, INSERT and UNLOAD write Snappy through it as well. Only what parquet and
//! orc-rust use is here: the raw block format (`raw`), the framed stream readers and writers
//! that parquet's command-line tools name (`read`, `write`), and the error type.

pub use snipsnap::{Error, Result, read, write};

/// Raw Snappy blocks: the format Parquet pages and ORC compression chunks hold.
pub mod raw {
    pub use snipsnap::decompress_len;
    pub use snipsnap::raw::{Decoder, Encoder, max_compress_len};
}

#[cfg(test)]
mod tests {
    use super::raw::{Decoder, Encoder, decompress_len, max_compress_len};

    /// Bytes of the kinds pages hold: runs, repeated phrases and noise, from a fixed seed.
    fn sample(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            match next() % 3 {
                0 => out.extend(std::iter::repeat_n(next() as u8, (next() % 40) as usize)),
                1 => out.extend_from_slice(b"1996-03-13|DELIVER IN PERSON|TRUCK|"),
                _ => out.extend_from_slice(&next().to_le_bytes()),
            }
        }
        out.truncate(len);
        out
    }

    fn compress(input: &[u8]) -> Vec<u8> {
        let mut out = vec![0; max_compress_len(input.len())];
        let written = Encoder::new().compress(input, &mut out).unwrap();
        out.truncate(written);
        out
    }

    #[test]
    fn blocks_round_trip_at_every_size_parquet_writes() {
        for (i, len) in [0, 1, 7, 64, 65, 4096, 65_536, 65_537, 1 << 20, 3 << 20].into_iter().enumerate() {
            let input = sample(len, i as u64 + 11);
            let block = compress(&input);
            assert_eq!(decompress_len(&block).unwrap(), len);
            // as parquet does: the output sized from the page header, decoded into in place
            let mut output = vec![0; len];
            let n = Decoder::new().decompress(&block, &mut output).unwrap();
            assert_eq!(n, len);
            assert_eq!(output, input, "round trip of {len} bytes");
        }
    }

    #[test]
    fn a_repetitive_page_compresses() {
        let input = b"AIR|".repeat(10_000);
        assert!(compress(&input).len() < input.len() / 20);
    }

    #[test]
    fn an_output_smaller_than_the_block_is_an_error() {
        let block = compress(&sample(1000, 3));
        let mut output = vec![0; 999];
        let error = Decoder::new().decompress(&block, &mut output).unwrap_err();
        assert!(error.to_string().contains("1000"), "{error}");
    }

    /// A damaged file must fail its query with an error, never panic or read out of bounds:
    /// every truncation of a block and every single-byte change in its first kilobyte.
    #[test]
    fn damaged_blocks_are_errors_or_bytes_not_panics() {
        let input = sample(64 * 1024, 5);
        let block = compress(&input);
        for end in 0..block.len().min(2048) {
            let mut output = vec![0; input.len()];
            let _ = Decoder::new().decompress(&block[..end], &mut output);
        }
        for at in 0..block.len().min(1024) {
            for flip in [0x01, 0x80, 0xff] {
                let mut damaged = block.clone();
                damaged[at] ^= flip;
                let mut output = vec![0; input.len() + 64];
                if let Ok(n) = Decoder::new().decompress(&damaged, &mut output) {
                    assert!(n <= output.len());
                }
            }
        }
        assert!(Decoder::new().decompress(&[], &mut [0; 4]).is_err());
    }

    #[test]
    fn the_error_is_a_std_error_for_parquet_and_orc() {
        fn boxed(e: super::Error) -> Box<dyn std::error::Error + Send + Sync> {
            Box::new(e)
        }
        let error = boxed(decompress_len(&[0xff; 11]).unwrap_err());
        assert!(!error.to_string().is_empty());
    }
}
