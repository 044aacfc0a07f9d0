//! Devices (MAB), NAS clients, vouchers, operator accounts, and subject resolution.

use super::{dup, now_secs, ts, Actor, Audit, Result, Store, StoreError};
use crate::mac::MacAddr;
use crate::model::{Admin, Device, Member, Nas, Role, Vendor, Voucher};
use crate::secrets::{generate_admin_password, generate_voucher_code, hash_login_password};

/// A subject found from what a user typed (Wi-Fi username, email, id, MAC or voucher code).
#[derive(Clone, Debug)]
pub enum Resolved {
    Member(Member),
    Device {
        device: Device,
        owner: Option<Member>,
    },
    Voucher(Voucher),
}

#[derive(Clone, Debug)]
pub struct NewNas {
    pub name: String,
    pub address: ipnet::IpNet,
    pub secret: String,
    pub vendor: Vendor,
    pub disconnect_port: Option<u16>,
    pub coa_port: Option<u16>,
    pub require_message_authenticator: bool,
}

pub(super) type DeviceRow = (i64, String, Option<String>, i64, String);
pub(super) type VoucherRow = (String, i64, i64, i64, Option<String>, i64, Option<i64>);
type NasRow = (i64, String, String, String, String, i64, i64, i64);

pub(super) fn device_from_row((id, mac, member_id, plan_id, name): DeviceRow) -> Result<Device> {
    Ok(Device {
        id,
        mac: mac
            .parse()
            .map_err(|_| StoreError::Invalid(format!("stored MAC {mac:?} is malformed")))?,
        member_id,
        plan_id,
        name,
    })
}

pub(super) fn voucher_from_row(
    (code, plan_id, valid_secs, devices, sponsor_id, created, first): VoucherRow,
) -> Voucher {
    Voucher {
        code,
        plan_id,
        valid_secs,
        devices: devices as u32,
        sponsor_id,
        created_at: ts(created),
        first_used_at: first.map(ts),
    }
}

/// Voucher codes are typed on phones: accept any case, with or without the dash.
pub fn normalise_voucher_code(s: &str) -> String {
    let raw: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if raw.len() == 10 {
        format!("{}-{}", &raw[..5], &raw[5..])
    } else {
        s.trim().to_ascii_uppercase()
    }
}

