//! A JSON client for door-system APIs: a token bucket at the vendor's documented rate, a
//! timeout on every request, 429 answered by waiting `Retry-After`, 5xx and lost
//! connections retried a few times with backoff. Secrets go in headers, never in logs.

use crate::backend::SyncError;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Method;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::{debug, warn};

/// Requests per second, with a burst of one second's worth. Urgent takers (a member's
/// revocation) go before normal ones (a full reconcile) that wait at the same time.
pub struct TokenBucket {
    rate: f64,
    state: Mutex<(f64, Instant)>,
    urgent_waiting: std::sync::atomic::AtomicUsize,
}

impl TokenBucket {
    pub fn new(per_second: f64) -> TokenBucket {
        TokenBucket {
            rate: per_second,
            state: Mutex::new((per_second, Instant::now())),
            urgent_waiting: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Waits for a token.
    pub async fn take(&self) {
        self.take_as(false).await
    }

    /// Waits for a token; `urgent` ones are served first.
    pub async fn take_as(&self, urgent: bool) {
        if urgent {
            self.urgent_waiting.fetch_add(1, Ordering::SeqCst);
        }
        loop {
            if !urgent && self.urgent_waiting.load(Ordering::SeqCst) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
                s.0 = (s.0 + refill).min(self.rate.max(1.0));
                if s.0 < 0.0 && !urgent {
                    // Pay back what an urgent taker borrowed.
                    let wait = Duration::from_secs_f64((1.0 - s.0) / self.rate);
                    drop(s);
                    tokio::time::sleep(wait).await;
                    continue;
                }
                s.1 = now;
                // Urgent takers may borrow one token: we run under the vendor's limit, so
                // a revocation does not wait behind a drained bucket.
                let floor = if urgent { 0.0 } else { 1.0 };
                if s.0 >= floor {
                    s.0 -= 1.0;
                    if urgent {
                        self.urgent_waiting.fetch_sub(1, Ordering::SeqCst);
                    }
                    return;
                }
                Duration::from_secs_f64((1.0 - s.0) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// One bucket per API (base URL and credentials) in the process: a member's run and a full
/// run against the same account share the vendor's limit instead of each assuming all of it.
fn shared_bucket(key: &str, per_second: f64) -> std::sync::Arc<TokenBucket> {
    use sha2::Digest;
    static BUCKETS: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<TokenBucket>>>,
    > = std::sync::OnceLock::new();
    // Keyed by a hash: the credentials are not kept in the map.
    let id = format!(
        "{per_second}:{}",
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    );
    BUCKETS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(id)
        .or_insert_with(|| std::sync::Arc::new(TokenBucket::new(per_second)))
        .clone()
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    /// Swapped when an OAuth2 token is renewed.
    headers: std::sync::RwLock<HeaderMap>,
    bucket: std::sync::Arc<TokenBucket>,
    requests: AtomicU64,
    /// Attempts per request for 429, 5xx and transport errors.
    attempts: u32,
    /// A member's run: its requests go before a full run's.
    urgent: std::sync::atomic::AtomicBool,
}

/// Longest `Retry-After` honoured; beyond, the item fails and backs off instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

impl Client {
    pub fn new(
        base: &str,
        auth: HeaderValue,
        per_second: f64,
        timeout: Duration,
    ) -> Result<Client, SyncError> {
        let mut headers = HeaderMap::new();
        let bucket = shared_bucket(
            &format!("{base} {}", String::from_utf8_lossy(auth.as_bytes())),
            per_second,
        );
        let mut auth = auth;
        auth.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, auth);
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("frontdesk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SyncError::Transport(e.to_string()))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            headers: std::sync::RwLock::new(headers),
            bucket,
            requests: AtomicU64::new(0),
            attempts: 5,
            urgent: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Replaces the `Authorization` header (a renewed OAuth2 access token).
    pub fn set_auth(&self, mut auth: HeaderValue) {
        auth.set_sensitive(true);
        self.headers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reqwest::header::AUTHORIZATION, auth);
    }

    /// Marks this client's requests as urgent (a member change) or not (a full run).
    pub fn set_urgent(&self, urgent: bool) {
        self.urgent.store(urgent, Ordering::Relaxed);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Counts a request made outside `send` (the webhook's own POST).
    pub fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// One request; the answer's headers and JSON body (`Null` when empty).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(HeaderMap, Value), SyncError> {
        // A create whose answer was lost may have happened: sending it again could make a
        // second user or grant. It fails instead; the next attempt reads before creating.
        let retry_lost = method != Method::POST;
        self.exchange(method, path, retry_lost, |req| match body {
            Some(b) => req.json(b),
            None => req,
        })
        .await
    }

    /// A form POST that is safe to repeat (an OAuth2 token request).
    pub async fn post_form(&self, path: &str, form: &str) -> Result<Value, SyncError> {
        let form = form.to_string();
        let (_, v) = self
            .exchange(Method::POST, path, true, |req| {
                req.header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form.clone())
            })
            .await?;
        Ok(v)
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        retry_lost: bool,
        with_body: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<(HeaderMap, Value), SyncError> {
        let url = format!("{}{path}", self.base);
        let mut backoff = Duration::from_millis(200);
        let mut last = String::new();
        // 429s wait and do not use up attempts, within this much waiting in total.
        let mut rate_waited = Duration::ZERO;
        let mut attempt = 0;
        while attempt < self.attempts {
            attempt += 1;
            self.bucket
                .take_as(self.urgent.load(Ordering::Relaxed))
                .await;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut req = self.http.request(method.clone(), &url).headers(
                self.headers
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            );
            req = with_body(req);
            match req.send().await {
                Ok(res) => {
                    let status = res.status();
                    let headers = res.headers().clone();
                    if status.as_u16() == 429 {
                        let wait = headers
                            .get(reqwest::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().parse::<u64>().ok())
                            .map_or(Duration::from_secs(1), Duration::from_secs);
                        if wait > MAX_RETRY_AFTER {
                            return Err(SyncError::Http {
                                method: method.to_string(),
                                path: path.into(),
                                status: 429,
                                body: format!("rate limited for {} s", wait.as_secs()),
                            });
                        }
                        debug!(%path, wait_s = wait.as_secs(), "door sync: 429, waiting Retry-After");
                        tokio::time::sleep(wait).await;
                        last = "429 Too Many Requests".into();
                        rate_waited += wait;
                        if rate_waited <= MAX_RETRY_AFTER {
                            attempt -= 1;
                        }
                        continue;
                    }
                    let text = match res.text().await {
                        Ok(t) => t,
                        // The answer broke off: as good as no answer.
                        Err(e) => {
                            last = format!("answer broken off ({})", e.without_url());
                            if !retry_lost {
                                break;
                            }
                            warn!(%path, attempt, error = %last, "door sync: answer broken off, retrying");
                            tokio::time::sleep(backoff).await;
                            backoff *= 2;
                            continue;
                        }
                    };
                    if status.is_server_error() {
                        warn!(%path, status = status.as_u16(), attempt, "door sync: server error, retrying");
                        last = format!("HTTP {status}");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        continue;
                    }
                    if !status.is_success() {
                        return Err(SyncError::Http {
                            method: method.to_string(),
                            path: path.into(),
                            status: status.as_u16(),
                            body: text.chars().take(300).collect(),
                        });
                    }
                    let value = if text.trim().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(&text)
                            .map_err(|e| SyncError::Protocol(format!("{path}: {e}")))?
                    };
                    return Ok((headers, value));
                }
                Err(e) => {
                    last = if e.is_timeout() {
                        "timed out".into()
                    } else {
                        format!("no answer ({})", e.without_url())
                    };
                    if !retry_lost {
                        break;
                    }
                    warn!(%path, attempt, error = %last, "door sync: no answer, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
        Err(SyncError::Transport(if retry_lost {
            format!("{method} {path}: {last} after {attempt} attempts")
        } else {
            format!("{method} {path}: {last}; not sent again (it may have been done), the next attempt reads first")
        }))
    }
}

/// Percent-encodes a query parameter value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An id as a string, whether the system sends numbers or strings.
pub fn id_of(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_keeps_the_rate() {
        let b = TokenBucket::new(5.0);
        let t = Instant::now();
        for _ in 0..15 {
            b.take().await;
        }
        // 5 at once (the burst), then 10 more at 5 per second.
        let took = t.elapsed().as_secs_f64();
        assert!((1.9..2.1).contains(&took), "{took}");
    }
}
