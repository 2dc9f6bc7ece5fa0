//! The hub's lifecycle hooks, as stored (set through `Hub::on_connect` and friends).

use super::{Client, Hub};
use crate::stats::DisconnectReason;
use futures_util::future::BoxFuture;
use std::sync::Arc;

pub(crate) type SyncConnect = dyn Fn(&Hub, &Client) + Send + Sync;
pub(crate) type AsyncConnect = dyn Fn(Hub, Client) -> BoxFuture<'static, ()> + Send + Sync;
pub(crate) type SyncDisconnect = dyn Fn(&Hub, &Client, DisconnectReason) + Send + Sync;
pub(crate) type AsyncDisconnect =
    dyn Fn(Hub, Client, DisconnectReason) -> BoxFuture<'static, ()> + Send + Sync;
pub(crate) type Spawner = dyn Fn(BoxFuture<'static, ()>) + Send + Sync;

/// A connect hook.
#[derive(Clone)]
pub(crate) enum OnConnect {
    Sync(Arc<SyncConnect>),
    Async(Arc<AsyncConnect>),
}

/// A disconnect hook.
#[derive(Clone)]
pub(crate) enum OnDisconnect {
    Sync(Arc<SyncDisconnect>),
    Async(Arc<AsyncDisconnect>),
}

/// The hub's hooks.
#[derive(Clone, Default)]
pub(crate) struct Hooks {
    pub(crate) connect: Option<OnConnect>,
    pub(crate) disconnect: Option<OnDisconnect>,
    pub(crate) spawner: Option<Arc<Spawner>>,
}