impl Store {
    pub async fn add_device(
        &self,
        member: Option<&str>,
        mac: MacAddr,
        plan: &str,
        name: &str,
        actor: &Actor,
    ) -> Result<Device> {
        let owner = match member {
            Some(m) => Some(self.member(m).await?),
            None => None,
        };
        let plan = self.plan(plan).await?;
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO devices (mac, member_id, plan_id, name, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(mac.to_string())
        .bind(owner.as_ref().map(|m| m.id.clone()))
        .bind(plan.id)
        .bind(name)
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await
        .map_err(dup(format!("device {mac}")))?;
        let audit = Audit::new("device.add", "device", mac.to_string()).after(format!(
            "plan={} owner={}",
            plan.name,
            owner.as_ref().map_or("-", |m| m.email.as_str())
        ));
        self.finish(tx, actor, audit).await?;
        Ok(Device {
            id,
            mac,
            member_id: owner.map(|m| m.id),
            plan_id: plan.id,
            name: name.into(),
        })
    }

    pub async fn devices(&self) -> Result<Vec<Device>> {
        let rows: Vec<DeviceRow> =
            sqlx::query_as("SELECT id, mac, member_id, plan_id, name FROM devices ORDER BY mac")
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(device_from_row).collect()
    }

    pub async fn device(&self, mac: MacAddr) -> Result<Option<Device>> {
        let row: Option<DeviceRow> =
            sqlx::query_as("SELECT id, mac, member_id, plan_id, name FROM devices WHERE mac = $1")
                .bind(mac.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(device_from_row).transpose()
    }

    pub async fn add_nas(&self, new: &NewNas, actor: &Actor) -> Result<Nas> {
        if new.secret.len() < 8 {
            return Err(StoreError::Invalid(
                "NAS secret too short: use at least 8 characters (16+ random recommended)".into(),
            ));
        }
        if new.name.trim().is_empty() {
            return Err(StoreError::Invalid("NAS name is empty".into()));
        }
        let enc = self.key()?.encrypt(new.secret.as_bytes());
        let disconnect = new.disconnect_port.unwrap_or(new.vendor.disconnect_port());
        let coa = new.coa_port.unwrap_or(new.vendor.coa_port());
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO nas (name, address, secret_enc, vendor, disconnect_port, coa_port, require_message_authenticator, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(new.name.trim())
        .bind(new.address.to_string())
        .bind(enc)
        .bind(new.vendor.as_str())
        .bind(i64::from(disconnect))
        .bind(i64::from(coa))
        .bind(new.require_message_authenticator as i64)
        .bind(now_secs())
        .fetch_one(&mut *tx)
        .await
        .map_err(dup(format!("NAS {:?}", new.name.trim())))?;
        let audit = Audit::new("nas.add", "nas", new.name.trim()).after(format!(
            "address={} vendor={} disconnect={disconnect} coa={coa} require_ma={}",
            new.address, new.vendor, new.require_message_authenticator
        ));
        self.finish(tx, actor, audit).await?;
        Ok(Nas {
            id,
            name: new.name.trim().into(),
            address: new.address,
            secret: new.secret.clone(),
            vendor: new.vendor,
            disconnect_port: disconnect,
            coa_port: coa,
            require_message_authenticator: new.require_message_authenticator,
        })
    }

    /// Changes a NAS (by name): address, vendor (its default Disconnect/CoA ports come with
    /// it), whether Message-Authenticator is required, and optionally a new shared secret.
    /// The RADIUS server picks the change up from the change feed.
    pub async fn update_nas(
        &self,
        name: &str,
        address: ipnet::IpNet,
        vendor: Vendor,
        require_message_authenticator: bool,
        new_secret: Option<&str>,
        actor: &Actor,
    ) -> Result<()> {
        if new_secret.is_some_and(|s| s.len() < 8) {
            return Err(StoreError::Invalid(
                "NAS secret too short: use at least 8 characters (16+ random recommended)".into(),
            ));
        }
        let enc = new_secret
            .map(|s| self.key().map(|k| k.encrypt(s.as_bytes())))
            .transpose()?;
        let mut tx = self.begin().await?;
        let before: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT address, vendor, require_message_authenticator FROM nas WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((old_addr, old_vendor, old_ma)) = before else {
            return Err(StoreError::NotFound(format!(
                "NAS {name:?} (see `frontdesk nas list`)"
            )));
        };
        sqlx::query(
            "UPDATE nas SET address = $1, vendor = $2, disconnect_port = $3, coa_port = $4, \
             require_message_authenticator = $5, secret_enc = COALESCE($6, secret_enc) WHERE name = $7",
        )
        .bind(address.to_string())
        .bind(vendor.as_str())
        .bind(i64::from(vendor.disconnect_port()))
        .bind(i64::from(vendor.coa_port()))
        .bind(require_message_authenticator as i64)
        .bind(enc)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let audit =
            Audit::new("nas.update", "nas", name)
                .before(format!(
                    "address={old_addr} vendor={old_vendor} require_ma={}",
                    old_ma != 0
                ))
                .after(format!(
                "address={address} vendor={vendor} require_ma={require_message_authenticator}{}",
                if new_secret.is_some() { " secret=new" } else { "" }
            ));
        self.finish(tx, actor, audit).await
    }

    /// NAS clients with their secrets decrypted (the RADIUS server needs them).
    pub async fn nas_list(&self) -> Result<Vec<Nas>> {
        let rows: Vec<NasRow> = sqlx::query_as(
            "SELECT id, name, address, secret_enc, vendor, disconnect_port, coa_port, require_message_authenticator FROM nas ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        let key = self.key()?;
        rows.into_iter()
            .map(
                |(id, name, address, secret, vendor, disconnect, coa, require)| {
                    Ok(Nas {
                        address: address.parse().map_err(|_| {
                            StoreError::Invalid(format!("stored NAS address {address:?} invalid"))
                        })?,
                        secret: key.decrypt_string(&secret)?,
                        vendor: vendor.parse().map_err(StoreError::Invalid)?,
                        disconnect_port: disconnect as u16,
                        coa_port: coa as u16,
                        require_message_authenticator: require != 0,
                        id,
                        name,
                    })
                },
            )
            .collect()
    }

    pub async fn remove_nas(&self, name: &str, actor: &Actor) -> Result<()> {
        let mut tx = self.begin().await?;
        let res = sqlx::query("DELETE FROM nas WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "NAS {name:?} (see `frontdesk nas list`)"
            )));
        }
        self.finish(tx, actor, Audit::new("nas.remove", "nas", name))
            .await
    }

    pub async fn create_vouchers(
        &self,
        count: u32,
        valid_secs: i64,
        devices: u32,
        plan: &str,
        sponsor: Option<&str>,
        actor: &Actor,
    ) -> Result<Vec<Voucher>> {
        if count == 0 || count > 10_000 {
            return Err(StoreError::Invalid("voucher count: 1..10000".into()));
        }
        if valid_secs <= 0 {
            return Err(StoreError::Invalid(
                "voucher validity must be positive".into(),
            ));
        }
        if devices == 0 {
            return Err(StoreError::Invalid(
                "voucher devices must be at least 1".into(),
            ));
        }
        let plan = self.plan(plan).await?;
        let sponsor = match sponsor {
            Some(s) => Some(self.member(s).await?),
            None => None,
        };
        let now = now_secs();
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let code = generate_voucher_code();
            sqlx::query(
                "INSERT INTO vouchers (code, plan_id, valid_secs, devices, sponsor_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&code)
            .bind(plan.id)
            .bind(valid_secs)
            .bind(i64::from(devices))
            .bind(sponsor.as_ref().map(|m| m.id.clone()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            out.push(Voucher {
                code,
                plan_id: plan.id,
                valid_secs,
                devices,
                sponsor_id: sponsor.as_ref().map(|m| m.id.clone()),
                created_at: ts(now),
                first_used_at: None,
            });
        }
        let audit = Audit::new("voucher.create", "voucher", format!("{count} vouchers")).after(
            format!("plan={} valid={valid_secs}s devices={devices}", plan.name),
        );
        self.finish(tx, actor, audit).await?;
        Ok(out)
    }

    pub async fn vouchers(&self) -> Result<Vec<Voucher>> {
        let rows: Vec<VoucherRow> = sqlx::query_as(
            "SELECT code, plan_id, valid_secs, devices, sponsor_id, created_at, first_used_at FROM vouchers ORDER BY created_at DESC, code",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(voucher_from_row).collect())
    }

    /// Every voucher's bound devices, (code, MAC): what RADIUS checks device limits against.
    pub async fn voucher_devices_all(&self) -> Result<Vec<(String, MacAddr)>> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT code, mac FROM voucher_devices ORDER BY code, first_at")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(c, m)| Some((c, m.parse().ok()?)))
            .collect())
    }

    pub async fn voucher(&self, code: &str) -> Result<Option<Voucher>> {
        let row: Option<VoucherRow> = sqlx::query_as(
            "SELECT code, plan_id, valid_secs, devices, sponsor_id, created_at, first_used_at FROM vouchers WHERE code = $1",
        )
        .bind(normalise_voucher_code(code))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(voucher_from_row))
    }

