//! NAS vendor profiles (SPEC §4): the facts a RADIUS server must honour per vendor.
//! Sources: shared/VENDORS.md (collected from vendor documentation, PacketFence switch
//! modules and FreeRADIUS dictionaries); items marked "(verify)" there are noted here too.

use frontdesk_core::mac::MacFormat;
use frontdesk_core::model::Vendor;

/// How a VLAN is put into an Access-Accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VlanStyle {
    /// Tunnel-Type=VLAN, Tunnel-Medium-Type=IEEE-802, Tunnel-Private-Group-Id (RFC 3580 §3.31).
    Tunnel,
    /// Tunnel-* for wired ports plus Mikrotik-Wireless-VLANID(+Type=0) for wireless.
    TunnelAndMikrotik,
}

/// Identifiers a Disconnect/CoA-Request must carry for this vendor (RFC 5176 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionIdentifier {
    UserName,
    AcctSessionId,
    CallingStationId,
    NasIdentifier,
    NasIpAddress,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoaPath {
    Radius,
    /// The vendor's controller API (kicks, re-authorisation).
    ControllerApi,
}

/// Where a MAC-bound identity-PSK answer puts the passphrase (VENDORS.md "Identity / private
/// PSK attributes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PskAttribute {
    /// Tunnel-Password, salt-encrypted (RFC 2868 §3.5): Meraki iPSK, Omada PPSK.
    TunnelPassword,
    /// Cisco-AVPair `psk-mode=ascii` and `psk=<passphrase>` (Cisco 9800 iPSK).
    CiscoAvPair,
    /// Aruba-MPSK-Passphrase (Aruba VSA 44), salt-encrypted like Tunnel-Password.
    ArubaMpsk,
    /// Mikrotik-Wireless-PSK (MikroTik VSA 16).
    MikrotikPsk,
}

#[derive(Debug)]
pub struct Profile {
    pub vendor: Vendor,
    /// Tag on the three Tunnel attributes (RFC 2868 §3.1); 0 unless the deployment expects 1.
    pub tunnel_tag: u8,
    pub vlan_style: VlanStyle,
    /// MAC format for MAB User-Name and Calling-Station-Id in Disconnect requests.
    pub mac_format: MacFormat,
    pub disconnect_ids: &'static [SessionIdentifier],
    pub coa: CoaPath,
    /// Session-Timeout the NAS accepts, seconds.
    pub session_timeout_min: u32,
    pub session_timeout_max: u32,
    /// Acct-Interim-Interval to offer, seconds.
    pub acct_interim_interval: u32,
    /// Where a private passphrase goes in an Access-Accept.
    pub psk: PskAttribute,
    /// Where the facts come from.
    pub source: &'static str,
}

use PskAttribute::*;
use SessionIdentifier::*;

