//! The whole `inet frontdesk` table, rendered from configuration and current state as a pure
//! function (SPEC §5). The text is what `nft -f` reads and what `nft list table` prints, so the
//! operator can read `frontdesk firewall show` and the golden files the same way.
//!
//! Shape of the table:
//! - `authorized` (MAC, per-element timeout = the client's `valid_until`): portal clients let out.
//! - `blocked` (MAC): cancelled and suspended members' devices, dropped on every tier network.
//! - `closed` (interface name): tier networks switched off after hours by the scheduler.
//! - forward: a packet arriving on a tier interface may only leave through the WAN (isolation);
//!   on a portal network only from an authorized MAC, checked on every packet (not only on new
//!   connections), so removing the element stops established flows at once. Packets into a tier
//!   network are only replies to connections its clients opened.
//! - input from tier networks: DHCP, DNS, ICMP and the portal; nothing else of the appliance.
//! - prerouting: unauthorized HTTP on portal networks is redirected to the portal listener.
//!   HTTPS and QUIC are rejected at once so browsers give up quickly; DNS is never forged.

use frontdesk_core::mac::MacAddr;
use std::fmt::Write;
use std::net::IpAddr;

/// The table Frontdesk owns; nothing else is touched.
pub const TABLE: &str = "frontdesk";

/// What a tier network is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Guests and day passes: captive portal until authorized.
    Portal,
    /// Members and teams: the internet, nothing else.
    Members,
    /// Printers and gadgets: only what the operator allows.
    Iot,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Portal => "portal",
            Role::Members => "members",
            Role::Iot => "iot",
        }
    }
}

/// One tier network: a VLAN interface of the appliance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// Tier name (plan or team), for the operator's eyes.
    pub name: String,
    pub iface: String,
    pub role: Role,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// A destination IoT devices may reach: `ADDR[/LEN] [tcp|udp PORT]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allow {
    pub addr: IpAddr,
    pub prefix: u8,
    pub port: Option<(Proto, u16)>,
}

impl std::str::FromStr for Allow {
    type Err = String;
    fn from_str(s: &str) -> Result<Allow, String> {
        let bad = || {
            format!(
                "{s:?}: expected ADDRESS[/PREFIX] [tcp|udp PORT], e.g. \"192.168.1.10 tcp 631\""
            )
        };
        let mut words = s.split_whitespace();
        let net = words.next().ok_or_else(bad)?;
        let (addr, prefix) = match net.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (net, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        let port = match (words.next(), words.next()) {
            (None, _) => None,
            (Some(p), Some(n)) => {
                let proto = match p {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => return Err(bad()),
                };
                let n: u16 = n.parse().map_err(|_| bad())?;
                if n == 0 {
                    return Err(bad());
                }
                Some((proto, n))
            }
            (Some(_), None) => return Err(bad()),
        };
        if words.next().is_some() {
            return Err(bad());
        }
        Ok(Allow { addr, prefix, port })
    }
}

/// Gateway configuration, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    pub wan: String,
    pub networks: Vec<Network>,
    /// Where unauthorized HTTP is redirected (the portal listener's port).
    pub portal_port: u16,
    /// The portal's HTTPS port, when it has a certificate.
    pub portal_tls_port: Option<u16>,
    /// Port of the appliance's DNS resolver reachable from tier networks (53).
    pub dns_port: u16,
    /// Pre-login DNS queries per second per client (burst: twice that).
    pub dns_rate: u32,
    pub iot_allow: Vec<Allow>,
    /// Masquerade IPv4 leaving through the WAN.
    pub masquerade: bool,
}

/// Linux interface names: 1–15 bytes, no '/', whitespace or quotes. We accept the safe subset.
pub fn valid_iface(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
}

impl Gateway {
    pub fn validate(&self) -> Result<(), String> {
        if !valid_iface(&self.wan) {
            return Err(format!(
                "gateway.wan_interface {:?} is not an interface name",
                self.wan
            ));
        }
        if self.networks.is_empty() {
            return Err("gateway.interfaces: no tier network configured".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for n in &self.networks {
            if !valid_iface(&n.iface) {
                return Err(format!(
                    "gateway.interfaces.{}: {:?} is not an interface name",
                    n.name, n.iface
                ));
            }
            if n.iface == self.wan {
                return Err(format!(
                    "gateway.interfaces.{}: {} is the WAN interface",
                    n.name, n.iface
                ));
            }
            if !seen.insert(&n.iface) {
                return Err(format!(
                    "gateway.interfaces: {} is given to two tiers; each tier needs its own VLAN interface",
                    n.iface
                ));
            }
        }
        if self.dns_rate == 0 {
            return Err("gateway.dns_rate must be at least 1".into());
        }
        Ok(())
    }

    fn ifaces(&self, role: Option<Role>) -> Vec<&str> {
        self.networks
            .iter()
            .filter(|n| role.is_none_or(|r| n.role == r))
            .map(|n| n.iface.as_str())
            .collect()
    }
}

/// The dynamic part: who is let out, who is blocked, which networks are closed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Authorized portal clients with their remaining seconds (elements with 0 are left out).
    pub authorized: Vec<(MacAddr, u64)>,
    pub blocked: Vec<MacAddr>,
    /// Interfaces of tier networks closed now (after hours).
    pub closed: Vec<String>,
}

fn set_of<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I, quote: bool) -> String {
    let items: Vec<String> = items
        .into_iter()
        .map(|s| {
            if quote {
                format!("\"{}\"", s.as_ref())
            } else {
                s.as_ref().to_string()
            }
        })
        .collect();
    format!("{{ {} }}", items.join(", "))
}

