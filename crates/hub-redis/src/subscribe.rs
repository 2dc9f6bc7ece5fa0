//! The subscriber: delivers the cluster's broadcasts (this node's own included) in id order,
//! and the publishes of the topics this node has subscribers for; subscribes a topic's
//! channel when the topic gains its first local subscriber and unsubscribes when it loses its
//! last (all on the one connection); catches up from the streams after a (re)subscription
//! ([`crate::catch_up`]); and keeps the connection's state: any step of a (re)subscription
//! that fails is tried again at the next probe, until the backplane is `Up`.

use crate::envelope;
use crate::interest::{Change, Interest};
use crate::keys;
use crate::line::{Ctx, From, Line};
use crate::publish::Target;
use crate::redact::Secret;
use crate::stats::Counters;
use hub_core::BackplaneState;
use redis::aio::ConnectionManager;
use redis::{PushInfo, PushKind, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// What the subscriber works with.
pub(crate) struct Subscriber {
    pub(crate) ctx: Ctx,
    pub(crate) manager: ConnectionManager,
    /// The hub's channel and stream, and the streams' length.
    pub(crate) target: Target,
    pub(crate) pushes: UnboundedReceiver<PushInfo>,
    /// Pushes taken from `pushes` during a catch-up, to handle (in order) after it.
    pub(crate) backlog: VecDeque<PushInfo>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) interest: Arc<Interest>,
    pub(crate) secret: Secret,
    pub(crate) probe_interval: Duration,
    /// The hub's line: broadcasts to everyone.
    pub(crate) hub: Line,
    /// The topics with local subscribers, by channel.
    pub(crate) topics: HashMap<String, Topic>,
}

/// A topic this node subscribes to.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: Arc<str>,
    pub(crate) stream: String,
    pub(crate) line: Line,
    /// Set while the topic's subscribers wait for its first catch-up: the cluster's time when
    /// it gained them (fresh subscribers get what came after it).
    pub(crate) waiting: Option<u64>,
    /// Whether Redis confirmed the subscription (on this connection).
    pub(crate) confirmed: bool,
    /// Whether its channel was subscribed to (the connection subscribes again by itself
    /// after a reconnect); not while Redis was away when the topic was joined.
    pub(crate) requested: bool,
}

