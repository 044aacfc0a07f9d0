//! Headless Chromium through chromedriver, inside a network namespace (so the browser reaches
//! nothing but what the test serves there), and screenshots.

use super::netns::{connects, Netns};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub struct Driver {
    child: std::process::Child,
    pub profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn chromedriver(ns: &Netns, port: u16, nameserver: &str) -> Driver {
    // Name resolution inside the namespace goes to the router (which refuses it) instead of
    // the host's resolver: nothing leaves the namespaces.
    let etc = format!("/etc/netns/{}", ns.name);
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        format!("{etc}/resolv.conf"),
        format!("nameserver {nameserver}\n"),
    )
    .unwrap();
    let child = ns
        .command("chromedriver")
        .args([&format!("--port={port}"), "--allowed-ips=127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let probe = sa(&format!("127.0.0.1:{port}"));
    let up = ns.run(move || {
        let t = Instant::now();
        while connects(probe, Duration::from_millis(200)).is_err() {
            if t.elapsed() > Duration::from_secs(20) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    });
    assert!(up, "chromedriver did not listen on {probe}");
    Driver {
        child,
        profile: tempfile::tempdir().unwrap(),
    }
}

/// Headless Chromium (phone-sized, or a 1280×900 desktop), with background networking off.
pub async fn browser(port: u16, profile: &std::path::Path, desktop: bool) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "mobileEmulation": if desktop {
                serde_json::json!({"deviceMetrics": {"width": 1280, "height": 900, "pixelRatio": 1.0, "touch": false, "mobile": false}})
            } else {
                serde_json::json!({"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0, "touch": true, "mobile": true}})
            },
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-sync",
                "--disable-component-update", "--disable-default-apps", "--disable-extensions",
                "--dns-prefetch-disable", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session")
}

/// Runs `f` with a Chromium session inside `ns` (chromedriver on `port` there), then closes
/// the session and stops chromedriver.
pub fn in_browser<F, Fut>(ns: &Netns, port: u16, nameserver: &str, desktop: bool, f: F)
where
    F: FnOnce(fantoccini::Client) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = fantoccini::Client>,
{
    let driver = chromedriver(ns, port, nameserver);
    let profile = driver.profile.path().to_path_buf();
    ns.run(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let c = browser(port, &profile, desktop).await;
            let c = f(c).await;
            c.close().await.unwrap();
        })
    });
    drop(driver);
}

/// Screenshots go to docs/screenshots with UPDATE_SCREENSHOTS=1 (to commit), else to a
/// temporary directory (still taken and checked to be PNG).
pub fn shot_dir() -> std::path::PathBuf {
    if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
    } else {
        std::env::temp_dir().join(format!("frontdesk-shots-{}", std::process::id()))
    }
}

pub async fn shot(c: &fantoccini::Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name} is not a PNG");
    let dir = shot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// The page's text. A page that is still navigating (a form's redirect) can replace the body
/// between finding it and reading it: that read is tried again.
pub async fn body_text(c: &fantoccini::Client) -> String {
    let mut last = None;
    for _ in 0..20 {
        match c.find(fantoccini::Locator::Css("body")).await {
            Ok(body) => match body.text().await {
                Ok(t) => return t,
                Err(e) => last = Some(e),
            },
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no page text: {last:?}");
}

/// Types `value` into the element with id `id`.
pub async fn fill(c: &fantoccini::Client, id: &str, value: &str) {
    c.find(fantoccini::Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .send_keys(value)
        .await
        .unwrap_or_else(|e| panic!("typing into #{id}: {e}"));
}

/// Clicks the element with id `id`.
pub async fn click(c: &fantoccini::Client, id: &str) {
    c.find(fantoccini::Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking #{id}: {e}"));
}

/// Waits (up to 5 s) until the page's text contains `needle`; returns the text.
pub async fn wait_text(c: &fantoccini::Client, needle: &str) -> String {
    let mut text = String::new();
    for _ in 0..50 {
        text = body_text(c).await;
        if text.contains(needle) {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{needle:?} not on the page: {text}");
}
