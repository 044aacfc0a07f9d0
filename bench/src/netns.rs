//! Network namespaces for end-to-end tests and the gateway benchmark: created and deleted by
//! their user, with veth links between them. Nothing here sends traffic outside them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

/// A namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh(&["ip", "netns", "add", name]);
        let ns = Netns { name: name.into() };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS…`
    pub fn ip(&self, args: &[&str]) {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v);
    }

    /// A command run inside the namespace (`ip netns exec NAME PROGRAM`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    pub fn sysctl(&self, kv: &str) {
        sh(&["ip", "netns", "exec", &self.name, "sysctl", "-qw", kv]);
    }

    /// Runs `f` on a thread that has entered the namespace: sockets it opens live there.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(f).join().expect("namespace thread panicked")
    }

    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(&path);
            f()
        })
    }
}

fn enter(path: &str) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    use std::os::fd::AsRawFd;
    // SAFETY: a valid namespace fd; setns affects only the calling thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}

/// A veth pair `a_if` (in `a`) ↔ `b_if` (in `b`), both up, with addresses (CIDR, IPv6 without
/// duplicate address detection so they are usable at once).
pub fn link(a: &Netns, a_if: &str, a_addrs: &[&str], b: &Netns, b_if: &str, b_addrs: &[&str]) {
    sh(&[
        "ip", "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
        &b.name,
    ]);
    for (ns, ifname, addrs) in [(a, a_if, a_addrs), (b, b_if, b_addrs)] {
        for addr in addrs {
            if addr.contains(':') {
                ns.ip(&["-6", "addr", "add", addr, "dev", ifname, "nodad"]);
            } else {
                ns.ip(&["addr", "add", addr, "dev", ifname]);
            }
        }
        ns.ip(&["link", "set", ifname, "up"]);
    }
}

/// Can a TCP connection be opened within `timeout`?
pub fn connects(to: SocketAddr, timeout: Duration) -> Result<(), std::io::ErrorKind> {
    TcpStream::connect_timeout(&to, timeout)
        .map(|_| ())
        .map_err(|e| e.kind())
}

/// A minimal HTTP/1.1 exchange (`Connection: close`): status, headers (lower-case names), body.
pub fn http(
    to: SocketAddr,
    method: &str,
    path: &str,
    host: &str,
    form: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("connect {to}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let body = form.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: frontdesk-test\r\n");
    if form.is_some() {
        req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer from {to}: {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A TCP server on `[::]:port` (dual-stack) in the calling namespace thread: answers HTTP with
/// `reply`, or echoes lines when `reply` is None. Runs until the process ends.
pub fn serve_tcp(port: u16, reply: Option<&'static str>) {
    let l = TcpListener::bind(("::", port)).unwrap_or_else(|e| panic!("bind [::]:{port}: {e}"));
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                match reply {
                    Some(body) => {
                        let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                        let _ = c.read(&mut buf);
                        let _ = write!(
                            c,
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    None => loop {
                        match c.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if c.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    },
                }
            });
        }
    });
}

/// A UDP echo on `[::]:port` (dual-stack) in the calling namespace thread; runs until the
/// process ends.
pub fn serve_udp_echo(port: u16) {
    let s = std::net::UdpSocket::bind(("::", port))
        .unwrap_or_else(|e| panic!("bind udp [::]:{port}: {e}"));
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
}

/// Sends `count` datagrams to `to` as fast as possible, then counts the answers that arrive
/// within `wait`.
pub fn udp_burst(to: SocketAddr, count: usize, wait: Duration) -> usize {
    let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let s = std::net::UdpSocket::bind(bind).unwrap();
    for i in 0..count {
        let _ = s.send_to(&(i as u32).to_be_bytes(), to);
    }
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let deadline = std::time::Instant::now() + wait;
    let mut answers = 0;
    let mut buf = [0u8; 64];
    while std::time::Instant::now() < deadline {
        if s.recv(&mut buf).is_ok() {
            answers += 1;
        }
    }
    answers
}
