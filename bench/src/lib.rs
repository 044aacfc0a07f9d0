//! Shared parts of the benchmark programs (and of the namespace end-to-end tests).

pub mod netns;
