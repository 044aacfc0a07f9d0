//! Finding a portal client's MAC from the address it connected from: the kernel's neighbour
//! table over rtnetlink (one RTM_GETNEIGH dump), asking the kernel to resolve the neighbour
//! when it has no entry yet. The MAC a browser might send is never trusted.

use frontdesk_core::mac::MacAddr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const RTM_GETNEIGH: u16 = 30;
const RTM_NEWNEIGH: u16 = 28;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NUD_INCOMPLETE: u16 = 0x01;
const NUD_FAILED: u16 = 0x20;
const NUD_NOARP: u16 = 0x40;

/// One entry of the neighbour table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub ifindex: u32,
    pub ip: IpAddr,
    pub mac: MacAddr,
    pub state: u16,
}

/// `::ffff:a.b.c.d` (a dual-stack listener's view of an IPv4 client) as plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The whole neighbour table (IPv4 ARP and IPv6 ND), usable entries only.
pub fn dump() -> io::Result<Vec<Neighbour>> {
    let fd = Socket::open()?;
    // nlmsghdr (16) + ndmsg (12).
    let mut req = [0u8; 28];
    req[0..4].copy_from_slice(&28u32.to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    fd.send(&req)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = fd.recv(&mut buf)?;
        if parse(&buf[..n], &mut out)? {
            return Ok(out);
        }
    }
}

/// Parses one datagram of a dump reply into `out`; true when the dump is complete.
pub fn parse(mut buf: &[u8], out: &mut Vec<Neighbour>) -> io::Result<bool> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed netlink message");
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        let typ = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
        if len < 16 || len > buf.len() {
            return Err(bad());
        }
        let msg = &buf[16..len];
        match typ {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = msg
                    .get(0..4)
                    .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                    .unwrap_or(-1);
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
            }
            RTM_NEWNEIGH if msg.len() >= 12 => {
                let ifindex = i32::from_ne_bytes(msg[4..8].try_into().unwrap()) as u32;
                let state = u16::from_ne_bytes(msg[8..10].try_into().unwrap());
                let (mut ip, mut mac) = (None, None);
                let mut attrs = &msg[12..];
                while attrs.len() >= 4 {
                    let alen = u16::from_ne_bytes(attrs[0..2].try_into().unwrap()) as usize;
                    let atyp = u16::from_ne_bytes(attrs[2..4].try_into().unwrap()) & 0x3fff;
                    if alen < 4 || alen > attrs.len() {
                        return Err(bad());
                    }
                    let v = &attrs[4..alen];
                    match (atyp, v.len()) {
                        (NDA_DST, 4) => {
                            ip = Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(v).unwrap())))
                        }
                        (NDA_DST, 16) => {
                            ip = Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(v).unwrap())))
                        }
                        (NDA_LLADDR, 6) => mac = Some(MacAddr(v.try_into().unwrap())),
                        _ => {}
                    }
                    let step = (alen + 3) & !3;
                    attrs = attrs.get(step..).unwrap_or(&[]);
                }
                let usable = state & (NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP) == 0;
                if let (Some(ip), Some(mac), true) = (ip, mac, usable) {
                    out.push(Neighbour {
                        ifindex,
                        ip,
                        mac,
                        state,
                    });
                }
            }
            _ => {}
        }
        let step = (len + 3) & !3;
        buf = buf.get(step..).unwrap_or(&[]);
    }
    Ok(false)
}

/// The MAC behind `ip`. Without an entry, a datagram to the discard port makes the kernel
/// resolve it (ARP / neighbour solicitation); we then look again for up to `wait`.
pub fn lookup(
    ip: IpAddr,
    wait: Duration,
    accept: impl Fn(&Neighbour) -> bool,
) -> io::Result<Option<Neighbour>> {
    let ip = canonical(ip);
    let find = || -> io::Result<Option<Neighbour>> {
        Ok(dump()?.into_iter().find(|n| n.ip == ip && accept(n)))
    };
    if let Some(n) = find()? {
        return Ok(Some(n));
    }
    if ip.is_loopback() || ip.is_unspecified() {
        return Ok(None);
    }
    let bind: SocketAddr = if ip.is_ipv4() {
        "0.0.0.0:0".parse().unwrap()
    } else {
        "[::]:0".parse().unwrap()
    };
    if let Ok(s) = UdpSocket::bind(bind) {
        let _ = s.send_to(&[], SocketAddr::new(ip, 9));
    }
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
        if let Some(n) = find()? {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

/// Every address the kernel currently knows for a MAC (IPv4 and all IPv6, privacy ones too).
pub fn addresses_of(mac: MacAddr) -> io::Result<Vec<IpAddr>> {
    Ok(dump()?
        .into_iter()
        .filter(|n| n.mac == mac)
        .map(|n| n.ip)
        .collect())
}

/// The name of an interface index, asked on a socket of our own (SIOCGIFNAME): it answers for
/// the network namespace of the calling thread.
pub fn ifname(index: u32) -> Option<String> {
    if index == 0 || index > i32::MAX as u32 {
        return None;
    }
    // SAFETY: plain socket(2); closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_ifru.ifru_ifindex = index as i32;
    // SAFETY: valid fd and a properly sized ifreq for SIOCGIFNAME.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFNAME as _, &mut req) };
    // SAFETY: we own fd.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return None;
    }
    let bytes: Vec<u8> = req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).ok()
}

