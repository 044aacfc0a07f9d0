//! Frontdesk core: the domain model, the one entitlement function [`decide()`], the
//! schedule arithmetic it stands on, secrets handling and storage (SQLite and PostgreSQL).
//!
//! Nothing in here reads the clock except [`clock`]: every function that depends on time takes
//! `now`, and the binary gets it from `clock::now()`.

pub mod backup;
pub mod clock;
pub mod decide;
pub mod enforce;
pub mod explain;
pub mod mac;
pub mod metrics;
pub mod model;
pub mod ports;
pub mod schedule;
pub mod scheduler;
pub mod secrets;
pub mod store;

pub use decide::{decide, Decision, Reason, Resource, Subject};
pub use mac::MacAddr;
pub use model::*;
pub use schedule::{Closure, DaySet, LocalWindow, OpeningHours, WindowSpec};
