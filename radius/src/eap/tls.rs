//! The TLS layer shared by PEAP, TTLS and EAP-TLS (RFC 5216 §2.1.5, RFC 5281 §9.2): rustls as
//! a sans-IO engine, the Flags octet (L, M, S), and fragmentation both ways.

use rustls::ServerConnection;
use std::io::{Read, Write};

pub const FLAG_LENGTH: u8 = 0x80;
pub const FLAG_MORE: u8 = 0x40;
pub const FLAG_START: u8 = 0x20;

/// Biggest TLS message we reassemble from a peer (client certificate chains included).
const MAX_INBOUND: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TlsError {
    #[error("EAP-TLS framing: {0}")]
    Framing(&'static str),
    #[error("TLS: {0}")]
    Tls(String),
}

/// What arrived, once a peer's message is complete.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// The peer acknowledged a fragment of ours, or sent a fragment we must acknowledge: the
    /// caller answers with [`TlsSession::next_request`].
    Continue,
    /// A whole message was processed; any application data it carried.
    Message(Vec<u8>),
}

pub struct TlsSession {
    pub conn: ServerConnection,
    /// Low bits of the Flags octet: the PEAP / TTLS version (0 for both).
    version: u8,
    inbound: Vec<u8>,
    inbound_expected: Option<usize>,
    pub(crate) outbound: Vec<u8>,
    sent: usize,
    /// The last Flags octet we sent had M set: the next empty response is an acknowledgement.
    ack_pending: bool,
    /// The peer sent a fragment with M set: we owe it an empty acknowledgement request.
    ack_owed: bool,
}

impl TlsSession {
    pub fn new(conn: ServerConnection, version: u8) -> TlsSession {
        TlsSession {
            conn,
            version,
            inbound: Vec::new(),
            inbound_expected: None,
            outbound: Vec::new(),
            sent: 0,
            ack_pending: false,
            ack_owed: false,
        }
    }

    /// The Type-Data of the first request: Start flag, no data.
    pub fn start(&self) -> Vec<u8> {
        vec![FLAG_START | self.version]
    }

    /// Takes the Type-Data of an EAP-Response of our method.
    pub fn receive(&mut self, data: &[u8]) -> Result<Received, TlsError> {
        let (&flags, mut rest) = data
            .split_first()
            .ok_or(TlsError::Framing("empty response"))?;
        if flags & FLAG_LENGTH != 0 {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or(TlsError::Framing("length flag without length"))?;
            let len = u32::from_be_bytes(*len) as usize;
            if len > MAX_INBOUND {
                return Err(TlsError::Framing("message too long"));
            }
            if self.inbound.is_empty() {
                self.inbound_expected = Some(len);
            }
            rest = tail;
        }
        if self.ack_pending {
            // Any response to a fragment of ours must be an empty acknowledgement.
            if !rest.is_empty() {
                return Err(TlsError::Framing("data while fragments are outstanding"));
            }
            self.ack_pending = false;
            return Ok(Received::Continue);
        }
        if self.inbound.len() + rest.len() > MAX_INBOUND {
            return Err(TlsError::Framing("message too long"));
        }
        self.inbound.extend_from_slice(rest);
        if flags & FLAG_MORE != 0 {
            if rest.is_empty() {
                return Err(TlsError::Framing("empty fragment"));
            }
            self.ack_owed = true;
            return Ok(Received::Continue);
        }
        if let Some(expected) = self.inbound_expected.take() {
            if expected != self.inbound.len() {
                return Err(TlsError::Framing("length does not match the data"));
            }
        }
        let message = std::mem::take(&mut self.inbound);
        let mut input = &message[..];
        while !input.is_empty() {
            self.conn
                .read_tls(&mut input)
                .map_err(|e| TlsError::Tls(e.to_string()))?;
            self.conn
                .process_new_packets()
                .map_err(|e| TlsError::Tls(e.to_string()))?;
        }
        let mut plain = Vec::new();
        match self.conn.reader().read_to_end(&mut plain) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(TlsError::Tls(e.to_string())),
        }
        Ok(Received::Message(plain))
    }

    /// Encrypts application data for the peer (queued until [`next_request`]).
    pub fn send_plaintext(&mut self, data: &[u8]) -> Result<(), TlsError> {
        self.conn
            .writer()
            .write_all(data)
            .map_err(|e| TlsError::Tls(e.to_string()))
    }

    /// Moves whatever rustls wants to send into the outbound buffer.
    fn pull(&mut self) -> Result<(), TlsError> {
        if self.sent == self.outbound.len() {
            self.outbound.clear();
            self.sent = 0;
        }
        while self.conn.wants_write() {
            self.conn
                .write_tls(&mut self.outbound)
                .map_err(|e| TlsError::Tls(e.to_string()))?;
        }
        Ok(())
    }

    /// Whether a request with data is waiting (after [`receive`] and any `send_plaintext`).
    pub fn has_output(&mut self) -> Result<bool, TlsError> {
        self.pull()?;
        Ok(self.sent < self.outbound.len() || self.ack_owed)
    }

    /// The Type-Data of the next request: an acknowledgement of the peer's fragment, or the
    /// next fragment of ours (L on the first of several, M while more follow).
    pub fn next_request(&mut self, fragment: usize) -> Result<Vec<u8>, TlsError> {
        if self.ack_owed {
            self.ack_owed = false;
            return Ok(vec![self.version]);
        }
        self.pull()?;
        let remaining = &self.outbound[self.sent..];
        let first = self.sent == 0;
        let more = remaining.len() > fragment;
        let chunk = &remaining[..remaining.len().min(fragment)];
        let mut flags = self.version;
        if more {
            flags |= FLAG_MORE;
        }
        let mut out = Vec::with_capacity(chunk.len() + 5);
        if first && more {
            out.push(flags | FLAG_LENGTH);
            out.extend((self.outbound.len() as u32).to_be_bytes());
        } else {
            out.push(flags);
        }
        out.extend_from_slice(chunk);
        self.sent += chunk.len();
        self.ack_pending = more;
        Ok(out)
    }

    pub fn handshake_done(&self) -> bool {
        !self.conn.is_handshaking()
    }

    /// RFC 5705 exporter; with no context this is the TLS 1.2 PRF over client ‖ server random
    /// that RFC 5216 §2.3 and RFC 5281 §8 use for the keys.
    pub fn export(
        &self,
        label: &[u8],
        context: Option<&[u8]>,
        out: &mut [u8],
    ) -> Result<(), TlsError> {
        self.conn
            .export_keying_material(out, label, context)
            .map(|_| ())
            .map_err(|e| TlsError::Tls(e.to_string()))
    }
}
