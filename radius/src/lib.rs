//! RADIUS for Frontdesk, sans-IO first (like rustls): [`packet`] decodes and encodes bytes,
//! [`auth`] verifies MS-CHAPv2, [`handler`] turns a datagram plus a [`directory`] view plus
//! `now` into effects, and [`server`] only moves datagrams.
//!
//! Written here rather than on the `radius` crate: its attribute list is private and it cannot
//! decode vendor attributes; it is used in tests as an independent cross-check.

pub mod attr;
pub mod auth;
pub mod coa;
pub mod directory;
pub mod disconnect;
pub mod eap;
pub mod handler;
pub mod nas;
pub mod packet;
pub mod psk;
pub mod server;
pub mod spool;

pub use packet::{Code, DecodeError, Packet};

/// Fixtures the crate's unit tests share.
#[cfg(test)]
pub(crate) mod testing {
    use frontdesk_core::decide::Catalog;
    use frontdesk_core::model::{Plan, Site};
    use frontdesk_core::schedule::{Calendar, OpeningHours};

    /// Site "Lab" in UTC with the default opening hours, no closures and no teams.
    pub fn lab_catalog(plans: Vec<Plan>) -> Catalog {
        Catalog {
            site: Site {
                id: 1,
                name: "Lab".into(),
                calendar: Calendar {
                    tz: chrono_tz::UTC,
                    hours: OpeningHours::default_hours(),
                    closures: vec![],
                },
            },
            plans,
            teams: vec![],
        }
    }
}
