//! Ending a client's established connections when it is de-authorized: its conntrack entries
//! are deleted, so replies of a flow opened before cannot come back in (the forward chain
//! already drops the client's own packets on the next one).

use crate::apply::find_program;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;

#[derive(Clone, Debug)]
pub struct Conntrack {
    program: Option<PathBuf>,
}

impl Default for Conntrack {
    fn default() -> Self {
        Conntrack {
            program: find_program("conntrack"),
        }
    }
}

impl Conntrack {
    pub fn available(&self) -> bool {
        self.program.is_some()
    }

    /// Deletes every entry whose original source is one of `ips`. Returns how many addresses
    /// were flushed; an address without entries is not an error.
    pub async fn flush(&self, ips: &[IpAddr]) -> Result<usize, String> {
        let Some(program) = &self.program else {
            return Err("conntrack is not installed (package conntrack): established connections of de-authorized clients end only when their packets are dropped".into());
        };
        let mut done = 0;
        for ip in ips {
            let fam = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
            let out = tokio::process::Command::new(program)
                .args(["-D", "-f", fam, "-s", &ip.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .await
                .map_err(|e| format!("cannot run conntrack: {e}"))?;
            // Exit 1 with "0 flow entries have been deleted" means there was nothing to do.
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() || err.contains("0 flow entries") {
                done += 1;
            } else {
                return Err(format!("conntrack -D -s {ip}: {}", err.trim()));
            }
        }
        Ok(done)
    }
}