fn elements(out: &mut String, items: &[String]) {
    if items.is_empty() {
        return;
    }
    out.push_str("\t\telements = {\n");
    for (i, e) in items.iter().enumerate() {
        let sep = if i + 1 == items.len() { "" } else { "," };
        let _ = writeln!(out, "\t\t\t{e}{sep}");
    }
    out.push_str("\t\t}\n");
}

/// Renders the complete ruleset: deleting and recreating the table in one transaction, so
/// applying it is atomic and idempotent and leaves every other table alone.
pub fn render(gw: &Gateway, state: &State) -> String {
    let mut o = String::with_capacity(4096 + state.authorized.len() * 48);
    let all = gw.ifaces(None);
    let portal = gw.ifaces(Some(Role::Portal));
    let iot = gw.ifaces(Some(Role::Iot));
    let _ = writeln!(
        o,
        "# Generated by frontdesk (gateway mode). The table is replaced as a whole by\n\
         # `frontdesk firewall apply` and by `frontdesk serve`; edits here are lost.\n\
         # Tier networks: {}\n\
         table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{",
        gw.networks
            .iter()
            .map(|n| format!("{}={} ({})", n.name, n.iface, n.role.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Sets.
    o.push_str("\tset authorized {\n\t\ttype ether_addr\n\t\tflags timeout\n");
    let mut auth: Vec<&(MacAddr, u64)> = state.authorized.iter().filter(|(_, s)| *s > 0).collect();
    auth.sort();
    auth.dedup_by_key(|(m, _)| *m);
    let auth: Vec<String> = auth
        .iter()
        .map(|(m, s)| format!("{m} timeout {s}s"))
        .collect();
    elements(&mut o, &auth);
    o.push_str("\t}\n\n\tset blocked {\n\t\ttype ether_addr\n");
    let mut blocked: Vec<String> = state.blocked.iter().map(|m| m.to_string()).collect();
    blocked.sort();
    blocked.dedup();
    elements(&mut o, &blocked);
    o.push_str("\t}\n\n\tset closed {\n\t\ttype ifname\n");
    let mut closed: Vec<String> = state
        .closed
        .iter()
        .filter(|i| valid_iface(i))
        .map(|i| format!("\"{i}\""))
        .collect();
    closed.sort();
    closed.dedup();
    elements(&mut o, &closed);
    o.push_str(
        "\t}\n\n\
         \t# Pre-login DNS rate per client (dynamic, entries forgotten after a minute).\n\
         \tset dns_flood {\n\t\ttype ether_addr\n\t\tsize 65536\n\t\tflags dynamic,timeout\n\t\ttimeout 1m\n\t}\n\n",
    );
    for c in [
        "blocked_dropped",
        "closed_dropped",
        "isolation_dropped",
        "portal_dropped",
        "portal_rejected",
        "iot_dropped",
        "dns_limited",
        "input_dropped",
    ] {
        let _ = writeln!(o, "\tcounter {c} {{\n\t}}\n");
    }

    // NAT: the portal redirect and masquerade.
    o.push_str(
        "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
    );
    if !portal.is_empty() {
        let _ = writeln!(
            o,
            "\t\tiifname {} ether saddr != @authorized tcp dport 80 redirect to :{}",
            set_of(&portal, true),
            gw.portal_port
        );
    }
    o.push_str("\t}\n\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
    if gw.masquerade {
        let _ = writeln!(o, "\t\toifname \"{}\" meta nfproto ipv4 masquerade", gw.wan);
    }
    o.push_str("\t}\n\n");

    // Input: what tier networks may reach on the appliance itself.
    let _ = writeln!(
        o,
        "\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\
         \t\tiifname {} jump tier_input\n\t}}\n",
        set_of(&all, true)
    );
    // Blocked devices and the pre-login DNS limit come before the established-flow accept:
    // a UDP "flow" to the resolver is established after its first answer.
    o.push_str(
        "\tchain tier_input {\n\
         \t\tether saddr @blocked counter name blocked_dropped drop\n",
    );
    if !portal.is_empty() {
        let _ = writeln!(
            o,
            "\t\tiifname {} ether saddr != @authorized udp dport {} update @dns_flood {{ ether saddr limit rate over {}/second burst {} packets }} counter name dns_limited drop",
            set_of(&portal, true),
            gw.dns_port,
            gw.dns_rate,
            gw.dns_rate.saturating_mul(2)
        );
    }
    o.push_str(
        "\t\tct state established,related accept\n\
         \t\tmeta l4proto { icmp, ipv6-icmp } accept\n\
         \t\tudp dport { 67, 547 } accept\n",
    );
    let _ = writeln!(
        o,
        "\t\tmeta l4proto {{ tcp, udp }} th dport {} accept",
        gw.dns_port
    );
    let mut ports = vec![gw.portal_port];
    ports.extend(gw.portal_tls_port);
    ports.sort();
    ports.dedup();
    let _ = writeln!(
        o,
        "\t\ttcp dport {} accept\n\t\tcounter name input_dropped drop\n\t}}\n",
        set_of(ports.iter().map(|p| p.to_string()), false)
    );

    // Forward: isolation, portal enforcement, IoT allow-list.
    let _ = writeln!(
        o,
        "\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tiifname {all} jump from_tier\n\
         \t\toifname {all} jump to_tier\n\t}}\n",
        all = set_of(&all, true)
    );
    o.push_str(
        "\tchain from_tier {\n\
         \t\tether saddr @blocked counter name blocked_dropped drop\n\
         \t\tiifname @closed counter name closed_dropped drop\n",
    );
    if !iot.is_empty() {
        let _ = writeln!(o, "\t\tiifname {} jump iot_out", set_of(&iot, true));
    }
    let _ = writeln!(
        o,
        "\t\toifname != \"{}\" counter name isolation_dropped drop",
        gw.wan
    );
    if !portal.is_empty() {
        let _ = writeln!(
            o,
            "\t\tiifname {} ether saddr != @authorized jump portal_unauthorized",
            set_of(&portal, true)
        );
    }
    o.push_str("\t\taccept\n\t}\n\n");
    if !portal.is_empty() {
        o.push_str(
            "\tchain portal_unauthorized {\n\
             \t\ttcp dport 443 counter name portal_rejected reject with tcp reset\n\
             \t\tudp dport 443 counter name portal_rejected reject\n\
             \t\tcounter name portal_dropped drop\n\t}\n\n",
        );
    }
    if !iot.is_empty() {
        o.push_str("\tchain iot_out {\n");
        for a in &gw.iot_allow {
            let fam = if a.addr.is_ipv4() { "ip" } else { "ip6" };
            let max = if a.addr.is_ipv4() { 32 } else { 128 };
            let dst = if a.prefix == max {
                a.addr.to_string()
            } else {
                format!("{}/{}", a.addr, a.prefix)
            };
            let port = match a.port {
                None => String::new(),
                Some((Proto::Tcp, p)) => format!(" tcp dport {p}"),
                Some((Proto::Udp, p)) => format!(" udp dport {p}"),
            };
            let _ = writeln!(o, "\t\t{fam} daddr {dst}{port} accept");
        }
        o.push_str("\t\tcounter name iot_dropped drop\n\t}\n\n");
    }
    let _ = writeln!(
        o,
        "\tchain to_tier {{\n\
         \t\tct state related accept\n\
         \t\tct direction reply accept\n\
         \t\tcounter name isolation_dropped drop\n\t}}\n}}"
    );
    o
}

/// Element batches for one client change, applied without reloading the table.
///
/// `add` is a no-op for an existing element and `delete` fails for a missing one, so each
/// change is written as add-then-delete(-then-add): valid whatever the set holds, in one
/// transaction, and an existing element gets its new timeout. This one lets `mac` out for `ms`
/// milliseconds.
pub fn authorize_batch(out: &mut String, mac: MacAddr, ms: u64) {
    let ms = ms.max(1);
    let _ = writeln!(
        out,
        "add element inet {TABLE} authorized {{ {mac} timeout {ms}ms }}\n\
         delete element inet {TABLE} authorized {{ {mac} }}\n\
         add element inet {TABLE} authorized {{ {mac} timeout {ms}ms }}"
    );
}

pub fn revoke_batch(out: &mut String, mac: MacAddr) {
    let _ = writeln!(
        out,
        "add element inet {TABLE} authorized {{ {mac} timeout 1s }}\n\
         delete element inet {TABLE} authorized {{ {mac} }}"
    );
}

/// Blocks or unblocks a MAC on every tier network.
pub fn block_batch(out: &mut String, mac: MacAddr, blocked: bool) {
    let _ = writeln!(out, "add element inet {TABLE} blocked {{ {mac} }}");
    if !blocked {
        let _ = writeln!(out, "delete element inet {TABLE} blocked {{ {mac} }}");
    }
}

/// Makes `closed` exactly the set of switched-off tier networks (one transaction).
pub fn closed_batch(out: &mut String, closed: &[String]) {
    let _ = writeln!(out, "flush set inet {TABLE} closed");
    if !closed.is_empty() {
        let list: Vec<String> = closed.iter().map(|c| format!("\"{c}\"")).collect();
        let _ = writeln!(
            out,
            "add element inet {TABLE} closed {{ {} }}",
            list.join(", ")
        );
    }
}

/// Opens or closes a tier network (after-hours switch).
pub fn close_batch(out: &mut String, iface: &str, closed: bool) {
    let _ = writeln!(out, "add element inet {TABLE} closed {{ \"{iface}\" }}");
    if !closed {
        let _ = writeln!(out, "delete element inet {TABLE} closed {{ \"{iface}\" }}");
    }
}
