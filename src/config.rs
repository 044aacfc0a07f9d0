//! The TOML configuration file (SPEC §8). Every key is documented in
//! deploy/frontdesk.example.toml; unknown keys are rejected with their full path.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct Config {
    pub mode: Mode,
    /// Where the default SQLite database and key file live (systemd: $STATE_DIRECTORY).
    pub state_dir: Option<PathBuf>,
    /// The site this appliance serves when several share one database (multi-site);
    /// default: the first. FRONTDESK_SITE overrides.
    pub site: Option<String>,
    pub database: DatabaseConfig,
    pub secrets: SecretsConfig,
    pub radius: RadiusConfig,
    pub eap: EapConfig,
    pub http: HttpConfig,
    pub portal: PortalConfig,
    pub dns: DnsConfig,
    pub gateway: GatewayConfig,
    pub mail: MailConfig,
    pub log: LogConfig,
    pub backup: BackupConfig,
}

/// Nightly backups by `serve` (SQLite; PostgreSQL installs use pg_dump).
#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct BackupConfig {
    pub enabled: bool,
    /// Default: `<state_dir>/backups`.
    pub dir: Option<PathBuf>,
    /// Time of day in the site's time zone, "HH:MM".
    pub at: String,
    /// How many backups to keep (older ones are removed).
    pub keep: usize,
    /// Seal the backups with this passphrase (a file); without it they hold the secrets key
    /// in the clear (mode 0600).
    pub passphrase_file: Option<PathBuf>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            enabled: true,
            dir: None,
            at: "03:30".into(),
            keep: 14,
            passphrase_file: None,
        }
    }
}

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    RadiusOnly,
    Gateway,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct DatabaseConfig {
    pub url: Option<String>,
    /// A file holding the URL (it may carry a password).
    pub url_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, Clone)]
