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
        let trimmed = s.trim();
        let digits: Vec<u8> = trimmed
            .bytes()
            .filter(|b| !matches!(b, b':' | b'-' | b'.'))
            .collect();
        // Separators must sit where one of the common formats puts them: reject "a:abbccddeeff".
        let seps: Vec<usize> = trimmed
            .bytes()
            .enumerate()
            .filter(|(_, b)| matches!(b, b':' | b'-' | b'.'))
            .map(|(i, _)| i)
            .collect();
        let layout_ok = match seps.len() {
            0 => true,
            5 => seps == [2, 5, 8, 11, 14],
            2 => seps == [4, 9],
            _ => false,
        };
        if digits.len() != 12 || !layout_ok {
            return Err(MacParseError(s.to_string()));
        }
        let mut out = [0u8; 6];
        for (i, pair) in digits.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| MacParseError(s.to_string()))?;
            out[i] = u8::from_str_radix(text, 16).map_err(|_| MacParseError(s.to_string()))?;
        }
        Ok(MacAddr(out))
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
