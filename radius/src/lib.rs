//! RADIUS for Frontdesk, sans-IO first (like rustls): [`packet`] decodes and encodes bytes,
//! [`auth`] verifies MS-CHAPv2, [`handler`] turns a datagram plus a [`directory`] view plus
//! `now` into effects, and [`server`] only moves datagrams.
//!
//! Written here rather than on the `radius` crate: its attribute list is private and it cannot
//! decode vendor attributes; it is used in tests as an independent cross-check.

pub mod attr;
pub mod auth;
pub mod directory;
pub mod eap;
pub mod handler;
pub mod nas;
pub mod packet;
pub mod server;

pub use packet::{Code, DecodeError, Packet};
