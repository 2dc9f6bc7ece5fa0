//! The signals that stop a server: SIGTERM (what Docker, Kubernetes and systemd send) and
//! SIGINT (Ctrl-C), both meaning "drain".

use std::future::Future;

/// A future that resolves on SIGTERM or SIGINT (Ctrl-C), whichever comes first: give it to a
/// `serve` helper (`hub_hyper::serve`, `hub_warp::serve`) so a container's stop drains the
/// server (503 with `Retry-After` to new upgrades, 1001 to every WebSocket after its queue
/// flushes, event streams ended) exactly as Ctrl-C does, instead of killing every connection
/// at once.
///
/// The handlers are installed when this is called, not when the future is first polled: call
/// it before the server announces that it is ready, and a signal from then on always drains.
/// Where SIGTERM cannot be listened to (not Unix, or the handler cannot be installed), Ctrl-C
/// alone. Must be called inside a tokio runtime with the IO driver enabled.
///
/// ```no_run
/// # #[allow(dead_code)]
/// # async fn example(hub: hub_core::Hub) {
/// let stop = hub_tokio::shutdown_signal();
/// // ... bind, announce, and serve until `stop` resolves ...
/// stop.await;
/// hub.shutdown(); // new upgrades get 503, every client 1001 after its queue flushes
/// hub.closed().await;
/// # }
/// ```
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        )
    };
    async move {
        #[cfg(unix)]
        let which = match signals {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "Ctrl-C",
            },
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot listen to SIGTERM: only Ctrl-C drains");
                let _ = tokio::signal::ctrl_c().await;
                "Ctrl-C"
            }
        };
        #[cfg(not(unix))]
        let which = {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        };
        tracing::info!("{which}: shutting down");
    }
}