#[serde(default)]
pub struct SecretsConfig {
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceLimitAction {
    Reject,
    #[default]
    DisconnectOldest,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct RadiusConfig {
    pub auth_listen: String,
    pub acct_listen: String,
    /// Upper bound for Session-Timeout, humantime (e.g. "12h").
    pub max_session: String,
    pub device_limit_action: DeviceLimitAction,
    /// Put the human reason into Access-Reject's Reply-Message (default: no reason leaks).
    pub reject_reply_message: bool,
    /// Requests per second accepted from one NAS (token bucket, burst of 2 s); 0 = no limit.
    pub nas_rate_limit: u32,
}

impl Default for RadiusConfig {
    fn default() -> Self {
        RadiusConfig {
            auth_listen: "[::]:1812".into(),
            acct_listen: "[::]:1813".into(),
            max_session: "12h".into(),
            device_limit_action: DeviceLimitAction::default(),
            reject_reply_message: false,
            nas_rate_limit: 20_000,
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct EapConfig {
    pub server_name: Option<String>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub fragment_size: u16,
    pub peap_tls13: bool,
    pub ttls_tls13: bool,
}

impl Default for EapConfig {
    fn default() -> Self {
        EapConfig {
            server_name: None,
            cert_file: None,
            key_file: None,
            ca_file: None,
            fragment_size: 1020,
            peap_tls13: false,
            ttls_tls13: false,
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct HttpConfig {
    pub listen: String,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Serve plain HTTP on a network address anyway (a TLS-terminating proxy in front).
    /// Default false: without a certificate, a network address gets HTTPS with a certificate
    /// from Frontdesk's CA.
    pub plain_http: bool,
    /// The address members and operators use for the console, e.g.
    /// `https://frontdesk.example.com`: sign-in links by mail point here. Default: the
    /// listen address.
    pub public_url: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            tls_cert_file: None,
            tls_key_file: None,
            plain_http: false,
            public_url: None,
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct PortalConfig {
    pub listen: String,
    pub public_url: Option<String>,
    /// The plan whose Wi-Fi window says when the guest network is open ("closed now" page).
    pub guest_plan: String,
    /// HTTPS listener, used when tls_cert_file and tls_key_file are set.
    pub tls_listen: String,
    /// Acceptable-use text shown before login (paragraphs separated by blank lines).
    pub aup_file: Option<PathBuf>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            listen: "[::]:8081".into(),
            public_url: None,
            guest_plan: "guest".into(),
            tls_listen: "[::]:8443".into(),
            aup_file: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct DnsConfig {
    pub listen: Option<String>,
    pub upstreams: Vec<String>,
    /// Policy for clients that map to no plan (default: the guest plan's).
    pub default_policy: Option<String>,
    /// Blocked names answer with these addresses (the block page); without them, NXDOMAIN.
    pub block_v4: Option<std::net::Ipv4Addr>,
    pub block_v6: Option<std::net::Ipv6Addr>,
    /// Answer blocked names with NXDOMAIN even when a block page address is set.
    pub nxdomain: bool,
    /// Client subnet → plan ("10.0.30.0/24" = "guest"): the VLAN of each tier. Clients with a
    /// RADIUS session reporting their address are mapped to their member's plan first.
    pub subnets: BTreeMap<String, String>,
    /// Plans that opted out of filtering.
    pub unfiltered: Vec<String>,
    /// Query log: "all" answered queries, only "blocked" ones, or "off".
    pub log: DnsLogMode,
    /// Plans whose members' queries are logged only when blocked (privacy).
    pub log_blocked_only: Vec<String>,
    /// Days query-log lines are kept.
    pub log_days: u32,
    /// CA certificates (PEM) DNS-over-TLS upstreams are checked against; default: the
    /// system's roots.
    pub tls_ca: Option<String>,
    /// DNSSEC validation: "allow-downgrade" (validate while the upstreams carry DNSSEC),
    /// "strict" (always; unprovable answers are SERVFAIL) or "off".
    pub dnssec: String,
    /// Trust anchors (DNSKEY records, zone-file form) instead of the built-in root keys.
    pub trust_anchor: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DnsLogMode {
    All,
    Blocked,
    Off,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            listen: None,
            upstreams: Vec::new(),
            default_policy: None,
            block_v4: None,
            block_v6: None,
            nxdomain: false,
            subnets: BTreeMap::new(),
            unfiltered: Vec::new(),
            log: DnsLogMode::All,
            log_blocked_only: Vec::new(),
            log_days: 7,
            tls_ca: None,
            dnssec: "allow-downgrade".into(),
            trust_anchor: None,
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct GatewayConfig {
    pub wan_interface: Option<String>,
    /// Tier (plan or team name) → VLAN interface, e.g. guest = "vlan30".
    pub interfaces: BTreeMap<String, String>,
    /// Tiers behind the captive portal.
    pub portal_networks: Vec<String>,
    /// Tiers that only reach `iot_allow`.
    pub iot_networks: Vec<String>,
    /// What IoT networks may reach: "ADDRESS[/PREFIX] [tcp|udp PORT]".
    pub iot_allow: Vec<String>,
    /// Pre-login DNS queries per second per client.
    pub dns_rate: u32,
    /// Masquerade IPv4 leaving through the WAN interface.
    pub masquerade: bool,
    /// Tier → hours it is switched on ("opening-hours" or e.g. "mon-fri 08:00-19:00"); the
    /// scheduler switches the whole network off outside them. Tiers not listed are always on.
    pub hours: BTreeMap<String, String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            wan_interface: None,
            interfaces: BTreeMap::new(),
            portal_networks: vec!["guest".into(), "day-pass".into()],
            iot_networks: vec!["iot".into()],
            iot_allow: Vec::new(),
            dns_rate: 20,
            masquerade: true,
            hours: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct MailConfig {
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub from: Option<String>,
    pub starttls: bool,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_host: None,
            smtp_port: 587,
            username: None,
            password: None,
            password_file: None,
            from: None,
            starttls: true,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(default)]
pub struct LogConfig {
    /// tracing filter, e.g. "info" or "info,frontdesk_radius=debug"; RUST_LOG overrides.
    pub level: String,
    pub format: LogFormat,
}

impl HttpConfig {
    /// Whether the console on `addr` speaks HTTPS: with a configured certificate, or by
    /// default on a network address unless `plain_http`.
    pub fn serves_https(&self, addr: &std::net::SocketAddr) -> bool {
        self.tls_cert_file.is_some() || (!addr.ip().is_loopback() && !self.plain_http)
    }

    /// Where people reach the console: `public_url`, else the listen address with the scheme
    /// it is served with.
    pub fn console_url(&self) -> String {
        if let Some(u) = &self.public_url {
            return u.trim_end_matches('/').to_string();
        }
        let https = self
            .listen
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| self.serves_https(&a));
        format!("{}://{}", if https { "https" } else { "http" }, self.listen)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Config {
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        let mut unknown = Vec::new();
        let de = toml::Deserializer::new(text);
        let config: Config = serde_ignored::deserialize(de, |path| unknown.push(path.to_string()))
            .map_err(|e| anyhow::anyhow!("{origin}: {}", one_line(&e.to_string())))?;
        if let Some(first) = unknown.first() {
            bail!(
                "{origin}: unknown key {first}{} (see deploy/frontdesk.example.toml)",
                if unknown.len() > 1 {
                    format!(
                        " (and {} more: {})",
                        unknown.len() - 1,
                        unknown[1..].join(", ")
                    )
                } else {
                    String::new()
                }
            );
        }
        config.validate(origin)?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Config::parse(&text, &path.display().to_string())
    }

    fn validate(&self, origin: &str) -> Result<()> {
        humantime::parse_duration(&self.radius.max_session)
            .map_err(|e| anyhow::anyhow!("{origin}: radius.max_session: {e} (e.g. \"12h\")"))?;
        if self.database.url.is_some() && self.database.url_file.is_some() {
            bail!("{origin}: give database.url or database.url_file, not both");
        }
        if self.mail.password.is_some() && self.mail.password_file.is_some() {
            bail!("{origin}: give mail.password or mail.password_file, not both");
        }
        if self.portal.tls_cert_file.is_some() != self.portal.tls_key_file.is_some() {
            bail!("{origin}: give both portal.tls_cert_file and portal.tls_key_file, or neither");
        }
        if !(256..=4000).contains(&self.eap.fragment_size) {
            bail!("{origin}: eap.fragment_size must be between 256 and 4000");
        }
        Ok(())
    }

    pub fn backup_dir(&self) -> PathBuf {
        self.backup
            .dir
            .clone()
            .unwrap_or_else(|| self.state_dir().join("backups"))
    }

    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The configured database URL, if any (`url` or the contents of `url_file`).
    pub fn database_url(&self) -> Result<Option<String>> {
        if let Some(f) = &self.database.url_file {
            let url = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read database.url_file {}", f.display()))?;
            return Ok(Some(url.trim().to_string()));
        }
        Ok(self.database.url.clone())
    }
}

/// toml errors span several lines (with a source excerpt); the CLI prints errors as one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_documents_every_section() {
        let text = include_str!("../deploy/frontdesk.example.toml");
        let c = Config::parse(text, "example").unwrap();
        assert_eq!(c.mode, Mode::RadiusOnly);
        assert_eq!(c.radius.auth_listen, "[::]:1812");
        for section in [
            "[database]",
            "[secrets]",
            "[radius]",
            "[eap]",
            "[http]",
            "[portal]",
            "[dns]",
            "[gateway]",
            "[mail]",
            "[log]",
        ] {
            assert!(text.contains(section), "example lacks {section}");
        }
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let err = Config::parse("[radius]\nmax_sesion = \"1h\"\n", "f.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.toml: unknown key radius.max_sesion (see deploy/frontdesk.example.toml)"
        );
        let err = Config::parse(
            "[gateway.interfaces]\nguest = \"vlan30\"\n[gatway]\n",
            "f.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown key gatway"), "{err}");
        let err = Config::parse("mode = \"router\"\n", "f.toml").unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
        let err = Config::parse("[radius]\nmax_session = \"soon\"\n", "f.toml").unwrap_err();
        assert!(err.to_string().contains("radius.max_session"), "{err}");
    }

    #[test]
    fn empty_config_is_all_defaults() {
        let c = Config::parse("", "empty").unwrap();
        assert_eq!(c.http.listen, "127.0.0.1:8080");
        assert_eq!(c.portal.listen, "[::]:8081");
        assert_eq!(c.eap.fragment_size, 1020);
    }
}
