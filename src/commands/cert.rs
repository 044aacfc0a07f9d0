//! `frontdesk cert`: the certificates behind WPA2/WPA3-Enterprise, and the loader `init` and
//! `serve` share.

use super::profile;
use super::Ctx;
use crate::cli::{CertCommand, ProfileEap};
use crate::output::{json, kv};
use anyhow::{bail, Context, Result};
use frontdesk_core::store::Store;
use frontdesk_radius::eap::pki::{self, Pki};
use serde_json::json;
use std::path::Path;

const PKI_KEY: &str = "eap_pki";
/// Used when `[eap] server_name` is not set. Members enter it as the "domain" on Android.
pub const DEFAULT_SERVER_NAME: &str = "radius.frontdesk.lan";

/// The EAP certificates: the operator's files if configured, else the ones made at `init`
/// (made now, once, for databases created before Frontdesk had EAP).
pub async fn load_or_create(ctx: &Ctx, store: &Store) -> Result<(Pki, bool)> {
    let eap = &ctx.config.eap;
    if eap.cert_file.is_some() != eap.key_file.is_some() {
        anyhow::bail!("[eap] cert_file and key_file go together: set both or neither");
    }
    if let (Some(cert), Some(key)) = (&eap.cert_file, &eap.key_file) {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
        };
        let server_cert = read(cert)?;
        let ca_cert = match &eap.ca_file {
            Some(p) => read(p)?,
            None => server_cert.clone(),
        };
        return Ok((
            Pki {
                ca_cert,
                ca_key: String::new(),
                server_cert,
                server_key: read(key)?,
                server_name: eap.server_name.clone().unwrap_or_default(),
            },
            false,
        ));
    }
    if let Some(stored) = store.sealed_meta(PKI_KEY).await? {
        let pki: Pki =
            serde_json::from_str(&stored).context("stored EAP certificates are unreadable")?;
        return Ok((pki, false));
    }
    Ok((create(ctx, store).await?, true))
}

pub async fn create(ctx: &Ctx, store: &Store) -> Result<Pki> {
    let site = store
        .site()
        .await
        .map(|s| s.name)
        .unwrap_or_else(|_| "Frontdesk".into());
    let name = ctx
        .config
        .eap
        .server_name
        .clone()
        .unwrap_or_else(|| DEFAULT_SERVER_NAME.to_string());
    let pki = pki::generate(&site, &name)?;
    store
        .set_sealed_meta(PKI_KEY, &serde_json::to_string(&pki)?)
        .await?;
    Ok(pki)
}

fn refuse_existing(out: &Path) -> Result<()> {
    if out.exists() {
        bail!("{} exists; not replacing it", out.display());
    }
    Ok(())
}

/// The PKCS#12 password: from the file, or generated (then `true`: the caller prints it).
fn p12_password(file: Option<&Path>) -> Result<(String, bool)> {
    let (password, generated) = match file {
        Some(f) => (super::read_secret_file(f, "PKCS#12 password")?, false),
        None => (frontdesk_core::secrets::generate_wifi_password(), true),
    };
    if password.is_empty() {
        bail!("the PKCS#12 password is empty (iOS and Android refuse such files)");
    }
    Ok((password, generated))
}

/// A new client certificate for `username` with its key and the CA, as legacy PKCS#12
/// (3DES key, RC2 certificates, SHA-1 MAC): the one form Android, iOS, macOS and Windows all
/// import.
fn pkcs12(pki: &Pki, username: &str, password: &str, days: i64) -> Result<Vec<u8>> {
    if !(1..=3650).contains(&days) {
        bail!("--days must be between 1 and 3650");
    }
    let cert = pki::issue_client(pki, username, days)?;
    let ca = pki::certs(&pki.ca_cert)?.remove(0);
    let pfx = p12::PFX::new(
        &cert.cert_der,
        &cert.key_der,
        Some(ca.as_ref()),
        password,
        username,
    )
    .context("cannot build the PKCS#12 file")?;
    Ok(pfx.to_der())
}

