//! The command line (SPEC §7). Scripts depend on these names: change them only with the SPEC.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "frontdesk",
    version,
    about = "Wi-Fi, portal, firewall and doors for coworking spaces, from one membership source"
)]
pub struct Cli {
    /// Configuration file (TOML; see deploy/frontdesk.example.toml).
    #[arg(long, global = true, env = "FRONTDESK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite:PATH or postgres://… (overrides the config file).
    #[arg(long, global = true, env = "FRONTDESK_DATABASE_URL")]
    pub database: Option<String>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the database with a site, default plans and opening hours.
    Init {
        #[arg(long)]
        site: String,
        /// IANA time zone, e.g. Europe/Berlin.
        #[arg(long)]
        timezone: String,
    },
    /// Run the services (RADIUS, console, portal, scheduler, sync).
    Serve(ServeArgs),
    /// Opening hours and closures.
    #[command(subcommand)]
    Site(SiteCommand),
    #[command(subcommand)]
    Team(TeamCommand),
    #[command(subcommand)]
    Plan(PlanCommand),
    #[command(subcommand)]
    Member(MemberCommand),
    /// MAC-authenticated devices (printers, TVs, IoT).
    #[command(subcommand)]
    Device(DeviceCommand),
    /// RADIUS clients (access points, switches, controllers).
    #[command(subcommand)]
    Nas(NasCommand),
    #[command(subcommand)]
    Voucher(VoucherCommand),
    /// Show the decision for a user, device or voucher at an instant.
    Explain {
        /// Wi-Fi username, email, member id, MAC or voucher code.
        #[arg(long)]
        user: String,
        /// RFC 3339 instant, or local time in the site zone (2026-11-27T10:00). Default: now.
        #[arg(long)]
        at: Option<String>,
        /// wifi, wifi:SSID or door:GROUP.
        #[arg(long, default_value = "wifi")]
        resource: String,
    },
    /// Operator accounts for the console.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// JSON API bearer tokens (/api/v1).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Membership webhooks from a billing system (POST /api/v1/webhooks/membership).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Door-access systems (Kisi, generic webhook; UniFi Access and Salto KS follow) and
    /// which plans open which door groups there.
    #[command(subcommand)]
    Door(DoorCommand),
    /// Private Wi-Fi passphrases (identity PSK) for members and teams.
    #[command(subcommand)]
    Passphrase(PassphraseCommand),
    /// Wi-Fi controllers (radius-only mode): the external captive portal authorizes and
    /// kicks guests through their API.
    #[command(subcommand)]
    Controller(ControllerCommand),
    /// Mirror entitlements into the door systems now, or show how the sync stands.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Protective DNS: blocklists per plan, exceptions, what a name resolves to for a plan.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Write a backup file (database + secrets key), mode 0600.
    Backup {
        path: PathBuf,
        /// Encrypt the backup with the passphrase in this file.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Replace an existing file at PATH.
        #[arg(long)]
        force: bool,
    },
    /// Restore a backup into the configured database location.
    Restore {
        path: PathBuf,
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Replace an existing database and key file.
        #[arg(long)]
        force: bool,
    },
    /// RADIUS sessions from accounting, newest first.
    Sessions {
        /// Only sessions without a Stop that were updated recently.
        #[arg(long)]
        online: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Certificates for WPA2/WPA3-Enterprise (802.1X).
    #[command(subcommand)]
    Cert(CertCommand),
    /// Gateway mode: the nftables ruleset Frontdesk owns (table inet frontdesk).
    #[command(subcommand)]
    Firewall(FirewallCommand),
    /// The audit log, newest first.
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum FirewallCommand {
    /// Print the ruleset rendered from the configuration and current state (`nft -f` input).
    Show,
    /// Replace the table atomically; authorized portal clients keep their remaining time.
    Apply,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ProfileEap {
    /// PEAP-MSCHAPv2 with the member's Wi-Fi username; the device asks for the password.
    Peap,
    /// EAP-TLS with a client certificate in the profile.
    Tls,
}

#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// A client certificate for EAP-TLS, as a PKCS#12 file phones and laptops import.
    Issue {
        /// Member id or email.
        #[arg(long)]
        member: String,
        /// Where to write the .p12 file (mode 0600; an existing file is not replaced).
        #[arg(long)]
        out: PathBuf,
        /// The PKCS#12 password, read from this file; default: a generated one, printed.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: i64,
    },
    /// An Apple configuration profile (.mobileconfig) for iPhone, iPad and Mac: the CA, the
    /// network and its EAP settings; with --eap tls also a new client certificate.
    Profile {
        /// Member id or email.
        #[arg(long)]
        member: String,
        /// The network's name.
        #[arg(long)]
        ssid: String,
        /// Where to write the profile (mode 0600; an existing file is not replaced).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value_t = ProfileEap::Peap)]
        eap: ProfileEap,
        /// With --eap tls: the PKCS#12 password, read from this file; default: generated, printed.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// With --eap tls: certificate validity in days.
        #[arg(long, default_value_t = 825)]
        days: i64,
    },
    /// The server name and CA fingerprint members' devices must check.
    Show {
        /// Print the CA certificate (PEM) to install on devices instead.
        #[arg(long)]
        ca_pem: bool,
    },
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Throwaway database with a demo site, members and a NAS for localhost (secret testing123).
    #[arg(long)]
    pub demo: bool,
    #[arg(long, value_name = "ADDR")]
    pub radius_auth: Option<String>,
    #[arg(long, value_name = "ADDR")]
    pub radius_acct: Option<String>,
    /// Console, API and metrics listener.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Captive portal listener.
    #[arg(long, value_name = "ADDR")]
    pub portal: Option<String>,
    /// Protective DNS listener (UDP and TCP), e.g. 10.0.30.1:53.
    #[arg(long, value_name = "ADDR")]
    pub dns: Option<String>,
    /// Upstream resolver (repeatable): ADDR[:PORT], or tls://ADDR[:PORT]#NAME for DNS over TLS.
    #[arg(long, value_name = "ADDR")]
    pub dns_upstream: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum SiteCommand {
    /// Set opening hours: --days mon-fri --open 08:00 --close 19:00, or --days sat,sun --closed.
    Hours {
        #[arg(long)]
        days: String,
        #[arg(long, required_unless_present = "closed")]
        open: Option<String>,
        #[arg(long, required_unless_present = "closed")]
        close: Option<String>,
        #[arg(long, conflicts_with_all = ["open", "close"])]
        closed: bool,
    },
    /// Closures (holidays, events).
    #[command(subcommand)]
    Closure(ClosureCommand),
    /// Site, time zone, opening hours and closures.
    Show,
    /// Another site in a shared PostgreSQL database (multi-site): its own time zone and
    /// opening hours; members, plans, NAS clients and doors are shared. Each appliance names
    /// its site with `site = "…"` in its configuration (or FRONTDESK_SITE).
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        timezone: String,
    },
    /// The sites in this database.
    List,
}

#[derive(Subcommand, Debug)]
pub enum ClosureCommand {
    Add {
        /// First closed day, YYYY-MM-DD (local).
        #[arg(long)]
        from: String,
        /// Last closed day (inclusive); default: --from.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
        /// Also cut 24/7 and custom windows (building shut), not only opening hours.
        #[arg(long)]
        all: bool,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum TeamCommand {
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        vlan: i64,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    List,
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        vlan: Option<i64>,
        /// always | opening-hours | "mon-fri 18:00-02:00; sat 10:00-16:00"
        #[arg(long, default_value = "opening-hours")]
        wifi: String,
        /// Default: the Wi-Fi window.
        #[arg(long)]
        door: Option<String>,
        /// Simultaneous devices (default: unlimited).
        #[arg(long)]
        devices: Option<u32>,
        /// Door groups, comma-separated.
        #[arg(long, value_delimiter = ',')]
        door_groups: Vec<String>,
        /// Restrict to these SSIDs, comma-separated.
        #[arg(long, value_delimiter = ',')]
        ssids: Vec<String>,
        /// Only MAC-authenticated devices.
        #[arg(long)]
        mac_only: bool,
        /// Assignments without --until last this many days.
        #[arg(long)]
        validity_days: Option<u32>,
    },
}

#[derive(Subcommand, Debug)]
pub enum MemberCommand {
    /// Add a member; prints the generated Wi-Fi username and password.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        plan: String,
        #[arg(long)]
        team: Option<String>,
        /// First day (YYYY-MM-DD, local); default today.
        #[arg(long)]
        from: Option<String>,
        /// Last day, inclusive (YYYY-MM-DD, local).
        #[arg(long)]
        until: Option<String>,
        /// Wi-Fi username (default: the lowercased email).
        #[arg(long)]
        wifi_username: Option<String>,
    },
    /// Bulk create/update from CSV (name,email,plan[,team,valid_until,wifi_username,wifi_password]).
    Import {
        #[arg(long)]
        csv: PathBuf,
    },
    /// Write members as CSV (same columns).
    Export {
        #[arg(long)]
        csv: PathBuf,
        /// Include Wi-Fi passwords in clear.
        #[arg(long)]
        with_secrets: bool,
    },
    List {
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        team: Option<String>,
        /// Substring of name, email or Wi-Fi username.
        #[arg(long)]
        search: Option<String>,
    },
    Show {
        id: String,
    },
    Suspend {
        id: String,
    },
    Resume {
        id: String,
    },
    Cancel {
        id: String,
    },
    /// Move to another plan from today.
    SetPlan {
        id: String,
        plan: String,
        #[arg(long)]
        until: Option<String>,
    },
    /// New Wi-Fi password; prints it.
    RotatePassword {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    Add {
        /// Owner (id or email); omit for devices of the space itself.
        #[arg(long)]
        member: Option<String>,
        #[arg(long)]
        mac: String,
        #[arg(long, default_value = "iot")]
        plan: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum NasCommand {
    Add {
        #[arg(long)]
        name: String,
        /// Address or CIDR the requests come from.
        #[arg(long)]
        address: String,
        #[arg(
            long,
            conflicts_with = "secret_file",
            required_unless_present = "secret_file"
        )]
        secret: Option<String>,
        #[arg(long)]
        secret_file: Option<PathBuf>,
        #[arg(long, default_value = "generic")]
        vendor: String,
        #[arg(long)]
        disconnect_port: Option<u16>,
        #[arg(long)]
        coa_port: Option<u16>,
        /// Accept requests without Message-Authenticator (old gear; BlastRADIUS risk).
        #[arg(long)]
        no_require_message_authenticator: bool,
    },
    List,
    Remove {
        name: String,
    },
    /// What a NAS sends: last heard, signing, attributes, drops, and its profile's facts.
    Test {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum VoucherCommand {
    Create {
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Validity from first use (humantime: 8h, 1d, 90min).
        #[arg(long, default_value = "8h")]
        valid: String,
        #[arg(long, default_value_t = 1)]
        devices: u32,
        #[arg(long, default_value = "guest")]
        plan: String,
        /// Member who invites (id or email).
        #[arg(long)]
        sponsor: Option<String>,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum PassphraseCommand {
    /// Issue a generated passphrase for a member, a team, or a plan (a shared "join"
    /// passphrase for devices nobody has bound) on a PPSK SSID; prints it and the `WIFI:`
    /// string phones join with from a QR code.
    Issue {
        /// Member id or email.
        #[arg(long, conflicts_with_all = ["team", "plan"], required_unless_present_any = ["team", "plan"])]
        member: Option<String>,
        /// Team name.
        #[arg(long, conflicts_with = "plan")]
        team: Option<String>,
        /// Plan name: the SSID's join passphrase (lands unbound devices on that plan's VLAN).
        #[arg(long)]
        plan: Option<String>,
        /// The SSID that carries private passphrases.
        #[arg(long)]
        ssid: String,
        /// Last day it works (site's local date); default: as long as the owner has Wi-Fi.
        #[arg(long)]
        until: Option<String>,
        /// Devices that may use it; default: no limit beyond the plan's.
        #[arg(long)]
        devices: Option<u32>,
    },
    /// Passphrases in force (`--all`: revoked ones too), without the secrets (`show ID` has
    /// the secret and its QR string).
    List {
        #[arg(long)]
        all: bool,
    },
    /// One passphrase with its secret, the `WIFI:` QR string and the devices seen with it.
    Show { id: i64 },
    /// Bind a device (MAC) to a passphrase before it first joins: MAC-bound access points
    /// are then answered with this passphrase for it.
    Bind { id: i64, mac: String },
    /// Forget a device learned with a passphrase (frees a place under --devices).
    Unbind { id: i64, mac: String },
    /// Revoke a passphrase by its number: its devices are disconnected.
    Revoke { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum DnsCommand {
    /// Blocklists (hosts files, domain lists, AdBlock `||domain^` lists).
    #[command(subcommand)]
    Blocklist(BlocklistCommand),
    /// Exception requests from the block page (`--all`: decided ones too).
    Requests {
        #[arg(long)]
        all: bool,
    },
    /// Let a domain (and everything under it) through: for everyone, a plan or a member.
    Allow {
        domain: String,
        #[arg(long, conflicts_with = "member")]
        plan: Option<String>,
        /// Member id or email.
        #[arg(long)]
        member: Option<String>,
        /// Last day it holds (site's local date).
        #[arg(long)]
        until: Option<String>,
    },
    /// Approve a pending request (for the requester, or --plan / --everyone), or --deny it.
    Approve {
        id: i64,
        #[arg(long, conflicts_with_all = ["everyone", "deny"])]
        plan: Option<String>,
        #[arg(long, conflicts_with = "deny")]
        everyone: bool,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        deny: bool,
    },
    /// The query log, newest first ([dns] log, log_blocked_only, log_days).
    Log {
        /// Member id or email.
        #[arg(long)]
        member: Option<String>,
        /// Client address.
        #[arg(long)]
        client: Option<String>,
        /// Blocked queries only.
        #[arg(long)]
        blocked: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// What a name gets for a plan (default: the policy for unmapped clients).
    Test {
        name: String,
        #[arg(long)]
        plan: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum BlocklistCommand {
    /// Add a list from a file (read now and at every reload) or an http(s) URL.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        source: String,
        /// Plans it applies to: P1,P2 or all (default).
        #[arg(long, default_value = "all")]
        plans: String,
    },
    /// Lists with their source, plans and how many domains they hold.
    List,
    Remove {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ControllerCommand {
    /// Add a controller. Its password (with --username) or API key (UniFi OS, without
    /// --username) is read from a file.
    Add {
        #[arg(long)]
        name: String,
        /// unifi | omada | meraki (click-through: no API access needed)
        #[arg(long)]
        kind: String,
        /// Controller address: https://unifi.example:8443 (classic) or https://192.168.1.1
        /// (UniFi OS console).
        #[arg(long)]
        url: String,
        /// Site id used by `controller test` (redirects always name their own site).
        #[arg(long)]
        site: Option<String>,
        /// A local controller account allowed to authorize guests.
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// Controllers with their last success and last error.
    List,
    /// Log in and list connected clients: says plainly what works and what does not.
    Test {
        name: String,
    },
    Remove {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum DoorCommand {
    /// Add a door-access system. The API key / token / webhook secret is read from a file.
    Add {
        #[arg(long)]
        name: String,
        /// kisi | unifi-access | salto-ks | webhook
        #[arg(long)]
        kind: String,
        /// API base URL (Kisi: https://api.kisi.io), or the webhook's URL.
        #[arg(long)]
        url: String,
        /// File holding the API key (Kisi), token, or the webhook signing secret.
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// Let a plan open a door group in a backend, with its own window (default: the plan's
    /// door window). E.g. full-time: "After-hours door" always, "Studio" opening-hours.
    Map {
        #[arg(long)]
        backend: String,
        #[arg(long)]
        plan: String,
        #[arg(long)]
        group: String,
        /// always | opening-hours | plan | a weekly window ("mon-fri 07:00-22:00").
        #[arg(long, default_value = "plan")]
        window: String,
    },
    /// Stop a plan opening a door group; the next sync revokes what the map granted.
    Unmap {
        #[arg(long)]
        backend: String,
        #[arg(long)]
        plan: String,
        #[arg(long)]
        group: String,
    },
    /// Remove a backend (refused while plans are mapped to it, unless --force).
    Remove {
        name: String,
        /// Remove even with maps: the grants Frontdesk made stay in the door system.
        #[arg(long)]
        force: bool,
    },
    /// Accept the door system's own webhooks (unlocks, doors held open or forced) at
    /// /api/v1/webhooks/doors/NAME, verified with this secret: generated and shown once, or
    /// the one the door system gave (UniFi Access makes its own) from --secret-file.
    EventsSecret {
        #[arg(long)]
        backend: String,
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// Recent door events (unlocks, refusals, doors held open or forced).
    Events {
        /// How far back, e.g. 24h, 7d.
        #[arg(long, default_value = "24h")]
        since: humantime::Duration,
    },
    /// Backends and their maps.
    List,
}

#[derive(Subcommand, Debug)]
pub enum SyncCommand {
    /// Reconcile now (every member; or one backend), with progress.
    Run {
        #[arg(long)]
        backend: Option<String>,
        /// Only these members (id or email), retried even if quarantined.
        #[arg(long)]
        member: Vec<String>,
    },
    /// Last run, failing and quarantined members per backend.
    Status,
    /// Retry a backend's quarantined members on the next run (after fixing the cause).
    Release {
        #[arg(long)]
        backend: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token; prints it once (only its hash is kept).
    Create {
        /// What uses it, e.g. "billing sync".
        #[arg(long)]
        name: String,
        /// Comma-separated: members:read, members:write, secrets:read, plans:read,
        /// vouchers:read, vouchers:write, sessions:read, sessions:write, explain:read; or all.
        #[arg(long)]
        scopes: String,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token by id; it stops working at once.
    Revoke { id: i64 },
}

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Show the shared secret the sender signs with, creating it the first time.
    Secret {
        /// Replace it (the sender must be given the new one).
        #[arg(long)]
        rotate: bool,
    },
    /// Print the Frontdesk-Signature header for a body file (to try the endpoint by hand).
    Sign { body: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an operator account; prints a one-time password.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "manager")]
        role: String,
    },
}
