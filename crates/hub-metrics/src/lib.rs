#![doc = include_str!("../README.md")]
//!
//! The values are read from [`Hub::stats`] (and the hub's topic counts) when the registry is
//! encoded: there is no background task and no timer, and a scrape costs one `stats()` per
//! hub (plus one pass over the clients for `hub_topic_subscriptions` while topics exist).
//! [`HubMetrics`] holds a [`WeakHub`]: the registry does not keep a hub alive, and a hub that
//! was dropped disappears from the next scrape.
#![doc(test(attr(deny(warnings))))]

mod families;

use families::{Kind, Snapshot, FAMILIES};
use hub_core::{Hub, WeakHub};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::registry::{Registry, Unit};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use prometheus_client;

/// The `Content-Type` of what [`encode`] returns (OpenMetrics text 1.0.0, which Prometheus
/// scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Encodes everything in `registry` (the hubs' metrics and any of the application's own) as
/// OpenMetrics text, `# EOF` included: the body of a `GET /metrics` answer, to be served
/// with [`CONTENT_TYPE`].
///
/// # Errors
///
/// Only if a collector of the application's own fails; this crate's never does.
pub fn encode(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// Why [`HubMetrics::add`] refused a hub.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    /// Another live hub has this name: two hubs with one `hub` label would give duplicate
    /// series. Pick another name, or [`HubMetrics::remove`] the first.
    #[error("a hub named {0:?} is already registered")]
    Duplicate(String),
    /// The name is empty; a `hub` label needs a value.
    #[error("a hub's metrics name must not be empty")]
    EmptyName,
}

#[derive(Debug)]
struct Entry {
    name: Arc<str>,
    hub: WeakHub,
}

/// The hubs exposed in a [`Registry`], each with a `hub` label: a
/// [`Collector`] that reads their stats at scrape
/// time. Register it once per registry ([`HubMetrics::register`]) and
/// [`add`](HubMetrics::add) every hub to it: one collector for all the hubs keeps each metric
/// family in one block, as OpenMetrics requires (a collector per hub would repeat them).
///
/// Clones share the list of hubs, so hubs can be added after the registry is shared.
///
/// ```
/// use hub_core::Hub;
/// use prometheus_client::registry::Registry;
///
/// let chat = Hub::new();
/// let mut registry = Registry::default();
/// let metrics = hub_metrics::HubMetrics::register(&mut registry);
/// metrics.add("chat", &chat)?;
/// let text = hub_metrics::encode(&registry)?;
/// assert!(text.contains("hub_connections_total{hub=\"chat\"} 0"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct HubMetrics {
    hubs: Arc<Mutex<Vec<Entry>>>,
}

impl HubMetrics {
    /// No hub yet, not registered: give it to
    /// [`Registry::register_collector`] yourself, or use [`HubMetrics::register`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A new collector, registered in `registry`; add hubs to the returned handle.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::new();
        registry.register_collector(Box::new(metrics.clone()));
        metrics
    }

    /// Exposes `hub` under the label `hub="<name>"`. The hub is held weakly.
    ///
    /// # Errors
    ///
    /// [`AddError::Duplicate`] if a live hub already has `name`, [`AddError::EmptyName`] for
    /// `""`.
    pub fn add(&self, name: &str, hub: &Hub) -> Result<(), AddError> {
        if name.is_empty() {
            return Err(AddError::EmptyName);
        }
        let mut hubs = self.lock();
        hubs.retain(|e| e.hub.upgrade().is_some());
        if hubs.iter().any(|e| &*e.name == name) {
            return Err(AddError::Duplicate(name.to_string()));
        }
        hubs.push(Entry {
            name: Arc::from(name),
            hub: hub.downgrade(),
        });
        Ok(())
    }

    /// Stops exposing the hub named `name`; whether there was one.
    pub fn remove(&self, name: &str) -> bool {
        let mut hubs = self.lock();
        let before = hubs.len();
        hubs.retain(|e| &*e.name != name);
        hubs.len() != before
    }

    /// The names of the live hubs exposed, in the order they were added.
    pub fn names(&self) -> Vec<String> {
        let mut hubs = self.lock();
        hubs.retain(|e| e.hub.upgrade().is_some());
        hubs.iter().map(|e| e.name.to_string()).collect()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        // The list is consistent between statements, so a panic elsewhere cannot corrupt it.
        self.hubs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One snapshot per live hub; dropped hubs are forgotten. The hubs are read outside the
    /// lock.
    fn snapshots(&self) -> Vec<(Arc<str>, Snapshot)> {
        let live: Vec<(Arc<str>, Hub)> = {
            let mut hubs = self.lock();
            hubs.retain(|e| e.hub.upgrade().is_some());
            hubs.iter()
                .filter_map(|e| Some((e.name.clone(), e.hub.upgrade()?)))
                .collect()
        };
        live.into_iter()
            .map(|(name, hub)| (name, Snapshot::read(&hub)))
            .collect()
    }
}

impl Collector for HubMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let hubs = self.snapshots();
        for family in FAMILIES {
            let samples: Vec<_> = hubs
                .iter()
                .flat_map(|(name, snapshot)| {
                    family
                        .read
                        .samples(snapshot)
                        .into_iter()
                        .map(move |(label, value)| (name, label, value))
                })
                .collect();
            if samples.is_empty() {
                continue;
            }
            let unit = family.bytes.then_some(Unit::Bytes);
            let mut metric = encoder.encode_descriptor(
                family.name,
                family.help,
                unit.as_ref(),
                family.kind.metric_type(),
            )?;
            for (hub, label, value) in samples {
                let mut labels: Vec<(&str, &str)> = vec![("hub", hub)];
                labels.extend(label);
                let mut sample = metric.encode_family(&labels)?;
                match family.kind {
                    Kind::Counter => sample.encode_counter::<NoLabelSet, u64, u64>(&value, None)?,
                    Kind::Gauge => sample.encode_gauge(&value)?,
                }
            }
        }
        Ok(())
    }
}
