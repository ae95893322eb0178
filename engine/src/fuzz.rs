//! Settings of the generated-input tests (proptest): how many cases, from which seed.
//!
//! The suite runs a few hundred cases per target from a fixed seed, so a run is repeatable;
//! `bench/run fuzz` runs a million per target (`GLAUX_FUZZ_CASES`) from a seed of its choosing
//! (`GLAUX_FUZZ_SEED`). A case that fails is printed shrunk, ready to become a regression test.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// The runner's settings, from `GLAUX_FUZZ_CASES` (default 256) and `GLAUX_FUZZ_SEED`.
pub(crate) fn config() -> Config {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.trim().parse::<u64>().ok());
    Config {
        cases: var("GLAUX_FUZZ_CASES").unwrap_or(256) as u32,
        rng_seed: RngSeed::Fixed(var("GLAUX_FUZZ_SEED").unwrap_or(20261129)),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Text made of `pieces` and short words, `0..len` of them joined by spaces or nothing: the
/// shape of the input a parser expects, broken in the ways people break it.
pub(crate) fn shaped(pieces: &'static [&'static str], len: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(pieces).prop_map(str::to_string),
        1 => "[a-zA-Z0-9_]{1,6}",
        1 => "\\PC{1,3}",
    ];
    (proptest::collection::vec(piece, 0..len), any::<bool>())
        .prop_map(|(parts, spaced)| parts.join(if spaced { " " } else { "" }))
}

/// A nesting `depth` deep: `open` repeated, `inner`, `close` repeated.
pub(crate) fn nested(open: &str, inner: &str, close: &str, depth: usize) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}