/// `ClientLocator` for gateway mode: the MAC the kernel has for the address, accepted only
/// on the portal networks' interfaces.
pub struct NeighbourLocator {
    ifaces: Vec<String>,
}

impl NeighbourLocator {
    pub fn new(ifaces: Vec<String>) -> NeighbourLocator {
        NeighbourLocator { ifaces }
    }
}

#[async_trait::async_trait]
impl frontdesk_core::ports::ClientLocator for NeighbourLocator {
    async fn locate(&self, ip: IpAddr) -> Option<frontdesk_core::ports::ClientRef> {
        let ip = canonical(ip);
        let ifaces = self.ifaces.clone();
        let found = tokio::task::spawn_blocking(move || {
            lookup(ip, Duration::from_millis(500), |n| {
                ifname(n.ifindex).is_some_and(|name| ifaces.contains(&name))
            })
            .map(|n| n.map(|n| (n.mac, ifname(n.ifindex))))
        })
        .await
        .ok()?;
        match found {
            Ok(Some((mac, iface))) => Some(frontdesk_core::ports::ClientRef {
                mac,
                ip: Some(ip),
                location: iface,
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "portal: neighbour table unreadable");
                None
            }
        }
    }
}

struct Socket(i32);

impl Socket {
    fn open() -> io::Result<Socket> {
        // SAFETY: plain socket(2) call; the descriptor is owned by the returned value.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let s = Socket(fd);
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: valid fd and a timeval of the size given.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        Ok(s)
    }

    fn send(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: zeroed sockaddr_nl addresses the kernel (pid 0).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: buffer and address are valid for the lengths given.
        let n = unsafe {
            libc::sendto(
                self.0,
                buf.as_ptr() as *const libc::c_void,
                buf.len(),
                0,
                &addr as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buffer valid for its length.
        let n = unsafe { libc::recv(self.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(typ: u16, v: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&typ.to_ne_bytes());
        a.extend_from_slice(v);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    fn msg(typ: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&typ.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(body);
        m
    }

    fn neigh(ifindex: i32, state: u16, ip: &[u8], mac: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 12];
        b[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        b[8..10].copy_from_slice(&state.to_ne_bytes());
        b.extend(attr(NDA_DST, ip));
        b.extend(attr(NDA_LLADDR, mac));
        b.extend(attr(99, &[1, 2, 3]));
        msg(RTM_NEWNEIGH, &b)
    }

    #[test]
    fn parses_a_dump_and_skips_unusable_entries() {
        let mut buf = neigh(3, 0x02, &[10, 0, 0, 5], &[2, 0, 0, 0, 0, 5]);
        buf.extend(neigh(3, NUD_FAILED, &[10, 0, 0, 6], &[2, 0, 0, 0, 0, 6]));
        let v6: Ipv6Addr = "fd00::5".parse().unwrap();
        buf.extend(neigh(4, 0x04, &v6.octets(), &[2, 0, 0, 0, 0, 5]));
        let mut out = Vec::new();
        assert!(!parse(&buf, &mut out).unwrap());
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].ip, "10.0.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(out[1].ip, IpAddr::V6(v6));
        assert_eq!(out[1].mac, MacAddr([2, 0, 0, 0, 0, 5]));
        assert!(parse(&msg(NLMSG_DONE, &[0; 4]), &mut out).unwrap());
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        let mut out = Vec::new();
        let mut m = neigh(3, 2, &[10, 0, 0, 5], &[2, 0, 0, 0, 0, 5]);
        m[16 + 12] = 200; // attribute longer than the message
        assert!(parse(&m, &mut out).is_err());
        let mut m = msg(RTM_NEWNEIGH, &[0; 12]);
        m[0] = 255;
        assert!(parse(&m, &mut out).is_err());
        for n in 0..40 {
            let _ = parse(&neigh(1, 2, &[1, 2, 3, 4], &[1; 6])[..n], &mut out);
        }
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let ip: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(canonical(ip), "10.0.0.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn loopback_has_a_name() {
        assert_eq!(ifname(1).as_deref(), Some("lo"));
        assert_eq!(ifname(0), None);
    }

    #[test]
    fn dumps_the_real_table() {
        // Any Linux machine answers the dump (possibly with no entries).
        dump().expect("RTM_GETNEIGH dump");
    }
}
