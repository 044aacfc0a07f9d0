//! Fault injection shared by the fake door APIs: each fake keeps a queue of faults, and this
//! layer answers the next requests with them before (or, for a lost answer, after) the
//! handler runs.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

/// What the next request meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// This status, nothing applied (429 carries `Retry-After: 1`).
    Status(u16),
    /// No answer for longer than the client's 10 s timeout, nothing applied.
    Slow,
    /// The connection breaks before an answer, nothing applied.
    Reset,
    /// The request is applied, then the connection breaks before the answer arrives: the
    /// client cannot know it worked (a retry must not do it twice).
    LostAnswer,
}

impl From<u16> for Fault {
    fn from(status: u16) -> Fault {
        Fault::Status(status)
    }
}

/// Statuses as faults: `statuses(&[429, 500])`.
pub fn statuses(codes: &[u16]) -> Vec<Fault> {
    codes.iter().map(|c| Fault::Status(*c)).collect()
}

/// Longer than the sync client's timeout.
pub const SLOW: Duration = Duration::from_secs(11);

/// A fake whose state holds a fault queue.
pub trait Faulty: Send + 'static {
    /// For the next requests, whatever they are.
    fn faults(&mut self) -> &mut Vec<Fault>;
    /// For the next request of this kind: (`"POST /users"`, fault); the path without query.
    fn aimed(&mut self) -> &mut Vec<(String, Fault)>;
}

/// The middleware: `Router::layer(axum::middleware::from_fn_with_state(state, inject::<T>))`.
pub async fn inject<T: Faulty>(
    State(s): State<Arc<Mutex<T>>>,
    req: Request,
    next: Next,
) -> Response {
    let fault = {
        let mut k = s.lock().unwrap();
        let this = format!("{} {}", req.method(), req.uri().path());
        let aimed = k.aimed();
        match aimed.iter().position(|(at, _)| *at == this) {
            Some(i) => Some(aimed.remove(i).1),
            None => {
                let q = k.faults();
                (!q.is_empty()).then(|| q.remove(0))
            }
        }
    };
    match fault {
        None => next.run(req).await,
        Some(Fault::Status(code)) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), "injected").into_response();
            if code == 429 {
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
            }
            r
        }
        Some(Fault::Slow) => {
            tokio::time::sleep(SLOW).await;
            (StatusCode::SERVICE_UNAVAILABLE, "too late").into_response()
        }
        Some(Fault::Reset) => broken(),
        Some(Fault::LostAnswer) => {
            let _ = next.run(req).await;
            broken()
        }
    }
}

/// A 200 whose body breaks off: the client reads an error, not an answer.
fn broken() -> Response {
    let mut r = Response::new(Body::new(Broken));
    r.headers_mut()
        .insert("content-length", "64".parse().unwrap());
    r
}

struct Broken;

impl http_body::Body for Broken {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected: connection broken",
        ))))
    }
}
