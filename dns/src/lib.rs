//! Protective DNS (issue 13): blocklists per plan, a block page with exceptions operators
//! approve. This crate is sans-IO where it can be: parsing lists and matching names here; the
//! resolver that forwards, caches and answers is built on hickory-dns around it.

pub mod blocklist;
pub mod dnssec;
pub mod dot;
pub mod policy;
pub mod resolver;
pub mod server;
pub mod upstream;
pub mod wire;
