//! Apple configuration profiles (.mobileconfig) for WPA2/WPA3-Enterprise: the CA as a root
//! payload, the Wi-Fi network with its EAP settings and trusted server name, and for EAP-TLS
//! the member's PKCS#12. Unsigned; iOS and macOS show "Unverified" and install it anyway.

use base64::Engine;

pub enum Eap<'a> {
    /// PEAP-MSCHAPv2: the device asks for the password.
    Peap,
    /// EAP-TLS with this PKCS#12 (its password is asked for at install).
    Tls { pkcs12: &'a [u8] },
}

pub struct Profile<'a> {
    pub site: &'a str,
    pub ssid: &'a str,
    pub username: &'a str,
    pub server_name: &'a str,
    pub ca_der: &'a [u8],
    pub eap: Eap<'a>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn data(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// The common keys of one payload.
fn header(kind: &str, id: &str, uuid: &str, name: &str) -> String {
    format!(
        "<key>PayloadType</key><string>{kind}</string>\
         <key>PayloadVersion</key><integer>1</integer>\
         <key>PayloadIdentifier</key><string>{}</string>\
         <key>PayloadUUID</key><string>{uuid}</string>\
         <key>PayloadDisplayName</key><string>{}</string>",
        esc(id),
        esc(name)
    )
}

pub fn render(p: &Profile<'_>) -> String {
    let base = "lan.frontdesk.wifi";
    let (ca_uuid, wifi_uuid, p12_uuid, top_uuid) = (uuid(), uuid(), uuid(), uuid());
    let mut payloads = vec![format!(
        "<dict>{}<key>PayloadContent</key><data>{}</data></dict>",
        header(
            "com.apple.security.root",
            &format!("{base}.ca"),
            &ca_uuid,
            &format!("{} Wi-Fi CA", p.site)
        ),
        data(p.ca_der)
    )];
    let (eap_type, identity_keys) = match &p.eap {
        Eap::Peap => (25, String::new()),
        Eap::Tls { pkcs12 } => {
            payloads.push(format!(
                "<dict>{}<key>PayloadContent</key><data>{}</data></dict>",
                header(
                    "com.apple.security.pkcs12",
                    &format!("{base}.identity"),
                    &p12_uuid,
                    p.username
                ),
                data(pkcs12)
            ));
            (
                13,
                format!("<key>PayloadCertificateUUID</key><string>{p12_uuid}</string>"),
            )
        }
    };
    payloads.push(format!(
        "<dict>{}\
         <key>SSID_STR</key><string>{}</string>\
         <key>HIDDEN_NETWORK</key><false/>\
         <key>AutoJoin</key><true/>\
         <key>EncryptionType</key><string>WPA2</string>\
         {identity_keys}\
         <key>EAPClientConfiguration</key><dict>\
         <key>AcceptEAPTypes</key><array><integer>{eap_type}</integer></array>\
         <key>UserName</key><string>{}</string>\
         <key>OuterIdentity</key><string>anonymous</string>\
         <key>TLSTrustedServerNames</key><array><string>{}</string></array>\
         <key>PayloadCertificateAnchorUUID</key><array><string>{ca_uuid}</string></array>\
         </dict></dict>",
        header(
            "com.apple.wifi.managed",
            &format!("{base}.network"),
            &wifi_uuid,
            p.ssid
        ),
        esc(p.ssid),
        esc(p.username),
        esc(p.server_name),
    ));
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\"><dict>{}\
         <key>PayloadContent</key><array>{}</array>\
         <key>PayloadDescription</key><string>{}</string>\
         </dict></plist>\n",
        header("Configuration", base, &top_uuid, &format!("{} Wi-Fi", p.site)),
        payloads.join(""),
        esc(&format!("Wi-Fi \"{}\" for {}", p.ssid, p.username)),
    )
}