fn report(ctx: &Ctx, m: &frontdesk_core::Member, out: &Path, password: Option<&String>) {
    if ctx.json {
        json(&json!({
            "member": m.id,
            "identity": m.wifi_username,
            "file": out,
            "password": password,
        }));
    } else {
        let mut fields = vec![
            ("member", m.id.clone()),
            ("identity", m.wifi_username.clone()),
            ("file", out.display().to_string()),
        ];
        if let Some(p) = password {
            fields.push(("password", p.clone()));
        }
        kv(&fields);
    }
}

/// Every client certificate issued is on the member's timeline (`audit`): who, for whom, how
/// long, where it was written. The certificate stops working with the member's status.
async fn audit_issue(
    store: &Store,
    m: &frontdesk_core::Member,
    days: i64,
    out: &Path,
) -> Result<()> {
    store
        .record_event(
            &frontdesk_core::store::Actor::cli(),
            "cert.issue",
            &m.id,
            Some(format!(
                "EAP-TLS client certificate for {}, valid {days} days, written to {}",
                m.wifi_username,
                out.display()
            )),
        )
        .await?;
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: CertCommand) -> Result<()> {
    let store = ctx.open().await?;
    let (pki, _) = load_or_create(ctx, &store).await?;
    match cmd {
        CertCommand::Issue {
            member,
            out,
            password_file,
            days,
        } => {
            let m = store.member(&member).await?;
            refuse_existing(&out)?;
            let (password, generated) = p12_password(password_file.as_deref())?;
            let p12 = pkcs12(&pki, &m.wifi_username, &password, days)?;
            super::backup::write_private(&out, &p12)?;
            audit_issue(&store, &m, days, &out).await?;
            report(ctx, &m, &out, generated.then_some(&password));
        }
        CertCommand::Profile {
            member,
            ssid,
            out,
            eap,
            password_file,
            days,
        } => {
            let m = store.member(&member).await?;
            if ssid.trim().is_empty() {
                bail!("--ssid is empty");
            }
            refuse_existing(&out)?;
            let site = store.site().await?.name;
            let ca = pki::certs(&pki.ca_cert)?.remove(0);
            let (p12, password) = match eap {
                ProfileEap::Peap => (None, None),
                ProfileEap::Tls => {
                    let (password, generated) = p12_password(password_file.as_deref())?;
                    let p12 = pkcs12(&pki, &m.wifi_username, &password, days)?;
                    (Some(p12), generated.then_some(password))
                }
            };
            let text = profile::render(&profile::Profile {
                site: &site,
                ssid: &ssid,
                username: &m.wifi_username,
                server_name: &pki.server_name,
                ca_der: ca.as_ref(),
                eap: match &p12 {
                    None => profile::Eap::Peap,
                    Some(p) => profile::Eap::Tls { pkcs12: p },
                },
            });
            super::backup::write_private(&out, text.as_bytes())?;
            if p12.is_some() {
                audit_issue(&store, &m, days, &out).await?;
            }
            report(ctx, &m, &out, password.as_ref());
        }
        CertCommand::Show { ca_pem: true } => {
            print!("{}", pki.ca_cert);
        }
        CertCommand::Show { ca_pem: false } => {
            let fp = pki::fingerprint(&pki.ca_cert)?;
            if ctx.json {
                json(
                    &json!({"server_name": pki.server_name, "ca_sha256": fp, "own_ca": !pki.ca_key.is_empty()}),
                );
            } else {
                kv(&[
                    ("server name", format!("{} (the \"domain\" members enter on Android)", pki.server_name)),
                    ("CA SHA-256", fp),
                    (
                        "CA certificate",
                        "frontdesk cert show --ca-pem > ca.pem  (install on devices, or trust on first use)".into(),
                    ),
                ]);
            }
        }
    }
    Ok(())
}