impl Subscriber {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        ctx: Ctx,
        manager: ConnectionManager,
        target: Target,
        pushes: UnboundedReceiver<PushInfo>,
        interest: Arc<Interest>,
        secret: Secret,
        probe_interval: Duration,
    ) -> Self {
        Self {
            counters: ctx.counters.clone(),
            ctx,
            manager,
            target,
            pushes,
            backlog: VecDeque::new(),
            interest,
            secret,
            probe_interval,
            hub: Line::default(),
            topics: HashMap::new(),
        }
    }

    /// Runs until the hub is gone. While not `Up`, every probe (re)subscribes and catches
    /// up, so the manager reconnects even when nothing is published and no failed step
    /// leaves the node half connected.
    pub(crate) async fn run(mut self) {
        let mut probe = tokio::time::interval(self.probe_interval);
        probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Some(push) = self.backlog.pop_front() {
                if !self.ctx.local.is_alive() {
                    return;
                }
                self.on_push(push).await;
                continue;
            }
            let interest = self.interest.clone();
            tokio::select! {
                push = self.pushes.recv() => {
                    let Some(push) = push else { return };
                    if !self.ctx.local.is_alive() {
                        return;
                    }
                    self.on_push(push).await;
                }
                () = interest.changed() => {
                    if !self.ctx.local.is_alive() {
                        return;
                    }
                    self.apply_interest().await;
                }
                _ = probe.tick() => {
                    if !self.ctx.local.is_alive() {
                        return;
                    }
                    if self.counters.state() != BackplaneState::Up {
                        self.resubscribe().await;
                    }
                }
            }
        }
    }

    /// Moves the pushes that came in meanwhile to the backlog.
    pub(crate) fn drain_pushes(&mut self) {
        while let Ok(push) = self.pushes.try_recv() {
            self.backlog.push_back(push);
        }
    }

    /// Subscribes (again: harmless when still subscribed) to the hub's channel and every
    /// topic's, and reads what was missed.
    async fn resubscribe(&mut self) {
        let mut channels = vec![self.target.channel.clone()];
        channels.extend(self.topics.keys().cloned());
        match self.manager.subscribe(&channels).await {
            // each topic's Subscribe push starts its catch-up
            Ok(()) => {
                for topic in self.topics.values_mut() {
                    topic.requested = true;
                }
                self.catch_up_hub().await;
            }
            Err(error) => {
                tracing::debug!(error = %self.secret.scrub(&error), "subscribe failed");
                self.counters.set_state(BackplaneState::Down);
                self.release_waiting();
            }
        }
    }

    /// Subscribes to the topics that gained local subscribers and unsubscribes from those
    /// that lost them.
    async fn apply_interest(&mut self) {
        let (mut leave, mut rejoined) = (Vec::new(), Vec::new());
        for (name, change) in self.interest.take() {
            let channel = keys::topic_channel(&self.target.channel, &name);
            match change {
                Change::Join { since } => match self.topics.get_mut(&channel) {
                    // left and joined again before this task saw the leave: still
                    // subscribed, but the hub waits for a catch-up again
                    Some(topic) => {
                        topic.waiting = Some(since);
                        if topic.confirmed {
                            rejoined.push(channel);
                        } // else its Subscribe push starts the catch-up
                    }
                    None => {
                        let topic = Topic {
                            name,
                            stream: keys::topic_stream(&channel),
                            line: Line::default(),
                            waiting: Some(since),
                            confirmed: false,
                            requested: false,
                        };
                        self.topics.insert(channel, topic);
                    }
                },
                Change::Leave => {
                    if self.topics.remove(&channel).is_some() {
                        leave.push(channel);
                    }
                }
            }
        }
        if !leave.is_empty() {
            if let Err(error) = self.manager.unsubscribe(&leave).await {
                // a subscription that outlives it is dropped when its pushes come
                tracing::debug!(error = %self.secret.scrub(&error), "unsubscribe failed");
            }
        }
        if self.counters.state() != BackplaneState::Up {
            // not now: local delivery goes on, and the channels are subscribed to once Redis
            // is back
            self.release_waiting();
            return;
        }
        self.subscribe_new().await;
        for channel in rejoined {
            self.catch_up_topic(&channel).await;
        }
    }

    /// Subscribes to the channels of the topics joined since the last subscription (while
    /// Redis was away, or just now); each one's Subscribe push starts its catch-up.
    async fn subscribe_new(&mut self) {
        let new: Vec<String> = self
            .topics
            .iter()
            .filter(|(_, topic)| !topic.requested)
            .map(|(channel, _)| channel.clone())
            .collect();
        if new.is_empty() {
            return;
        }
        match self.manager.subscribe(&new).await {
            Ok(()) => {
                for channel in &new {
                    if let Some(topic) = self.topics.get_mut(channel) {
                        topic.requested = true;
                    }
                }
            }
            Err(error) => {
                tracing::debug!(error = %self.secret.scrub(&error), "subscribe failed");
                self.counters.set_state(BackplaneState::Down);
                self.release_waiting();
            }
        }
    }

    async fn on_push(&mut self, push: PushInfo) {
        match push.kind {
            PushKind::Subscribe => {
                let Some(channel) = channel_of(&push).and_then(|c| std::str::from_utf8(c).ok())
                else {
                    return;
                };
                if channel == self.target.channel {
                    self.catch_up_hub().await;
                    if self.counters.state() == BackplaneState::Up {
                        // back (the connection subscribed again by itself): the topics
                        // joined meanwhile too
                        self.subscribe_new().await;
                    }
                } else if let Some(topic) = self.topics.get_mut(channel) {
                    topic.confirmed = true;
                    let channel = channel.to_string();
                    self.catch_up_topic(&channel).await;
                } else {
                    // a topic left meanwhile, or a subscription the manager restored
                    // after an unsubscribe that failed: no traffic for it
                    let stale = channel.to_string();
                    if let Err(error) = self.manager.unsubscribe(&stale).await {
                        tracing::debug!(error = %self.secret.scrub(&error), "unsubscribe failed");
                    }
                }
            }
            PushKind::Message => {
                let (Some(channel), Some(Value::BulkString(bytes))) =
                    (channel_of(&push), push.data.get(1))
                else {
                    Counters::bump(&self.counters.malformed);
                    return;
                };
                let line = if channel == self.target.channel.as_bytes() {
                    Some((&mut self.hub, None))
                } else {
                    std::str::from_utf8(channel)
                        .ok()
                        .and_then(|channel| self.topics.get_mut(channel))
                        .filter(|topic| topic.waiting.is_none() && self.interest.has(&topic.name))
                        .map(|topic| (&mut topic.line, Some(topic.name.clone())))
                };
                // None: a topic left (or about to be: the hub no longer wants it, and would
                // keep a history of it that nobody keeps up to date), whose messages were on
                // their way; or one waiting for its catch-up, which reads its stream after
                // this (from a subscription before it left and joined again)
                let Some((line, topic)) = line else { return };
                match envelope::split_id(bytes) {
                    Some((id, envelope)) => {
                        self.ctx
                            .deliver(line, topic.as_deref(), id, envelope, From::Channel);
                    }
                    None => Counters::bump(&self.counters.malformed),
                }
            }
            PushKind::Disconnection => {
                self.counters.set_state(BackplaneState::Down);
                Counters::bump(&self.counters.disconnects);
                for topic in self.topics.values_mut() {
                    topic.confirmed = false;
                }
                self.release_waiting();
            }
            _ => {}
        }
    }
}

/// The channel a push is about.
pub(crate) fn channel_of(push: &PushInfo) -> Option<&[u8]> {
    match push.data.first() {
        Some(Value::BulkString(bytes)) => Some(bytes),
        _ => None,
    }
}

/// The id of a channel message push.
pub(crate) fn push_id(push: &PushInfo) -> Option<u64> {
    match (&push.kind, push.data.get(1)) {
        (PushKind::Message, Some(Value::BulkString(bytes))) => {
            envelope::split_id(bytes).map(|(id, _)| id)
        }
        _ => None,
    }
}
