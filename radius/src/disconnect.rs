//! Sending Disconnect-Requests (RFC 5176) to NASes: the `Disconnector` the scheduler and the
//! console use. Retransmissions reuse the identifier and authenticator (RFC 5080 §2.2.1) with
//! doubling timeouts; answers not signed with the NAS secret, or for another request, are
//! ignored while waiting.

use crate::coa::{self, Answer};
use crate::nas::{self, CoaPath};
use async_trait::async_trait;
use frontdesk_core::decide::Reason;
use frontdesk_core::model::Nas;
use frontdesk_core::ports::{ActError, Disconnector, SessionRef};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tracing::{info, warn};

/// Finds a NAS by id in the current directory.
pub type NasLookup = Arc<dyn Fn(i64) -> Option<Nas> + Send + Sync>;

#[derive(Clone, Debug)]
pub struct DisconnectSettings {
    /// First wait for an answer; doubled for each retransmission.
    pub first_timeout: Duration,
    /// Transmissions in all (the first and the retries).
    pub tries: u32,
}

impl Default for DisconnectSettings {
    fn default() -> Self {
        DisconnectSettings {
            first_timeout: Duration::from_secs(1),
            tries: 3,
        }
    }
}

pub struct RadiusDisconnector {
    nas: NasLookup,
    settings: DisconnectSettings,
    next_id: AtomicU8,
}

impl RadiusDisconnector {
    pub fn new(nas: NasLookup, settings: DisconnectSettings) -> RadiusDisconnector {
        RadiusDisconnector {
            nas,
            settings,
            next_id: AtomicU8::new(rand::random()),
        }
    }
}

#[async_trait]
impl Disconnector for RadiusDisconnector {
    async fn disconnect(&self, session: &SessionRef, reason: Reason) -> Result<(), ActError> {
        let Some(nas) = (self.nas)(session.nas_id) else {
            return Err(ActError::Other(format!(
                "NAS #{} is no longer configured",
                session.nas_id
            )));
        };
        let profile = nas::profile(nas.vendor);
        if profile.coa == CoaPath::ControllerApi {
            // `serve` routes these through the controller when one is configured; without
            // one, RADIUS is tried (newer firmware answers it).
            tracing::debug!(nas = %nas.name, vendor = nas.vendor.as_str(), "no controller for this NAS: trying a RADIUS Disconnect-Request");
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let req = coa::disconnect_request(profile, session, id, nas.secret.as_bytes())
            .map_err(|e| ActError::Other(e.to_string()))?;
        // To the address the session's accounting came from, on the NAS's Disconnect port.
        let to = SocketAddr::new(session.nas_addr.ip(), nas.disconnect_port);
        let bind: SocketAddr = if to.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let sock = UdpSocket::bind(bind)
            .await
            .map_err(|e| ActError::Other(format!("socket: {e}")))?;
        let mut wait = self.settings.first_timeout;
        let mut buf = [0u8; 4096];
        for attempt in 1..=self.settings.tries.max(1) {
            sock.send_to(&req.bytes, to)
                .await
                .map_err(|e| ActError::Other(format!("send to {to}: {e}")))?;
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                let got = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
                let Ok(Ok((n, from))) = got else { break };
                if from.ip() != to.ip() {
                    continue;
                }
                match coa::read_answer(&buf[..n], &req, nas.secret.as_bytes()) {
                    Ok(Answer::Ack) => {
                        info!(nas = %nas.name, user = %session.user_name, %reason, attempt, "session disconnected");
                        return Ok(());
                    }
                    Ok(Answer::Nak { error_cause }) => {
                        let why = match error_cause {
                            Some(c) => {
                                format!("NAK, Error-Cause {c} ({})", coa::error_cause_text(c))
                            }
                            None => "NAK without Error-Cause".into(),
                        };
                        warn!(nas = %nas.name, user = %session.user_name, %reason, "{why}");
                        return Err(ActError::Refused(nas.name.clone(), why));
                    }
                    Err(e) => {
                        warn!(nas = %nas.name, error = %e, "ignoring an answer to a Disconnect-Request");
                    }
                }
            }
            if attempt < self.settings.tries {
                warn!(nas = %nas.name, %to, attempt, "no answer to Disconnect-Request; retrying");
            }
            wait *= 2;
        }
        warn!(nas = %nas.name, %to, user = %session.user_name, "NAS did not answer the Disconnect-Request");
        Err(ActError::Timeout(format!("NAS {} at {to}", nas.name)))
    }
}
