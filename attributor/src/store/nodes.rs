//! The ClickHouse nodes a store may talk to, and which of them it talks to now. Every node of
//! a cluster answers for the whole cluster (through its Distributed tables), so the store
//! uses one at a time and moves to the next when that one stops answering; a watcher pings
//! every node in the background so that `/readyz` and the metrics show each node's state,
//! and so that a node marked down is used again once it answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use clickhouse::Client;

use super::{Store, StoreError};

/// State shared by every clone of a store (and by its copies on other pools).
#[derive(Debug)]
pub(crate) struct Nodes {
    urls: Vec<String>,
    preferred: AtomicUsize,
    up: Vec<AtomicBool>,
}

impl Nodes {
    /// `list` is one URL or several separated by commas.
    pub(crate) fn parse(list: &str) -> Result<Arc<Self>, StoreError> {
        let urls: Vec<String> = list
            .split(',')
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        if urls.is_empty() {
            return Err(StoreError::Refused("no ClickHouse URL configured".into()));
        }
        // Nodes of one service start at different ClickHouse nodes, so that the work of
        // fanning a Distributed query out is spread over the cluster.
        let first = std::process::id() as usize % urls.len();
        Ok(Arc::new(Self {
            up: urls.iter().map(|_| AtomicBool::new(true)).collect(),
            urls,
            preferred: AtomicUsize::new(first),
        }))
    }

    pub(crate) fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The node to use now: the preferred one, or the next one believed up.
    pub(crate) fn current(&self) -> usize {
        let preferred = self.preferred.load(Ordering::Acquire);
        (0..self.urls.len())
            .map(|step| (preferred + step) % self.urls.len())
            .find(|&index| self.up[index].load(Ordering::Acquire))
            .unwrap_or(preferred)
    }

    /// Node `index` failed an exchange: stop preferring it until it answers a ping.
    pub(crate) fn failed(&self, index: usize) {
        if self.urls.len() == 1 {
            return;
        }
        if self.up[index].swap(false, Ordering::AcqRel) {
            tracing::warn!(url = %self.urls[index], "clickhouse node failed; using the next one");
        }
        let next = (index + 1) % self.urls.len();
        let _ = self
            .preferred
            .compare_exchange(index, next, Ordering::AcqRel, Ordering::Acquire);
    }

    fn set_up(&self, index: usize, up: bool) {
        let was = self.up[index].swap(up, Ordering::AcqRel);
        if was != up {
            tracing::info!(url = %self.urls[index], up, "clickhouse node state changed");
        }
    }

    /// Whether each node answered its last ping (or has not failed since), by URL.
    pub fn states(&self) -> Vec<(String, bool)> {
        self.urls
            .iter()
            .zip(&self.up)
            .map(|(url, up)| (url.clone(), up.load(Ordering::Acquire)))
            .collect()
    }
}

/// One client per node, configured alike.
pub(crate) fn clients(nodes: &Nodes, base: &Client) -> Arc<[Client]> {
    nodes
        .urls
        .iter()
        .map(|url| base.clone().with_url(url))
        .collect()
}

impl Store {
    /// An exchange made outside [`Store::within`] (a streamed INSERT) failed with `error`:
    /// when the node is to blame, the next exchange goes to another.
    pub(crate) fn exchange_failed(&self, error: &StoreError) {
        if error.is_node_failure() {
            self.nodes.failed(self.nodes.current());
        }
    }

    /// Each node's URL and whether it answered its last ping.
    pub fn node_states(&self) -> Vec<(String, bool)> {
        self.nodes.states()
    }

    /// The URL of the node exchanges go to now.
    pub fn node_in_use(&self) -> &str {
        &self.nodes.urls[self.nodes.current()]
    }

    /// Pings every node now, within `timeout` each, recording who answers; returns each
    /// node's URL and the error of those that did not.
    pub async fn ping_nodes(&self, timeout: Duration) -> Vec<(String, Result<(), StoreError>)> {
        let pings = self
            .clients
            .unbounded
            .iter()
            .enumerate()
            .map(|(index, client)| async move {
                let answer =
                    match tokio::time::timeout(timeout, client.query("SELECT 1").fetch_one::<u8>())
                        .await
                    {
                        Ok(answer) => answer.map(drop).map_err(StoreError::from),
                        Err(_) => Err(StoreError::Unavailable("ping timed out".into())),
                    };
                self.nodes.set_up(index, answer.is_ok());
                (self.nodes.urls[index].clone(), answer)
            });
        futures_util::future::join_all(pings).await
    }

    /// Pings every node every `every` on a background thread for as long as the process
    /// runs, so that a node that failed is used again once it answers, and the node states
    /// (`/readyz`, `affilync_clickhouse_up`, `affilync_clickhouse_node_up`) say what is up
    /// on one server as on a cluster.
    pub fn watch_nodes(&self, every: Duration) {
        let store = self.unpooled();
        crate::runtime::spawn_background("clickhouse-nodes", move || async move {
            loop {
                store.ping_nodes(every).await;
                tokio::time::sleep(every).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_node_is_skipped_until_it_answers_again() {
        let nodes = Nodes::parse("http://a:1, http://b:2/,http://c:3").unwrap();
        assert_eq!(nodes.urls(), ["http://a:1", "http://b:2", "http://c:3"]);
        let first = nodes.current();
        nodes.failed(first);
        let second = nodes.current();
        assert_ne!(first, second);
        nodes.failed(second);
        let third = nodes.current();
        assert!(third != first && third != second);
        nodes.set_up(first, true);
        nodes.failed(third);
        assert_eq!(nodes.current(), first);
    }

    #[test]
    fn with_every_node_down_the_preferred_one_is_still_tried() {
        let nodes = Nodes::parse("http://a:1,http://b:2").unwrap();
        nodes.failed(0);
        nodes.failed(1);
        assert!(nodes.current() < 2);
        assert!(Nodes::parse(" , ").is_err());
    }
}
