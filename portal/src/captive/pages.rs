//! The portal's askama templates (portal/templates); HTML is escaped by default.

use askama::Template;
use askama_web::WebTemplate;

/// What every page's layout needs.
pub struct Page {
    pub site: String,
    pub title: String,
    /// Seconds until the page reloads itself (0: never).
    pub refresh: u32,
}

page!(WelcomeT, "welcome.html" { aup: Vec<String>, csrf: String });
page!(AupT, "aup.html" { aup: Vec<String> });
page!(LoginT, "login.html" { csrf: String, code: String, error: Option<String>, sponsors: bool, members: bool, https_url: Option<String> });
page!(StatusT, "status.html" { until: String, remaining: String, continue_url: Option<String> });
page!(ClosedT, "closed.html" { opens: Option<String> });
page!(DeviceLimitT, "device_limit.html" { devices: u32 });
page!(MessageT, "message.html" { is_error: bool, text: String, detail: Option<String> });
page!(BlockedT, "blocked.html" { host: String, list: String, domain: String, action: String, csrf: String });
page!(SponsorWaitT, "sponsor_wait.html" { heading: String, text: String, waiting: bool, failed: bool });
page!(SponsorApproveT, "sponsor_approve.html" { guest: String, asked: String, device: String, until: Option<String>, closed: Option<String>, csrf: String });
