//! Shared parts of the benchmark programs (and of the namespace end-to-end tests).

pub mod fake_kisi;
pub mod fake_unifi;
pub mod netns;
