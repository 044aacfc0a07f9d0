//! Wall time for every decision, and notice when it jumps.
//!
//! `now()` is `Utc::now()` in release builds. Debug builds (the test suite's) honour
//! `FRONTDESK_TEST_CLOCK_OFFSET_MS`, read once, so an end-to-end test can start `frontdesk serve`
//! a few seconds before a closing time without waiting for one; release builds do not contain
//! that code path at all.
//!
//! Timers in tokio are monotonic: when NTP steps the wall clock, a sleep until "18:00" computed
//! before the step fires at the wrong wall time. [`RealtimeWatch`] reports such steps (a timerfd
//! on `CLOCK_REALTIME` with `TFD_TIMER_CANCEL_ON_SET`, Linux), so the scheduler re-plans.

use chrono::{DateTime, Utc};

/// The current wall time, as every enforcement point must see it.
pub fn now() -> DateTime<Utc> {
    #[cfg(debug_assertions)]
    {
        Utc::now() + chrono::Duration::milliseconds(test_offset_ms())
    }
    #[cfg(not(debug_assertions))]
    {
        Utc::now()
    }
}

#[cfg(debug_assertions)]
fn test_offset_ms() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("FRONTDESK_TEST_CLOCK_OFFSET_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

/// Reports discontinuous changes of the wall clock (settimeofday, NTP steps, manual `date -s`).
pub struct RealtimeWatch {
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

impl RealtimeWatch {
    /// Fails where timerfd is unavailable (not Linux, seccomp); callers then fall back to
    /// re-planning at least every few minutes.
    pub fn new() -> std::io::Result<RealtimeWatch> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscall; the returned descriptor is owned below.
        let raw = unsafe {
            libc::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        arm(&fd)?;
        // SAFETY: the `OwnedFd` moves into the `AsyncFd`, which owns it until dropped.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }?;
        Ok(RealtimeWatch { fd })
    }

    /// Returns when the wall clock was set (stepped) since the last call.
    pub async fn changed(&mut self) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            // SAFETY: reads 8 bytes into a local buffer from our own descriptor.
            let n = unsafe {
                libc::read(
                    self.fd.get_ref().as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            };
            if n >= 0 {
                // The far-future expiry passed (clock set beyond it): re-arm, report a change.
                arm(self.fd.get_ref())?;
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::ECANCELED) => {
                    arm(self.fd.get_ref())?;
                    return Ok(());
                }
                Some(libc::EAGAIN) => guard.clear_ready(),
                _ => return Err(err),
            }
        }
    }
}

/// An absolute timer far in the future that is cancelled when the clock is set.
fn arm(fd: &std::os::fd::OwnedFd) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            // 2^40 s: thousands of years ahead, and within every 64-bit time_t.
            tv_sec: 1 << 40,
            tv_nsec: 0,
        },
    };
    // SAFETY: valid descriptor and pointers to locals.
    let rc = unsafe {
        libc::timerfd_settime(
            fd.as_raw_fd(),
            libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
            &spec,
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
