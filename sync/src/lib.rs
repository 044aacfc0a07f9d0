//! Door sync (SPEC §6): mirrors the entitlement source into door-access systems. A
//! level-triggered reconciler computes the desired door groups per member from plans
//! (`desired`), reads what the door system holds in Frontdesk-owned groups (`DoorSystem`),
//! and applies the difference, revocations first. Backends: Kisi, UniFi Access, Salto KS and
//! a signed generic webhook.

pub mod backend;
pub mod controllers;
pub mod desired;
pub mod http;
pub mod kisi;
pub mod reconcile;
pub mod salto_ks;
pub mod unifi_access;
pub mod webhook;

pub use backend::{DoorSystem, Observed, ObservedUser, SyncError};
pub use desired::{desired, Entitlement, GroupKey};
pub use reconcile::{reconcile, Report, Scope};
