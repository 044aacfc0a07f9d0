//! `token` and `webhook`: credentials for the JSON API and the membership webhook.

use super::Ctx;
use crate::cli::{TokenCommand, WebhookCommand};
use crate::output::{json, kv, opt, rfc3339, table};
use anyhow::{Context, Result};
use frontdesk_core::store::api::parse_scopes;
use frontdesk_core::store::Actor;
use frontdesk_portal::api::webhook;
use serde_json::json;

pub async fn token(ctx: &Ctx, cmd: TokenCommand, actor: &Actor) -> Result<()> {
    let store = ctx.open().await?;
    match cmd {
        TokenCommand::Create { name, scopes } => {
            let scopes = parse_scopes(&scopes)?;
            let (value, hash) = frontdesk_portal::api::new_token();
            let t = store.create_api_token(&name, &scopes, &hash, actor).await?;
            if ctx.json {
                json(&json!({"id": t.id, "name": t.name, "scopes": t.scopes, "token": value}));
            } else {
                kv(&[
                    ("id", t.id.to_string()),
                    ("name", t.name),
                    ("scopes", t.scopes.join(", ")),
                    ("token", format!("{value} (shown once; store it now)")),
                ]);
            }
        }
        TokenCommand::List => {
            let list = store.api_tokens().await?;
            if ctx.json {
                json(&list);
            } else {
                let rows: Vec<Vec<String>> = list
                    .into_iter()
                    .map(|t| {
                        vec![
                            t.id.to_string(),
                            t.name,
                            t.scopes.join(","),
                            t.created_by,
                            opt(t.last_used_at.map(rfc3339)),
                            t.revoked_at
                                .map_or("live".into(), |r| format!("revoked {}", rfc3339(r))),
                        ]
                    })
                    .collect();
                table(
                    &["ID", "NAME", "SCOPES", "CREATED BY", "LAST USED", "STATE"],
                    &rows,
                );
            }
        }
        TokenCommand::Revoke { id } => {
            let t = store.revoke_api_token(id, actor).await?;
            if ctx.json {
                json(&t);
            } else {
                println!("revoked API token {} ({})", t.id, t.name);
            }
        }
    }
    Ok(())
}

pub async fn webhook(ctx: &Ctx, cmd: WebhookCommand, actor: &Actor) -> Result<()> {
    let store = ctx.open().await?;
    match cmd {
        WebhookCommand::Secret { rotate } => {
            let existing = store.sealed_meta(webhook::SECRET_KEY).await?;
            let secret = match existing {
                Some(s) if !rotate => s,
                _ => {
                    let s = format!(
                        "whsec_{}",
                        frontdesk_portal::api::new_token()
                            .0
                            .trim_start_matches("fdk_")
                    );
                    store.set_sealed_meta(webhook::SECRET_KEY, &s).await?;
                    store
                        .record_event(
                            actor,
                            "webhook.secret",
                            "webhook",
                            Some(if rotate {
                                "rotated".into()
                            } else {
                                "created".into()
                            }),
                        )
                        .await?;
                    s
                }
            };
            if ctx.json {
                json(
                    &json!({"secret": secret, "header": "Frontdesk-Signature", "endpoint": "/api/v1/webhooks/membership"}),
                );
            } else {
                kv(&[
                    ("secret", secret),
                    ("endpoint", "POST /api/v1/webhooks/membership".into()),
                    (
                        "signature",
                        "Frontdesk-Signature: t=UNIX,v1=hex(HMAC-SHA256(secret, \"UNIX.BODY\"))"
                            .into(),
                    ),
                ]);
            }
        }
        WebhookCommand::Sign { body } => {
            let secret = store
                .sealed_meta(webhook::SECRET_KEY)
                .await?
                .context("no webhook secret yet: run `frontdesk webhook secret`")?;
            let bytes =
                std::fs::read(&body).with_context(|| format!("cannot read {}", body.display()))?;
            let header = webhook::sign(
                secret.as_bytes(),
                &bytes,
                frontdesk_core::clock::now().timestamp(),
            );
            println!("Frontdesk-Signature: {header}");
        }
    }
    Ok(())
}
