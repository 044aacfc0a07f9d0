//! Network-namespace helpers, shared with the gateway benchmark (bench/src/netns.rs).
#![allow(unused_imports)]
pub use frontdesk_bench::netns::*;
