//! Authentication methods.
pub mod mschap;
