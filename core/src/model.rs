//! The coworking domain: sites, plans, teams, members, devices, vouchers, NAS clients.

use crate::mac::MacAddr;
use crate::schedule::{Calendar, Closure, OpeningHours, WindowSpec};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug)]
pub struct Site {
    pub id: i64,
    pub name: String,
    pub calendar: Calendar,
}

impl Site {
    pub fn tz(&self) -> Tz {
        self.calendar.tz
    }

    /// The site's local date at `now` (plans start and end on local dates).
    pub fn date_at(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.tz()).date_naive()
    }

    pub fn hours(&self) -> &OpeningHours {
        &self.calendar.hours
    }

    pub fn closures(&self) -> &[Closure] {
        &self.calendar.closures
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub id: i64,
    pub name: String,
    /// `None`: the member's team VLAN (the `team` plan).
    pub vlan: Option<u16>,
    pub wifi: WindowSpec,
    pub door: WindowSpec,
    /// Simultaneous devices; `None` = unlimited.
    pub device_limit: Option<u32>,
    pub door_groups: Vec<String>,
    /// Empty: any SSID.
    pub ssids: Vec<String>,
    /// Only MAC-authenticated devices use this plan (iot).
    pub mac_only: bool,
    /// A new assignment without `--until` lasts this many days (day-pass: 1).
    pub validity_days: Option<u32>,
}

/// What `init` creates (SPEC §1, issue "Foundation").
pub fn default_plans() -> Vec<Plan> {
    let p = |name: &str,
             vlan: Option<u16>,
             wifi: WindowSpec,
             devices: Option<u32>,
             doors: &[&str],
             mac_only: bool,
             validity: Option<u32>| Plan {
        id: 0,
        name: name.into(),
        vlan,
        door: wifi.clone(),
        wifi,
        device_limit: devices,
        door_groups: doors.iter().map(|d| d.to_string()).collect(),
        ssids: vec![],
        mac_only,
        validity_days: validity,
    };
    use WindowSpec::{Always, OpeningHours as Hours};
    vec![
        p("guest", Some(30), Hours, Some(2), &[], false, None),
        p(
            "day-pass",
            Some(20),
            Hours,
            Some(2),
            &["main"],
            false,
            Some(1),
        ),
        p("flex", Some(20), Hours, Some(3), &["main"], false, None),
        p(
            "full-time",
            Some(10),
            Always,
            Some(5),
            &["main", "after-hours"],
            false,
            None,
        ),
        p(
            "team",
            None,
            Always,
            Some(5),
            &["main", "after-hours"],
            false,
            None,
        ),
        p("iot", Some(40), Always, None, &[], true, None),
    ]
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub vlan: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    Active,
    Suspended,
    Cancelled,
}

impl MemberStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Suspended => "suspended",
            MemberStatus::Cancelled => "cancelled",
        }
    }
}

impl FromStr for MemberStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(MemberStatus::Active),
            "suspended" => Ok(MemberStatus::Suspended),
            "cancelled" | "canceled" => Ok(MemberStatus::Cancelled),
            other => Err(format!(
                "unknown member status {other:?}: use active, suspended or cancelled"
            )),
        }
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A plan held by a member between two inclusive local dates.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Assignment {
    pub plan_id: i64,
    pub valid_from: NaiveDate,
    /// Inclusive; `None` = open-ended.
    pub valid_until: Option<NaiveDate>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub name: String,
    pub email: String,
    pub status: MemberStatus,
    pub team_id: Option<i64>,
    pub wifi_username: String,
    pub assignments: Vec<Assignment>,
    pub created_at: DateTime<Utc>,
}

impl Member {
    /// The plan assignment in force on `day` (the latest one, if a change day has two).
    pub fn assignment_on(&self, day: NaiveDate) -> Option<&Assignment> {
        self.assignments
            .iter()
            .rev()
            .find(|a| a.valid_from <= day && a.valid_until.is_none_or(|u| u >= day))
    }
}

/// A MAC-authenticated device (printer, TV, IoT), optionally owned by a member.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Device {
    pub id: i64,
    pub mac: MacAddr,
    pub member_id: Option<String>,
    pub plan_id: i64,
    pub name: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Voucher {
    pub code: String,
    pub plan_id: i64,
    /// Validity, counted from first use.
    pub valid_secs: i64,
    pub devices: u32,
    pub sponsor_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub first_used_at: Option<DateTime<Utc>>,
}

