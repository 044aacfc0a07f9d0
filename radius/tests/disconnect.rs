//! The Disconnect client against a fake NAS on loopback that checks what it receives (our
//! verifier and the `radius` crate) and answers as told: ACK, NAK with Error-Cause, nothing,
//! or only the retransmission.

use frontdesk_core::decide::Reason;
use frontdesk_core::model::{parse_cidr, Nas, Vendor};
use frontdesk_core::ports::{ActError, Disconnector, SessionRef};
use frontdesk_core::MacAddr;
use frontdesk_radius::attr;
use frontdesk_radius::disconnect::{DisconnectSettings, RadiusDisconnector};
use frontdesk_radius::packet::{self, Code, Packet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "nas-secret";

#[derive(Clone, Copy)]
enum Mode {
    Ack,
    Nak,
    Silent,
    AckSecond,
}

/// A NAS listening for Disconnect-Requests; returns its port and what it received.
async fn fake_nas(mode: Mode) -> (u16, Arc<Mutex<Vec<Vec<u8>>>>) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let raw = buf[..n].to_vec();
            assert!(packet::verify_digest_request_authenticator(
                &raw,
                SECRET.as_bytes()
            ));
            assert_eq!(
                packet::verify_request_message_authenticator(&raw, SECRET.as_bytes()),
                Some(true)
            );
            assert!(radius::core::packet::Packet::is_authentic_request(
                &raw,
                SECRET.as_bytes()
            ));
            let count = {
                let mut g = seen.lock().unwrap();
                g.push(raw.clone());
                g.len()
            };
            let req = Packet::decode(&raw).unwrap();
            let code = match (mode, count) {
                (Mode::Silent, _) | (Mode::AckSecond, 1) => continue,
                (Mode::Nak, _) => Code::DisconnectNak,
                _ => Code::DisconnectAck,
            };
            let mut a = Packet::new(code, req.identifier, [0; 16]);
            a.add(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]);
            if code == Code::DisconnectNak {
                a.add_u32(attr::ERROR_CAUSE, 503);
            }
            let out = packet::encode_response(&a, &req.authenticator, SECRET.as_bytes()).unwrap();
            sock.send_to(&out, from).await.unwrap();
        }
    });
    (port, got)
}

fn disconnector(port: u16, vendor: Vendor) -> RadiusDisconnector {
    let nas = Nas {
        id: 7,
        name: "ap-lobby".into(),
        address: parse_cidr("127.0.0.1").unwrap(),
        secret: SECRET.into(),
        vendor,
        disconnect_port: port,
        coa_port: port,
        require_message_authenticator: true,
    };
    RadiusDisconnector::new(
        Arc::new(move |id| (id == 7).then(|| nas.clone())),
        DisconnectSettings {
            first_timeout: Duration::from_millis(200),
            tries: 3,
        },
    )
}

fn session() -> SessionRef {
    SessionRef {
        nas_id: 7,
        nas_addr: "127.0.0.1:40000".parse().unwrap(),
        user_name: "ada".into(),
        acct_session_id: Some("S-1".into()),
        calling_station_id: Some("02:00:00:00:00:05".parse::<MacAddr>().unwrap()),
        nas_identifier: None,
    }
}

#[tokio::test]
async fn ack_nak_silence_and_retransmission() {
    let (port, got) = fake_nas(Mode::Ack).await;
    disconnector(port, Vendor::Generic)
        .disconnect(&session(), Reason::OutsideHours)
        .await
        .unwrap();
    assert_eq!(got.lock().unwrap().len(), 1);

    let (port, _) = fake_nas(Mode::Nak).await;
    let e = disconnector(port, Vendor::Generic)
        .disconnect(&session(), Reason::Cancelled)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ActError::Refused(nas, why) if nas == "ap-lobby" && why.contains("503") && why.contains("Session Context Not Found")),
        "{e}"
    );

    // No answer: three transmissions (200, 400, 800 ms), then a timeout error.
    let (port, got) = fake_nas(Mode::Silent).await;
    let t = std::time::Instant::now();
    let e = disconnector(port, Vendor::Generic)
        .disconnect(&session(), Reason::OutsideHours)
        .await
        .unwrap_err();
    assert!(matches!(e, ActError::Timeout(_)), "{e}");
    assert!(
        t.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        t.elapsed()
    );
    let sent = got.lock().unwrap().clone();
    assert_eq!(sent.len(), 3);
    // Retransmissions are the same packet (same identifier and authenticator).
    assert!(sent.windows(2).all(|w| w[0] == w[1]));

    // The NAS answers only the retransmission.
    let (port, got) = fake_nas(Mode::AckSecond).await;
    disconnector(port, Vendor::Generic)
        .disconnect(&session(), Reason::OutsideHours)
        .await
        .unwrap();
    assert_eq!(got.lock().unwrap().len(), 2);
}

/// An unknown NAS is a clear error. A NAS whose profile prefers its controller (UniFi) still
/// gets a Disconnect-Request when no controller takes it (`serve` tries the controller's kick
/// first; newer UniFi firmware answers RADIUS).
#[tokio::test]
async fn unknown_nas_is_a_clear_error_and_controller_vendors_fall_back_to_radius() {
    let (port, got) = fake_nas(Mode::Ack).await;
    let mut s = session();
    s.nas_id = 99;
    let e = disconnector(port, Vendor::Generic)
        .disconnect(&s, Reason::Cancelled)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no longer configured"), "{e}");
    assert!(got.lock().unwrap().is_empty());
    disconnector(port, Vendor::Unifi)
        .disconnect(&session(), Reason::Cancelled)
        .await
        .unwrap();
    assert_eq!(
        got.lock().unwrap().len(),
        1,
        "a Disconnect-Request was sent"
    );
}
