//! MAC addresses in every format access points use (`aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`,
//! `aabb.ccdd.eeff`, `aabbccddeeff`), normalised to lowercase colon form.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct MacAddr(pub [u8; 6]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed MAC address {0:?}: expected 12 hex digits, e.g. aa:bb:cc:dd:ee:ff")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MacAddr::parse(s).ok_or_else(|| MacParseError(s.to_string()))
    }
}

impl MacAddr {
    /// `FromStr` without allocating, also when the text is no MAC (the RADIUS hot path asks
    /// this of every User-Name): 12 hex digits, bare or with separators (`:`, `-`, `.`)
    /// exactly where one of the common formats puts them (reject "a:abbccddeeff").
    pub fn parse(s: &str) -> Option<MacAddr> {
        let mut out = [0u8; 6];
        let (mut digits, mut seps, mut sep_at) = (0usize, 0usize, [0usize; 5]);
        for (i, &b) in s.trim().as_bytes().iter().enumerate() {
            if matches!(b, b':' | b'-' | b'.') {
                *sep_at.get_mut(seps)? = i;
                seps += 1;
                continue;
            }
            let v = (b as char).to_digit(16)? as u8;
            if digits == 12 {
                return None;
            }
            out[digits / 2] = (out[digits / 2] << 4) | v;
            digits += 1;
        }
        let layout_ok = match seps {
            0 => true,
            5 => sep_at == [2, 5, 8, 11, 14],
            2 => sep_at[..2] == [4, 9],
            _ => false,
        };
        (digits == 12 && layout_ok).then_some(MacAddr(out))
    }
}

/// The textual layouts vendors expect in MAB User-Name and Disconnect requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacFormat {
    /// `aa:bb:cc:dd:ee:ff`
    LowerColon,
    /// `AA:BB:CC:DD:EE:FF`
    UpperColon,
    /// `AA-BB-CC-DD-EE-FF`
    UpperHyphen,
    /// `aa-bb-cc-dd-ee-ff`
    LowerHyphen,
    /// `aabbccddeeff`
    LowerBare,
    /// `aabb.ccdd.eeff`
    CiscoDots,
}

impl MacFormat {
    pub const ALL: [MacFormat; 6] = [
        MacFormat::LowerColon,
        MacFormat::UpperColon,
        MacFormat::UpperHyphen,
        MacFormat::LowerHyphen,
        MacFormat::LowerBare,
        MacFormat::CiscoDots,
    ];
}

impl MacAddr {
    pub fn format(&self, f: MacFormat) -> String {
        let b = self.0;
        match f {
            MacFormat::LowerColon => self.to_string(),
            MacFormat::UpperColon => self.to_string().to_uppercase(),
            MacFormat::UpperHyphen => self.to_string().replace(':', "-").to_uppercase(),
            MacFormat::LowerHyphen => self.to_string().replace(':', "-"),
            MacFormat::LowerBare => self.to_string().replace(':', ""),
            MacFormat::CiscoDots => format!(
                "{:02x}{:02x}.{:02x}{:02x}.{:02x}{:02x}",
                b[0], b[1], b[2], b[3], b[4], b[5]
            ),
        }
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_and_rejected_layouts() {
        let mac = MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        for ok in [
            "aa:bb:cc:dd:ee:ff",
            "AA-BB-CC-DD-EE-FF",
            "aabb.ccdd.eeff",
            "AABBCCDDEEFF",
            " aa:bb:cc:dd:ee:ff\n",
        ] {
            assert_eq!(MacAddr::parse(ok), Some(mac), "{ok:?}");
            assert_eq!(ok.parse::<MacAddr>(), Ok(mac), "{ok:?}");
        }
        for bad in [
            "",
            "aabbccddeef",
            "aabbccddeeff0",
            "a:abbccddeeff",
            "aa:bb:cc:dd:ee:fg",
            "aa:bb:cc:dd:ee:ff:",
            "aa:bb:cc:dd:ee:f",
            "+a:bb:cc:dd:ee:ff",
            "aa::bb:cc:dd:eeff",
            "user0@bench.example",
            "aabb.ccdd.eeff.",
            "ää:bb:cc:dd:ee:ff",
        ] {
            assert_eq!(MacAddr::parse(bad), None, "{bad:?}");
            assert_eq!(bad.parse::<MacAddr>(), Err(MacParseError(bad.to_string())));
        }
    }

    #[test]
    fn parses_every_common_format() {
        let want = MacAddr([0xaa, 0xbb, 0xcc, 0x01, 0x02, 0x03]);
        for s in [
            "aa:bb:cc:01:02:03",
            "AA:BB:CC:01:02:03",
            "AA-BB-CC-01-02-03",
            "aabbcc010203",
            "AABB.CC01.0203",
            " aa:bb:cc:01:02:03 ",
        ] {
            assert_eq!(s.parse::<MacAddr>(), Ok(want), "{s}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "aa:bb:cc:01:02",
            "aa:bb:cc:01:02:03:04",
            "zz:bb:cc:01:02:03",
            "a:abbcc010203",
            "aabbcc01020",
            "aa:bb:cc:01:02:0é",
        ] {
            assert!(s.parse::<MacAddr>().is_err(), "{s}");
        }
    }

    #[test]
    fn formats_round_trip() {
        let m: MacAddr = "aa:bb:cc:01:02:03".parse().unwrap();
        assert_eq!(m.format(MacFormat::UpperHyphen), "AA-BB-CC-01-02-03");
        assert_eq!(m.format(MacFormat::LowerBare), "aabbcc010203");
        assert_eq!(m.format(MacFormat::CiscoDots), "aabb.cc01.0203");
        for f in MacFormat::ALL {
            assert_eq!(m.format(f).parse::<MacAddr>(), Ok(m));
        }
    }
}