impl Voucher {
    /// When its validity ends: `valid_secs` after first use; `None` while unused.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.first_used_at
            .map(|t| t + chrono::Duration::seconds(self.valid_secs))
    }
}

/// NAS vendor profiles (SPEC §4, shared/VENDORS.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vendor {
    Generic,
    Unifi,
    Omada,
    Meraki,
    Aruba,
    Ruckus,
    Mikrotik,
    Cisco,
}

impl Vendor {
    pub const ALL: [Vendor; 8] = [
        Vendor::Generic,
        Vendor::Unifi,
        Vendor::Omada,
        Vendor::Meraki,
        Vendor::Aruba,
        Vendor::Ruckus,
        Vendor::Mikrotik,
        Vendor::Cisco,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Vendor::Generic => "generic",
            Vendor::Unifi => "unifi",
            Vendor::Omada => "omada",
            Vendor::Meraki => "meraki",
            Vendor::Aruba => "aruba",
            Vendor::Ruckus => "ruckus",
            Vendor::Mikrotik => "mikrotik",
            Vendor::Cisco => "cisco",
        }
    }

    /// RFC 5176 Disconnect-Request port; every profile uses the IANA port.
    pub fn disconnect_port(&self) -> u16 {
        3799
    }

    /// CoA-Request port: Cisco and Meraki listen on 1700 (VENDORS.md).
    pub fn coa_port(&self) -> u16 {
        match self {
            Vendor::Cisco | Vendor::Meraki => 1700,
            _ => 3799,
        }
    }
}

impl FromStr for Vendor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Vendor::ALL
            .into_iter()
            .find(|v| v.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown vendor {s:?}: use generic, unifi, omada, meraki, aruba, ruckus, mikrotik or cisco")
            })
    }
}

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Nas {
    pub id: i64,
    pub name: String,
    pub address: IpNet,
    #[serde(skip)]
    pub secret: String,
    pub vendor: Vendor,
    pub disconnect_port: u16,
    pub coa_port: u16,
    pub require_message_authenticator: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Manager,
    Viewer,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "manager" => Ok(Role::Manager),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "unknown role {other:?}: use owner, manager or viewer"
            )),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Admin {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// An append-only audit record.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub object: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One row of the `changes` feed: something of `kind` with id `object` changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub object: String,
}

/// Validates an email address the way an operator expects: one `@`, a dotted domain, no spaces.
pub fn validate_email(email: &str) -> Result<String, String> {
    let e = email.trim();
    let bad = || format!("malformed email {e:?}: expected name@example.com");
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || domain.contains('@')
        || e.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
        || e.len() > 254
    {
        return Err(bad());
    }
    Ok(e.to_string())
}

/// Parses an inclusive local date `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .ok()
        .filter(|_| s.trim().len() == 10)
        .ok_or_else(|| {
            format!(
                "malformed date {:?}: use YYYY-MM-DD, e.g. 2027-01-31",
                s.trim()
            )
        })
}

/// Parses an address or CIDR (`10.0.0.5`, `10.0.0.0/24`, `2001:db8::/64`).
pub fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<IpNet>() {
        return Ok(n.trunc());
    }
    t.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("malformed address or CIDR {t:?}: use e.g. 10.0.0.5 or 10.0.0.0/24"))
}

pub fn parse_timezone(s: &str) -> Result<Tz, String> {
    s.trim().parse::<Tz>().map_err(|_| {
        format!(
            "unknown time zone {:?}: use an IANA name such as Europe/Berlin or America/New_York",
            s.trim()
        )
    })
}

pub fn parse_vlan(v: i64) -> Result<u16, String> {
    if (1..=4094).contains(&v) {
        Ok(v as u16)
    } else {
        Err(format!("VLAN {v} out of range: use 1..4094"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(validate_email("ada@example.com").is_ok());
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "ada@@x.com",
            "ada@x..com",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_and_cidrs() {
        assert!(parse_date("2027-01-31").is_ok());
        for bad in ["31.01.2027", "2027-1-31", "2027-02-30", "tomorrow"] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_cidr("10.0.0.5").unwrap().to_string(), "10.0.0.5/32");
        assert_eq!(
            parse_cidr("10.0.0.9/24").unwrap().to_string(),
            "10.0.0.0/24"
        );
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("ten").is_err());
    }
}
