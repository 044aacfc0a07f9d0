//! Process-wide event counters for `/metrics` that no single component owns the rendering of
//! (the door sync, the portal and the console count; `serve` renders). Relaxed atomics: a
//! scrape needs totals, not ordering.

use std::sync::atomic::{AtomicU64, Ordering};

pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Default for Counter {
    fn default() -> Self {
        Counter::new()
    }
}

/// Door sync: write requests made, members that failed a round, reconcile runs.
pub static DOOR_SYNC_WRITES: Counter = Counter::new();
pub static DOOR_SYNC_FAILURES: Counter = Counter::new();
pub static DOOR_SYNC_RUNS: Counter = Counter::new();
/// Captive portal: clients let online; wrong voucher codes.
pub static PORTAL_ONLINE: Counter = Counter::new();
pub static PORTAL_REFUSED: Counter = Counter::new();
/// Operator console: logins, failed logins (wrong password or code, or rate limited).
pub static CONSOLE_LOGINS: Counter = Counter::new();
pub static CONSOLE_LOGIN_FAILURES: Counter = Counter::new();

/// A Prometheus label value, escaped (backslash, double quote, newline).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `# HELP` and `# TYPE` lines of one metric family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
}
