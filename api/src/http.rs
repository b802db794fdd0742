//! The server's HTTP/1 connection loop: hyper with Tessera's limits, under the axum router.
//!
//! `axum::serve` offers no way to set hyper's connection settings, and hyper's default lets a
//! request head grow to its read buffer's limit (about 400 KiB), which a probe filled with 420
//! KiB of headers. This loop is `axum::serve` with the limit set: each accepted connection is
//! served by hyper's HTTP/1 builder with [`MAX_HEADER_BYTES`], the router sees the peer address
//! as `ConnectInfo<SocketAddr>`, and on shutdown the loop stops accepting, lets every connection
//! finish its request in flight and waits for them all.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

/// The largest request head (request line and header fields) a connection accepts; a larger
/// one is answered with 431 Request Header Fields Too Large (RFC 6585 section 5) and the
/// connection closed. 32 KiB is four times what nginx and Apache accept per header line by
/// default (8 KiB) and the size of nginx's whole `large_client_header_buffers` (4 x 8 KiB),
/// so nothing a proxy in front would pass is refused.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Serves `router` on `listener` until `shutdown` resolves, then drains the open connections.
pub async fn serve(
    mut listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // Dropping the receiver tells the accept loop and every connection to stop.
    let (signal, signalled) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signalled);
    });
    // Every connection holds a receiver; the loop waits until all are dropped.
    let (open, connection_guard) = watch::channel(());
    loop {
        let (io, peer) = tokio::select! {
            // axum's `Listener` retries failed accepts (after a pause when out of file
            // descriptors) instead of ending the loop, as `axum::serve` does.
            accepted = Listener::accept(&mut listener) => accepted,
            () = signal.closed() => break,
        };
        let service = router
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            });
        let service = TowerToHyperService::new(service);
        let signal = signal.clone();
        let guard = connection_guard.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.max_header_size(MAX_HEADER_BYTES);
            let connection = builder.serve_connection(TokioIo::new(io), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::trace!(%error, %peer, "connection ended with an error");
                    }
                }
                () = signal.closed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(guard);
        });
    }
    drop(connection_guard);
    drop(listener);
    open.closed().await;
}