static PROFILES: [Profile; 8] = [
    Profile {
        vendor: Vendor::Generic,
        tunnel_tag: 0,
        vlan_style: VlanStyle::Tunnel,
        mac_format: MacFormat::UpperHyphen,
        disconnect_ids: &[UserName, AcctSessionId, CallingStationId, NasIpAddress],
        coa: CoaPath::Radius,
        session_timeout_min: 60,
        session_timeout_max: 86_400,
        acct_interim_interval: 300,
        psk: TunnelPassword,
        source: "RFC 2865, RFC 3580 §3.31 (VLAN), RFC 5176 (Disconnect), RFC 3580 §3.21 (Calling-Station-Id format)",
    },
    Profile {
        vendor: Vendor::Unifi,
        tunnel_tag: 0,
        vlan_style: VlanStyle::Tunnel,
        mac_format: MacFormat::UpperHyphen,
        disconnect_ids: &[CallingStationId, NasIdentifier, UserName],
        coa: CoaPath::ControllerApi,
        session_timeout_min: 60,
        session_timeout_max: 86_400,
        acct_interim_interval: 300,
        psk: TunnelPassword,
        source: "VENDORS.md UniFi row: Tunnel-* with 'RADIUS assigned VLAN'; CoA only on newer controllers, Calling-Station-Id AA-BB-CC-DD-EE-FF + NAS-Identifier, fallback kick-sta",
    },
    Profile {
        vendor: Vendor::Omada,
        tunnel_tag: 0,
        vlan_style: VlanStyle::Tunnel,
        mac_format: MacFormat::UpperHyphen,
        disconnect_ids: &[CallingStationId, UserName],
        coa: CoaPath::ControllerApi,
        session_timeout_min: 60,
        session_timeout_max: 86_400,
        acct_interim_interval: 300,
        psk: TunnelPassword,
        source: "VENDORS.md Omada row: Tunnel-* with 'VLAN assignment: RADIUS'; RADIUS CoA not confirmed, use the controller API; MAC as User-Name and password",
    },
    Profile {
        vendor: Vendor::Meraki,
        tunnel_tag: 0,
        vlan_style: VlanStyle::Tunnel,
        mac_format: MacFormat::LowerBare,
        disconnect_ids: &[CallingStationId, UserName, AcctSessionId],
        coa: CoaPath::Radius,
        session_timeout_min: 60,
        session_timeout_max: 86_400,
        acct_interim_interval: 600,
        psk: TunnelPassword,
        source: "VENDORS.md Meraki row: Tunnel-*; Disconnect 3799, CoA 1700, no Service-Type in CoA; MAB lowercase without delimiter (password = MAC: verify)",
    },
    Profile {
        vendor: Vendor::Aruba,
        tunnel_tag: 0,
        vlan_style: VlanStyle::Tunnel,
        mac_format: MacFormat::LowerBare,
        disconnect_ids: &[CallingStationId, UserName, AcctSessionId],
        coa: CoaPath::Radius,
        session_timeout_min: 60,
        session_timeout_max: 86_400,
        acct_interim_interval: 300,
        psk: ArubaMpsk,
        source: "VENDORS.md Aruba Instant row: Tunnel-* or Aruba-User-Vlan; RFC 3576 via the virtual controller on 3799; MAC delimiter/case configurable, Disconnect must match",
    },
    Profile {
        vendor: Vendor::Ruckus,
        tunnel_tag: 0,
        vlan_style: VlanStyle::Tunnel,
        mac_format: MacFormat::LowerColon,
        disconnect_ids: &[CallingStationId, UserName, AcctSessionId],
        coa: CoaPath::Radius,
        session_timeout_min: 120,
        session_timeout_max: 86_400,
        acct_interim_interval: 600,
        psk: TunnelPassword,
        source: "VENDORS.md Ruckus row: Tunnel-* with Dynamic VLAN on the WLAN; Disconnect 3799 (SmartZone non-proxy MAB: northbound API); MAC format configurable (verify)",
    },
    Profile {
        vendor: Vendor::Mikrotik,
        tunnel_tag: 0,
        vlan_style: VlanStyle::TunnelAndMikrotik,
        mac_format: MacFormat::UpperColon,
        disconnect_ids: &[UserName, CallingStationId, AcctSessionId],
        coa: CoaPath::Radius,
        session_timeout_min: 60,
        session_timeout_max: 86_400,
        acct_interim_interval: 300,
        psk: MikrotikPsk,
        source: "VENDORS.md MikroTik row: Mikrotik-Wireless-VLANID + VLANID-Type=0 (wireless), Tunnel-* (wired); '/radius incoming accept=yes' on 3799; CAPsMAN MAB XX:XX:XX:XX:XX:XX with empty password",
    },
    Profile {
        vendor: Vendor::Cisco,
        tunnel_tag: 0,
        vlan_style: VlanStyle::Tunnel,
        mac_format: MacFormat::LowerBare,
        disconnect_ids: &[CallingStationId, UserName, AcctSessionId, NasIpAddress],
        coa: CoaPath::Radius,
        session_timeout_min: 300,
        session_timeout_max: 86_400,
        acct_interim_interval: 600,
        psk: CiscoAvPair,
        source: "VENDORS.md Cisco row: Tunnel-* with AAA override; CoA 1700, Disconnect 3799; MAB lowercase bare, Service-Type=Call-Check; 802.1X Session-Timeout range 300-86400 (AireOS; verify 9800)",
    },
];

pub fn profile(v: Vendor) -> &'static Profile {
    PROFILES
        .iter()
        .find(|p| p.vendor == v)
        .expect("every vendor has a profile")
}

impl Profile {
    /// Clamps a Session-Timeout into the range this NAS accepts.
    pub fn clamp_timeout(&self, secs: u32) -> u32 {
        secs.clamp(self.session_timeout_min, self.session_timeout_max)
    }
}

/// Called-Station-Id: the AP's MAC (any separator) optionally followed by `:SSID`; the SSID
/// itself may contain ':' (VENDORS.md "common traps").
pub fn parse_called_station(value: &str) -> (Option<frontdesk_core::MacAddr>, Option<String>) {
    let v = value.trim();
    // Candidate MAC lengths: 17 (with separators) or 12 (bare) or 14 (Cisco dots).
    for len in [17usize, 14, 12] {
        if v.len() >= len && v.is_char_boundary(len) {
            if let Ok(mac) = v[..len].parse() {
                let rest = &v[len..];
                if rest.is_empty() {
                    return (Some(mac), None);
                }
                if let Some(ssid) = rest.strip_prefix(':') {
                    return (Some(mac), (!ssid.is_empty()).then(|| ssid.to_string()));
                }
            }
        }
    }
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn called_station_with_colons_in_ssid() {
        let (mac, ssid) = parse_called_station("AA-BB-CC-DD-EE-FF:Coworking: Members");
        assert_eq!(mac.unwrap().to_string(), "aa:bb:cc:dd:ee:ff");
        assert_eq!(ssid.as_deref(), Some("Coworking: Members"));
        let (mac, ssid) = parse_called_station("aa:bb:cc:dd:ee:ff:Guest");
        assert!(mac.is_some());
        assert_eq!(ssid.as_deref(), Some("Guest"));
        let (mac, ssid) = parse_called_station("aabbccddeeff:IoT");
        assert!(mac.is_some());
        assert_eq!(ssid.as_deref(), Some("IoT"));
        assert_eq!(parse_called_station("AABBCCDDEEFF").1, None);
        assert_eq!(parse_called_station("not-a-mac"), (None, None));
    }

    #[test]
    fn every_vendor_has_a_profile_with_a_source() {
        for v in Vendor::ALL {
            let p = profile(v);
            assert!(!p.source.is_empty());
            assert!(p.session_timeout_min < p.session_timeout_max);
        }
        assert_eq!(profile(Vendor::Cisco).clamp_timeout(10), 300);
    }
}
