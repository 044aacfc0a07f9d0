//! Attribute numbers (RFC 2865, 2866, 2868, 2869, 3162, 3579, 5176) and vendor dictionaries
//! (Microsoft RFC 2548, Cisco, Aruba, MikroTik, Ruckus, WISPr). Only what Frontdesk reads or
//! writes is named; every other attribute is kept as raw bytes.

pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const CHAP_PASSWORD: u8 = 3;
pub const NAS_IP_ADDRESS: u8 = 4;
pub const NAS_PORT: u8 = 5;
pub const SERVICE_TYPE: u8 = 6;
pub const FRAMED_IP_ADDRESS: u8 = 8;
pub const FRAMED_MTU: u8 = 12;
pub const REPLY_MESSAGE: u8 = 18;
pub const STATE: u8 = 24;
pub const CLASS: u8 = 25;
pub const VENDOR_SPECIFIC: u8 = 26;
pub const SESSION_TIMEOUT: u8 = 27;
pub const TERMINATION_ACTION: u8 = 29;
pub const CALLED_STATION_ID: u8 = 30;
pub const CALLING_STATION_ID: u8 = 31;
pub const NAS_IDENTIFIER: u8 = 32;
pub const PROXY_STATE: u8 = 33;
pub const ACCT_STATUS_TYPE: u8 = 40;
pub const ACCT_INPUT_OCTETS: u8 = 42;
pub const ACCT_OUTPUT_OCTETS: u8 = 43;
pub const ACCT_SESSION_ID: u8 = 44;
pub const ACCT_SESSION_TIME: u8 = 46;
pub const ACCT_TERMINATE_CAUSE: u8 = 49;
pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
pub const EVENT_TIMESTAMP: u8 = 55;
pub const CHAP_CHALLENGE: u8 = 60;
pub const NAS_PORT_TYPE: u8 = 61;
pub const TUNNEL_TYPE: u8 = 64;
pub const TUNNEL_MEDIUM_TYPE: u8 = 65;
pub const TUNNEL_PASSWORD: u8 = 69;
pub const CONNECT_INFO: u8 = 77;
pub const EAP_MESSAGE: u8 = 79;
pub const MESSAGE_AUTHENTICATOR: u8 = 80;
pub const TUNNEL_PRIVATE_GROUP_ID: u8 = 81;
pub const ACCT_INTERIM_INTERVAL: u8 = 85;
pub const NAS_IPV6_ADDRESS: u8 = 95;
/// RFC 5176 §3.6.
pub const ERROR_CAUSE: u8 = 101;
pub const FRAMED_IPV6_ADDRESS: u8 = 168;

/// Service-Type values (RFC 2865 §5.6).
pub const SERVICE_TYPE_CALL_CHECK: u32 = 10;
/// Termination-Action=RADIUS-Request (RFC 2865 §5.29).
pub const TERMINATION_RADIUS_REQUEST: u32 = 1;
/// Tunnel-Type=VLAN (RFC 3580 §3.31).
pub const TUNNEL_TYPE_VLAN: u32 = 13;
/// Tunnel-Medium-Type=IEEE-802 (RFC 2868 §3.2).
pub const TUNNEL_MEDIUM_IEEE_802: u32 = 6;

/// Acct-Status-Type values (RFC 2866 §5.1).
pub mod acct_status {
    pub const START: u32 = 1;
    pub const STOP: u32 = 2;
    pub const INTERIM_UPDATE: u32 = 3;
    pub const ACCOUNTING_ON: u32 = 7;
    pub const ACCOUNTING_OFF: u32 = 8;
}

/// Vendor ids (IANA Private Enterprise Numbers) and the vendor attributes used.
pub mod vendor {
    pub const MICROSOFT: u32 = 311;
    pub const CISCO: u32 = 9;
    pub const ARUBA: u32 = 14823;
    pub const MIKROTIK: u32 = 14988;
    pub const RUCKUS: u32 = 25053;
    pub const WISPR: u32 = 14122;

