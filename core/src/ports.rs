//! The traits through which one part of Frontdesk acts on another (SPEC §3). Core defines them;
//! the binary wires implementations together (RADIUS CoA client, firewall, controller APIs).

use crate::decide::Reason;
use crate::mac::MacAddr;
use crate::model::Change;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::net::{IpAddr, SocketAddr};

/// An online RADIUS session, identified the way a Disconnect-Request needs (RFC 5176 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRef {
    pub nas_id: i64,
    /// Where the session's accounting came from: Disconnect goes there.
    pub nas_addr: SocketAddr,
    pub user_name: String,
    pub acct_session_id: Option<String>,
    pub calling_station_id: Option<MacAddr>,
    pub nas_identifier: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActError {
    #[error("{0} did not answer in time")]
    Timeout(String),
    #[error("{0} refused: {1}")]
    Refused(String, String),
    #[error("{0}")]
    Other(String),
}

/// Ends a live session (RADIUS Disconnect/CoA or a controller's kick API).
#[async_trait]
pub trait Disconnector: Send + Sync {
    async fn disconnect(&self, session: &SessionRef, reason: Reason) -> Result<(), ActError>;
}

/// A client on a portal-enforced network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRef {
    pub mac: MacAddr,
    pub ip: Option<IpAddr>,
    /// Controller site or gateway interface the client sits behind, where it matters.
    pub location: Option<String>,
}

/// Lets a portal client through until an instant (firewall set element, controller authorize).
#[async_trait]
pub trait ClientAuthorizer: Send + Sync {
    /// `until = None`: no end (bounded by the implementation's own maximum).
    async fn authorize(
        &self,
        client: &ClientRef,
        until: Option<DateTime<Utc>>,
    ) -> Result<(), ActError>;
    async fn revoke(&self, client: &ClientRef) -> Result<(), ActError>;
}

/// The stream of committed changes (the `changes` table), whoever made them.
#[async_trait]
pub trait ChangeFeed: Send {
    /// Waits until changes after the last one returned exist, and returns them in order.
    async fn next_batch(&mut self) -> Result<Vec<Change>, crate::store::StoreError>;
}

/// Identifies the device behind a portal connection (gateway: the kernel's neighbour table;
/// controller mode: the controller's redirect parameters). Never the browser's word.
#[async_trait]
pub trait ClientLocator: Send + Sync {
    /// The client connecting from `ip`, when it sits directly on a portal network.
    async fn locate(&self, ip: IpAddr) -> Option<ClientRef>;
}

/// A mail to one recipient (plain text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Sends mail: SMTP in production, an outbox directory without `[mail] smtp_host`.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: Mail) -> Result<(), ActError>;
}

/// What the protective DNS blocks for a client, for the portal's block page: `Some((list,
/// listed domain))` when `host` is blocked for the client at `client`.
pub trait DnsBlocks: Send + Sync {
    fn blocked(&self, client: std::net::IpAddr, host: &str) -> Option<(String, String)>;
}
