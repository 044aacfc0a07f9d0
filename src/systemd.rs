//! sd_notify without libsystemd: one datagram to `$NOTIFY_SOCKET` (a path, or an abstract
//! name written `@name`). Outside systemd (no variable) it does nothing.

/// Sends `state` ("READY=1", "STOPPING=1", "RELOADING=1", "STATUS=…"); errors are logged.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&path, state) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

fn send(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
        None => SocketAddr::from_pathname(std::path::Path::new(path))?,
    };
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}
