//! What a glaux process does first in `main`: check that the CPU has the instructions the build
//! uses, and (in the binaries that allocate with mimalloc) turn transparent huge pages off.
//!
//! The CPU check: a build for x86-64-v3 (`.cargo/config.toml`) stops with the names of the
//! instructions this CPU lacks, instead of dying of SIGILL in the middle of a query.
//!
//! Huge pages: mimalloc asks the kernel for transparent huge pages on the memory it maps, and the
//! kernel zeroes each 2 MiB page whole at its first touch, however little of it a hash table or a
//! batch then uses. Profiled on TPC-H SF10 with huge pages allowed, zeroing pages
//! (`clear_page_erms`) took 38% of q10's CPU, 44% of q18's, 40% of q09's and 21% of q21's; with
//! them off, mostly under 5% (q18's 4 KiB faults of fresh memory still 3–22%), and q10's CPU
//! samples halved (the README's Benchmarks section has the times).

/// Turns transparent huge pages off for this process (Linux; elsewhere nothing to do), as
/// mimalloc's `MIMALLOC_ALLOW_THP=0` does. Call it first thing in `main`: the kernel checks the
/// setting at each page fault, so memory mapped before it (mimalloc's first arena) is covered too.
/// The answer is whether the kernel took it; a process that cannot change it runs as before.
pub fn without_transparent_huge_pages() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: PR_SET_THP_DISABLE takes an integer flag and no pointers; it only sets a flag of
        // this process's memory map
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        false
    }
}

/// The instruction set extensions this build was compiled to use, each with whether the running
/// CPU has it. Only what the check can see: on other architectures, or a baseline x86-64 build,
/// the list is empty.
fn compiled_features() -> Vec<(&'static str, bool)> {
    #[allow(unused_mut)]
    let mut features = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        // a macro because both cfg! and is_x86_feature_detected! take a literal
        macro_rules! feature {
            ($($name:tt),*) => {$(
                if cfg!(target_feature = $name) {
                    features.push(($name, std::arch::is_x86_feature_detected!($name)));
                }
            )*};
        }
        feature!("avx", "avx2", "bmi1", "bmi2", "fma", "f16c", "lzcnt", "movbe", "popcnt", "sse4.2");
        feature!("avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd");
    }
    features
}

/// The instruction set extensions beyond the x86-64 baseline this build uses (none elsewhere), for
/// reports that say what a figure was measured with.
pub fn build_cpu_features() -> Vec<&'static str> {
    compiled_features().into_iter().map(|(name, _)| name).collect()
}

/// What the running CPU lacks of what this build uses, from `features` (name, present).
fn missing(features: &[(&'static str, bool)]) -> Vec<&'static str> {
    features.iter().filter(|(_, present)| !present).map(|(name, _)| *name).collect()
}

/// The message for a CPU without some of the build's instructions, or None when it has them all.
fn refusal(features: &[(&'static str, bool)]) -> Option<String> {
    let missing = missing(features);
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "this glaux was built for CPUs with {} and this one lacks {}; build it for this machine with \
         RUSTFLAGS=\"-C target-cpu=native\" cargo build --release (or target-cpu=x86-64 for any x86-64 CPU)",
        features.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", "),
        missing.join(", ")
    ))
}

/// Checks that the running CPU has every instruction set extension this build was compiled for;
/// the error names the missing ones and how to build for this CPU. Call it first thing in `main`.
pub fn check_cpu() -> std::result::Result<(), String> {
    match refusal(&compiled_features()) {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_running_the_tests_has_what_the_build_uses() {
        // if it did not, this test binary would not have got this far; the check must agree
        assert_eq!(check_cpu(), Ok(()));
    }

    #[test]
    fn huge_pages_are_off_after_the_call() {
        assert!(without_transparent_huge_pages());
        // SAFETY: PR_GET_THP_DISABLE takes no arguments and reads a flag of this process
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1);
    }

    #[test]
    fn a_cpu_without_avx2_is_refused_with_the_missing_names() {
        let features = [("avx", true), ("avx2", false), ("bmi2", false), ("fma", true)];
        let message = refusal(&features).unwrap();
        assert!(message.contains("built for CPUs with avx, avx2, bmi2, fma"), "{message}");
        assert!(message.contains("this one lacks avx2, bmi2;"), "{message}");
        assert!(message.contains("target-cpu=native"), "{message}");
        assert_eq!(refusal(&[("avx2", true)]), None);
        assert_eq!(refusal(&[]), None);
    }
}
