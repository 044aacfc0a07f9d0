//! Failed-attempt limits (voucher and login guessing), per key (MAC, IP), in fixed windows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Limiter {
    max: u32,
    window: Duration,
    seen: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Entries kept at most; beyond, expired ones are swept and then the map is cleared (an
/// attacker rotating keys gets a fresh count, which the per-IP key still bounds).
const CAP: usize = 100_000;

impl Limiter {
    pub fn new(max: u32, window: Duration) -> Limiter {
        Limiter {
            max,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `key` may try again, when it is over the limit now.
    pub fn blocked(&self, key: &str, now: Instant) -> Option<u64> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (start, n) = *seen.get(key)?;
        let end = start + self.window;
        (n >= self.max && now < end).then(|| end.duration_since(now).as_secs().max(1))
    }

    pub fn fail(&self, key: &str, now: Instant) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= CAP {
            let window = self.window;
            seen.retain(|_, (start, _)| now.duration_since(*start) < window);
            if seen.len() >= CAP {
                seen.clear();
            }
        }
        let e = seen.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(e.0) >= self.window {
            *e = (now, 0);
        }
        e.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_the_window_ends() {
        let l = Limiter::new(3, Duration::from_secs(60));
        let t = Instant::now();
        for _ in 0..2 {
            l.fail("mac", t);
        }
        assert_eq!(l.blocked("mac", t), None);
        l.fail("mac", t);
        assert_eq!(l.blocked("mac", t + Duration::from_secs(10)), Some(50));
        assert_eq!(l.blocked("other", t), None);
        assert_eq!(l.blocked("mac", t + Duration::from_secs(60)), None);
        l.fail("mac", t + Duration::from_secs(61));
        assert_eq!(l.blocked("mac", t + Duration::from_secs(61)), None);
    }
}