    /// Creates an operator account; returns the one-time password.
    pub async fn add_admin(
        &self,
        email: &str,
        role: Role,
        actor: &Actor,
    ) -> Result<(Admin, String)> {
        let email = crate::model::validate_email(email)
            .map_err(StoreError::Invalid)?
            .to_lowercase();
        let password = generate_admin_password();
        let hash = hash_login_password(&password);
        let now = now_secs();
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO admins (email, role, password_hash, must_change_password, created_at) VALUES ($1, $2, $3, 1, $4) RETURNING id",
        )
        .bind(&email)
        .bind(role.as_str())
        .bind(hash)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(dup(format!("operator {email}")))?;
        self.finish(
            tx,
            actor,
            Audit::new("admin.add", "admin", &email).after(format!("role={}", role.as_str())),
        )
        .await?;
        Ok((
            Admin {
                id,
                email,
                role,
                created_at: ts(now),
            },
            password,
        ))
    }

    /// Resolves what an operator typed: Wi-Fi username, email, member id, MAC or voucher code.
    pub async fn resolve(&self, user: &str) -> Result<Resolved> {
        if let Some(m) = self.find_member(user).await? {
            return Ok(Resolved::Member(m));
        }
        if let Ok(mac) = user.parse::<MacAddr>() {
            if let Some(device) = self.device(mac).await? {
                let owner = match &device.member_id {
                    Some(id) => self.find_member(id).await?,
                    None => None,
                };
                return Ok(Resolved::Device { device, owner });
            }
        }
        if let Some(v) = self.voucher(user).await? {
            return Ok(Resolved::Voucher(v));
        }
        Err(StoreError::NotFound(format!(
            "no member, device or voucher matches {:?} (tried Wi-Fi username, email, id, MAC and voucher code)",
            user.trim()
        )))
    }
}
