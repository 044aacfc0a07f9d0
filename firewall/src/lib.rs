//! Gateway mode (SPEC §5): the nftables ruleset (pure rendering), applying it, the set of
//! authorized portal clients, and finding a client's MAC from its address.

pub mod apply;
pub mod clients;
pub mod conntrack;
pub mod neigh;
pub mod ruleset;

pub use apply::{Nft, NftError};
pub use ruleset::{render, Allow, Gateway, Network, Role, State};
