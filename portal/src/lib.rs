//! Web front ends (SPEC §5, §7): the captive portal (this module's `captive`), later the
//! operator console, member self-service and JSON API. Pages are askama templates that work
//! without JavaScript; forms carry CSRF tokens bound to the client.

/// A page template: the layout's `Page` (of the module that invokes it) as field `p`, which the
/// page derefs to, plus the page's own fields. Used by the portal and the console.
macro_rules! page {
    ($name:ident, $file:literal { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Template, WebTemplate)]
        #[template(path = $file)]
        pub struct $name {
            pub p: Page,
            $(pub $field: $ty,)*
        }
        impl std::ops::Deref for $name {
            type Target = Page;
            fn deref(&self) -> &Page {
                &self.p
            }
        }
    };
}

pub mod api;
pub mod captive;
pub mod console;
pub mod csrf;
pub mod health;
pub mod limit;
pub mod mail;
pub mod tls;
pub mod totp;
pub mod week;

pub use captive::{Portal, PortalSettings};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Both ends of an HTTP connection: the portal redirects to the address it was reached on.
#[derive(Clone, Copy, Debug)]
pub struct Conn {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Arrived over HTTPS (member sign-in is only offered there).
    pub tls: bool,
}

impl Connected<IncomingStream<'_, TcpListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        let peer = *stream.remote_addr();
        let local = stream.io().local_addr().unwrap_or(peer);
        Conn {
            peer: unmapped(peer),
            local: unmapped(local),
            tls: false,
        }
    }
}

/// A dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`; we speak of them as IPv4.
pub fn unmapped(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

/// Serves a router until the future `stop` completes.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<Conn>(),
    )
    .with_graceful_shutdown(stop)
    .await
}
