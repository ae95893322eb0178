//! Child processes in tests: killed when the test lets go of them, and waited for with a
//! deadline that guards against hangs (never a performance assertion).

use std::net::TcpListener;
use std::ops::{Deref, DerefMut};
use std::process::{Child, Output};
use std::time::Duration;

/// The `glaux` binary that `cargo test --workspace` built beside the running test, for tests
/// of crates other than the one that defines it (which use `CARGO_BIN_EXE_glaux`).
pub fn glaux_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe.parent().and_then(std::path::Path::parent).expect("target/<profile>/deps").join("glaux");
    assert!(bin.exists(), "{} (built by cargo test --workspace)", bin.display());
    bin
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failing test leaves none behind.
pub struct Guarded(pub Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Deref for Guarded {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for Guarded {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Waits for `child` to finish, collecting its output on another thread (a full pipe must not
/// stall it); kills it and panics naming `what` if it runs past `limit`.
pub fn output_within(child: Child, limit: Duration, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            let _ = std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{what} did not finish within {} s", limit.as_secs());
        }
    }
}

/// A loopback port nothing listens on at the moment.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}
