//! The wall-clock step watch the scheduler re-plans on. Stepping the clock needs
//! CAP_SYS_TIME (root in CI); the step used is "set the clock to what it reads", so the machine's
//! time does not move, but the kernel still reports a discontinuous change.

use frontdesk_core::clock::RealtimeWatch;
use std::time::Duration;

fn step_clock_in_place() -> std::io::Result<()> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: plain syscalls with a pointer to a local.
    unsafe {
        if libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) != 0
            || libc::clock_settime(libc::CLOCK_REALTIME, &ts) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_wall_clock_step_is_noticed() {
    let mut watch = RealtimeWatch::new().expect("timerfd");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), watch.changed())
            .await
            .is_err(),
        "no step, no notice"
    );
    if let Err(e) = step_clock_in_place() {
        eprintln!(
            "SKIPPED: a_wall_clock_step_is_noticed needs CAP_SYS_TIME to step the clock ({e})"
        );
        return;
    }
    tokio::time::timeout(Duration::from_secs(1), watch.changed())
        .await
        .expect("the step is reported within a second")
        .expect("watch works");
    // Re-armed: quiet again until the next step.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), watch.changed())
            .await
            .is_err()
    );
    step_clock_in_place().unwrap();
    tokio::time::timeout(Duration::from_secs(1), watch.changed())
        .await
        .expect("a second step is reported too")
        .unwrap();
}