    /// RFC 2548.
    pub mod ms {
        pub const CHAP_ERROR: u8 = 2;
        pub const MPPE_ENCRYPTION_POLICY: u8 = 7;
        pub const MPPE_ENCRYPTION_TYPES: u8 = 8;
        pub const CHAP_CHALLENGE: u8 = 11;
        pub const MPPE_SEND_KEY: u8 = 16;
        pub const MPPE_RECV_KEY: u8 = 17;
        pub const CHAP2_RESPONSE: u8 = 25;
        pub const CHAP2_SUCCESS: u8 = 26;
    }

    pub mod cisco {
        pub const AVPAIR: u8 = 1;
    }

    pub mod aruba {
        pub const USER_ROLE: u8 = 1;
        pub const USER_VLAN: u8 = 2;
        pub const ESSID_NAME: u8 = 5;
        pub const MPSK_PASSPHRASE: u8 = 44;
    }

    pub mod mikrotik {
        pub const WIRELESS_VLANID: u8 = 26;
        pub const WIRELESS_VLANID_TYPE: u8 = 27;
        pub const WIRELESS_PSK: u8 = 16;
    }

    pub mod ruckus {
        pub const SSID: u8 = 3;
    }

    pub mod wispr {
        pub const SESSION_TERMINATE_TIME: u8 = 9;
    }
}

macro_rules! attribute_names {
    ($($constant:ident => $name:literal),* $(,)?) => {
        /// A human name for logs and `nas test`.
        pub fn name(t: u8) -> &'static str {
            match t {
                $($constant => $name,)*
                _ => "Unknown",
            }
        }

        /// The counter recording that a NAS sends this attribute (`nas test`).
        pub fn seen_counter(t: u8) -> &'static str {
            match t {
                $($constant => concat!("attr:", $name),)*
                _ => "attr:Unknown",
            }
        }
    };
}

attribute_names! {
    USER_NAME => "User-Name",
    USER_PASSWORD => "User-Password",
    CHAP_PASSWORD => "CHAP-Password",
    NAS_IP_ADDRESS => "NAS-IP-Address",
    NAS_PORT => "NAS-Port",
    SERVICE_TYPE => "Service-Type",
    FRAMED_IP_ADDRESS => "Framed-IP-Address",
    FRAMED_MTU => "Framed-MTU",
    REPLY_MESSAGE => "Reply-Message",
    STATE => "State",
    CLASS => "Class",
    VENDOR_SPECIFIC => "Vendor-Specific",
    SESSION_TIMEOUT => "Session-Timeout",
    TERMINATION_ACTION => "Termination-Action",
    CALLED_STATION_ID => "Called-Station-Id",
    CALLING_STATION_ID => "Calling-Station-Id",
    NAS_IDENTIFIER => "NAS-Identifier",
    PROXY_STATE => "Proxy-State",
    ACCT_STATUS_TYPE => "Acct-Status-Type",
    ACCT_INPUT_OCTETS => "Acct-Input-Octets",
    ACCT_OUTPUT_OCTETS => "Acct-Output-Octets",
    ACCT_SESSION_ID => "Acct-Session-Id",
    ACCT_SESSION_TIME => "Acct-Session-Time",
    ACCT_TERMINATE_CAUSE => "Acct-Terminate-Cause",
    EVENT_TIMESTAMP => "Event-Timestamp",
    CHAP_CHALLENGE => "CHAP-Challenge",
    NAS_PORT_TYPE => "NAS-Port-Type",
    TUNNEL_TYPE => "Tunnel-Type",
    TUNNEL_MEDIUM_TYPE => "Tunnel-Medium-Type",
    TUNNEL_PASSWORD => "Tunnel-Password",
    CONNECT_INFO => "Connect-Info",
    EAP_MESSAGE => "EAP-Message",
    MESSAGE_AUTHENTICATOR => "Message-Authenticator",
    TUNNEL_PRIVATE_GROUP_ID => "Tunnel-Private-Group-Id",
    ACCT_INTERIM_INTERVAL => "Acct-Interim-Interval",
    NAS_IPV6_ADDRESS => "NAS-IPv6-Address",
}
