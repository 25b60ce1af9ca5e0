//! The HTTPS listener: accepts TCP under a connection cap, completes TLS (rustls) within a
//! deadline and serves HTTP/1.1 or HTTP/2 (hyper) with the router, closing idle connections,
//! making room by closing the longest-idle one when full, and bounding graceful shutdown.
//!
//! Files: [`tracker`] (the open connections, the cap and idleness), [`body`] (request-body
//! deadlines and in-flight response bodies).

mod body;
mod tracker;

pub use body::{BodyDeadlineExceeded, DeadlineBody};
pub use tracker::{ConnectionStats, ConnectionTracker};

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

use crate::auth::ClientAddr;
use crate::config::ConnectionLimits;
use body::InFlightBody;
use tracker::ConnectionSlot;

/// Interval of HTTP/2 keep-alive pings, and how long a ping may go unanswered.
const H2_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(20);

/// What every connection task shares.
#[derive(Clone)]
struct Shared {
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    limits: ConnectionLimits,
    tracker: Arc<ConnectionTracker>,
}

/// Accepts connections until `stop` turns true, then waits at most the shutdown grace for open
/// requests before their connections are closed.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
    limits: ConnectionLimits,
    tracker: Arc<ConnectionTracker>,
    mut stop: watch::Receiver<bool>,
) {
    let shared = Shared {
        acceptor: tokio_rustls::TlsAcceptor::from(tls),
        app,
        limits,
        tracker,
    };
    let tasks = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let Some(slot) = shared.tracker.admit() else {
            tracing::debug!("connection refused: every open connection is busy");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        tasks.spawn(serve_connection(
            tcp,
            peer,
            slot,
            shared.clone(),
            stop.clone(),
        ));
    }
    drop(listener);
    tasks.close();
    let bound = limits.shutdown_grace + limits.handshake_timeout.min(limits.shutdown_grace);
    if tokio::time::timeout(bound, tasks.wait()).await.is_err() {
        tracing::warn!("shutdown: connections still open after the grace period");
    }
}

async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: ConnectionSlot,
    shared: Shared,
    mut stop: watch::Receiver<bool>,
) {
    let connection = Arc::clone(slot.connection());
    let limits = shared.limits;
    let handshake = tokio::time::timeout(limits.handshake_timeout, shared.acceptor.accept(tcp));
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => {
                tracing::debug!(error = %err, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return;
            }
        },
        _ = connection.close_requested() => return,
        _ = stop.changed() => return,
    };

    let requests = Arc::clone(&connection);
    let app = shared.app.clone();
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            let guard = requests.request_started();
            request.extensions_mut().insert(ClientAddr(peer));
            let app = app.clone();
            async move {
                let response = app.oneshot(request.map(Body::new)).await?;
                Ok::<_, std::convert::Infallible>(
                    response.map(|body| Body::new(InFlightBody::new(body, guard))),
                )
            }
        });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams_per_connection)
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);

    let mut closing_by: Option<Instant> = None;
    loop {
        let idle_check = if connection.is_idle() {
            Instant::from_std(connection.idle_deadline(limits.idle_timeout))
        } else {
            Instant::now() + limits.idle_timeout
        };
        let grace_end = closing_by.unwrap_or_else(Instant::now);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(idle_check), if closing_by.is_none() => {
                let idle_for_long = connection.is_idle()
                    && Instant::from_std(connection.idle_deadline(limits.idle_timeout))
                        <= Instant::now();
                if idle_for_long {
                    shared.tracker.record_idle_close();
                    conn.as_mut().graceful_shutdown();
                    closing_by = Some(Instant::now() + limits.shutdown_grace);
                }
            }
            _ = connection.close_requested(), if closing_by.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing_by = Some(Instant::now() + limits.shutdown_grace);
            }
            _ = stop.changed(), if closing_by.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing_by = Some(Instant::now() + limits.shutdown_grace);
            }
            _ = tokio::time::sleep_until(grace_end), if closing_by.is_some() => {
                tracing::debug!("connection closed at the end of its grace period");
                return;
            }
        }
    }
}
