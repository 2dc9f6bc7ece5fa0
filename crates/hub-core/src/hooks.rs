//! Lifecycle hooks: `on_connect` and `on_disconnect`, sync and async, and the spawner that
//! runs an async `on_disconnect` whose connection was dropped rather than driven to its end.

use crate::state::{AsyncConnect, AsyncDisconnect, Client, Hooks, Hub, OnConnect, OnDisconnect};
use crate::stats::DisconnectReason;
use futures_util::future::BoxFuture;
use std::future::Future;
use std::sync::{Arc, PoisonError};

impl Hub {
    fn set_hooks(&self, change: impl FnOnce(&mut Hooks)) {
        change(
            &mut self
                .inner
                .hooks
                .write()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    /// Sets the hook run when a client arrives (WebSocket or SSE), replacing any previous
    /// one. It runs on the client's own connection task, before its first message is handled;
    /// exactly once per client, paired with [`Hub::on_disconnect`]. It must not block (use
    /// [`Hub::on_connect_async`] for what waits). A hook that panics closes its client with
    /// 1011 (counted in [`Stats::hook_panics`](crate::Stats::hook_panics)) and nothing else.
    ///
    /// ```
    /// use hub_core::Hub;
    ///
    /// let hub = Hub::new();
    /// hub.on_connect(|hub, client| {
    ///     let _ = client.send(format!(r#"{{"type":"welcome","online":{}}}"#, hub.client_count()));
    /// });
    /// hub.on_disconnect(|_, client, reason| {
    ///     tracing::info!(client = %client.id(), reason = reason.as_str(), "left");
    /// });
    /// ```
    pub fn on_connect(&self, hook: impl Fn(&Hub, &Client) + Send + Sync + 'static) {
        self.set_hooks(|h| h.connect = Some(OnConnect::Sync(Arc::new(hook))));
    }

    /// As [`Hub::on_connect`], with a hook that may wait (a database lookup, say): the client's
    /// first message is handled once its future completes; writes and pings go on meanwhile.
    pub fn on_connect_async<F, Fut>(&self, hook: F)
    where
        F: Fn(Hub, Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let boxed: Arc<AsyncConnect> = Arc::new(move |hub, client| Box::pin(hook(hub, client)));
        self.set_hooks(|h| h.connect = Some(OnConnect::Async(boxed)));
    }

    /// Sets the hook run when a client leaves, for whatever reason (closed by either side,
    /// evicted, timed out, rate limited, shut down), replacing any previous one. It runs after
    /// the client's last message was handled, once it has left the registry, exactly once for
    /// every client whose [`Hub::on_connect`] ran (whether or not a connect hook is set). A
    /// panic in it is logged and counted in [`Stats::hook_panics`](crate::Stats::hook_panics).
    pub fn on_disconnect(
        &self,
        hook: impl Fn(&Hub, &Client, DisconnectReason) + Send + Sync + 'static,
    ) {
        self.set_hooks(|h| h.disconnect = Some(OnDisconnect::Sync(Arc::new(hook))));
    }

    /// As [`Hub::on_disconnect`], with a hook that may wait. The connection's future completes
    /// (and [`Hub::closed`] resolves) only once it is done. When the connection is dropped
    /// instead (an SSE response body the server discards when its client goes away), the
    /// future goes to the hub's spawner ([`Hub::set_spawner`]; every adapter sets one).
    pub fn on_disconnect_async<F, Fut>(&self, hook: F)
    where
        F: Fn(Hub, Client, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let boxed: Arc<AsyncDisconnect> =
            Arc::new(move |hub, client, reason| Box::pin(hook(hub, client, reason)));
        self.set_hooks(|h| h.disconnect = Some(OnDisconnect::Async(boxed)));
    }

    /// Sets how to run a future the hub cannot drive itself: an async disconnect hook whose
    /// connection was dropped. Adapters set it to their runtime's `spawn` when they first
    /// serve the hub, unless the application set one. Without one, such a future is polled
    /// once and, if it is not done, dropped (logged).
    pub fn set_spawner(&self, spawn: impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static) {
        self.set_hooks(|h| h.spawner = Some(Arc::new(spawn)));
    }

    /// Sets the spawner unless one is set ([`Hub::set_spawner`]): what adapters call.
    pub fn set_default_spawner(
        &self,
        spawn: impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static,
    ) {
        let set = self
            .inner
            .hooks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .spawner
            .is_some();
        if set {
            return; // the common case, every connection after the first: a read lock only
        }
        self.set_hooks(|h| {
            if h.spawner.is_none() {
                h.spawner = Some(Arc::new(spawn));
            }
        });
    }

    pub(crate) fn hooks(&self) -> Hooks {
        self.inner
            .hooks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
