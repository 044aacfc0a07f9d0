//! RADIUS for Frontdesk, sans-IO first (like rustls): [`packet`] decodes and encodes bytes,
//! [`auth`] verifies PAP, CHAP, MS-CHAPv2 and MAC authentication, and the handler turns a
//! request plus a directory view plus `now` into effects. The tokio server only moves datagrams.
//!
//! Written here rather than on the `radius` crate: its attribute list is private and it cannot
//! decode vendor attributes; it is used in tests as an independent cross-check.

pub mod attr;
pub mod auth;
pub mod packet;

pub use packet::{Code, DecodeError, Packet};
