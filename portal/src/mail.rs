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
            let now = chrono::Utc::now();
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
