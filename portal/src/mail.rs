//! Mail delivery for the portal and the console. Without `[mail] smtp_host`, mails go to an
//! outbox directory (one RFC 5322 file each, mode 0600, since approval links are secrets) and
//! the log says where; the operator can forward them or configure SMTP.

use async_trait::async_trait;
use frontdesk_core::ports::{ActError, Mail, Mailer};
use std::io::Write;
use std::path::PathBuf;

pub struct OutboxMailer {
    dir: PathBuf,
    from: String,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf, from: String) -> OutboxMailer {
        OutboxMailer { dir, from }
    }
}

/// Header values are one line: a name typed on the portal cannot add headers.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: Mail) -> Result<(), ActError> {
        let dir = self.dir.clone();
        let from = self.from.clone();
        let to = mail.to.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<PathBuf> {
            std::fs::create_dir_all(&dir)?;
            let now = frontdesk_core::clock::now();
            let name = format!(
                "{}-{:09}.eml",
                now.format("%Y%m%dT%H%M%S"),
                now.timestamp_subsec_nanos()
            );
            let path = dir.join(name);
            let mut f = std::fs::OpenOptions::new();
            f.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut f, 0o600);
            let mut f = f.open(&path)?;
            write!(
                f,
                "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}",
                one_line(&from),
                one_line(&mail.to),
                one_line(&mail.subject),
                now.to_rfc2822(),
                mail.body.replace('\n', "\r\n")
            )?;
            Ok(path)
        })
        .await
        .map_err(|e| ActError::Other(e.to_string()))?
        .map(|path| {
            tracing::info!(%to, file = %path.display(), "mail written to the outbox (no [mail] smtp_host)");
        })
        .map_err(|e| ActError::Other(format!("outbox: {e}")))
    }
}

/// SMTP delivery (`[mail]`): STARTTLS on 587 by default, implicit TLS on 465, plain only when
/// `starttls = false` (a relay on the same machine). TLS is rustls with the system's roots.
pub struct SmtpMailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
    pub starttls: bool,
}

impl SmtpMailer {
    pub fn new(s: SmtpSettings) -> Result<SmtpMailer, String> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::{AsyncSmtpTransport, Tokio1Executor};
        let from = s
            .from
            .parse()
            .map_err(|e| format!("mail.from {:?}: {e}", s.from))?;
        let builder = if s.port == 465 {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
        } else if s.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
        } else {
            Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &s.host,
            ))
        }
        .map_err(|e| format!("mail.smtp_host {:?}: {e}", s.host))?;
        let mut builder = builder
            .port(s.port)
            .timeout(Some(std::time::Duration::from_secs(15)));
        if let (Some(u), Some(p)) = (s.username, s.password) {
            builder = builder.credentials(Credentials::new(u, p));
        }
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<(), ActError> {
        use lettre::message::header::ContentType;
        use lettre::AsyncTransport;
        let to = mail
            .to
            .parse()
            .map_err(|e| ActError::Other(format!("recipient {:?}: {e}", mail.to)))?;
        let msg = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&mail.subject))
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)
            .map_err(|e| ActError::Other(e.to_string()))?;
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| ActError::Refused("SMTP server".into(), e.to_string()))
    }
}
