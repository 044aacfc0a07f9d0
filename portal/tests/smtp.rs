//! SMTP delivery against a small SMTP server on loopback that records what it is sent and can
//! refuse a recipient (RFC 5321 replies).

use frontdesk_core::ports::{Mail, Mailer};
use frontdesk_portal::mail::{SmtpMailer, SmtpSettings};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Accepts one session per connection; `refuse_rcpt` answers 550 to RCPT TO.
async fn fake_smtp(refuse_rcpt: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let out = got.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                let mut data = false;
                let mut msg = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if data {
                        if line == "." {
                            data = false;
                            got.lock().unwrap().push(std::mem::take(&mut msg));
                            w.write_all(b"250 queued\r\n").await.unwrap();
                        } else {
                            msg.push_str(&line);
                            msg.push('\n');
                        }
                        continue;
                    }
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-fake\r\n250 8BITMIME\r\n",
                        "MAIL" => b"250 ok\r\n",
                        "RCPT" if refuse_rcpt => b"550 no such user\r\n",
                        "RCPT" => b"250 ok\r\n",
                        "DATA" => {
                            data = true;
                            b"354 go on\r\n"
                        }
                        "QUIT" => {
                            w.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        _ => b"250 ok\r\n",
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, out)
}

fn mailer(port: u16) -> SmtpMailer {
    SmtpMailer::new(SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        from: "Frontdesk <wifi@space.example>".into(),
        starttls: false,
    })
    .unwrap()
}

#[tokio::test]
async fn sends_a_plain_text_mail() {
    let (port, got) = fake_smtp(false).await;
    mailer(port)
        .send(Mail {
            to: "ada@example.com".into(),
            subject: "Grace asks to use the guest Wi-Fi\r\nBcc: x@evil.example".into(),
            body: "Hello Ada,\n\nApprove: https://portal.example/sponsor/approve/abc\n".into(),
        })
        .await
        .unwrap();
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert!(m.contains("To: ada@example.com"), "{m}");
    assert!(m.contains("From: Frontdesk <wifi@space.example>"), "{m}");
    assert!(
        !m.lines().any(|l| l.starts_with("Bcc:")),
        "header injection: {m}"
    );
    assert!(m.contains("sponsor/approve/abc"), "{m}");
}

#[tokio::test]
async fn a_refused_recipient_is_an_error() {
    let (port, _) = fake_smtp(true).await;
    let e = mailer(port)
        .send(Mail {
            to: "nobody@example.com".into(),
            subject: "x".into(),
            body: "y".into(),
        })
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("550") || e.to_string().contains("no such user"),
        "{e}"
    );
    // Nothing listening: a clear error, not a hang.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = l.local_addr().unwrap().port();
    drop(l);
    assert!(mailer(closed)
        .send(Mail {
            to: "a@example.com".into(),
            subject: "x".into(),
            body: "y".into(),
        })
        .await
        .is_err());
}
