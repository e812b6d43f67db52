use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use attributor::domain::ConversionId;
use attributor::runtime::spawn_with_runtime;
use attributor::{Conversion, Journal, Store, StoreError};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// The most ids one lookup query carries.
const MAX_IDS_PER_QUERY: usize = 1_000;

type Reply = oneshot::Sender<Result<Option<Conversion>, StoreError>>;

#[derive(Debug, Clone)]
pub struct LookupConfig {
    /// Look-ups that may wait for their query; past this they are refused (503).
    pub queue_capacity: usize,
    /// How long one query may take before its look-ups are answered "unavailable".
    pub timeout: Duration,
    /// Queries out at once: a slow one does not hold up the look-ups that follow.
    pub max_in_flight: usize,
}

impl Default for LookupConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            timeout: Duration::from_secs(2),
            max_in_flight: 8,
        }
    }
}

/// Finds conversions by id where they are: this node's unshipped journal first, then
/// ClickHouse, in batches: while queries are out, the ids that arrive wait and go together
/// in the next, so a burst of replays costs a few queries. Every query has a deadline, and
/// several may be out at once. Confirms the dedup bloom filter's "maybe"s and serves GET
/// and PATCH by id.
#[derive(Clone)]
pub struct StoredLookup {
    sender: mpsc::Sender<(ConversionId, Reply)>,
}

impl StoredLookup {
    /// Starts the lookup loop on its own thread and runtime; it ends when every handle
    /// has been dropped.
    pub fn start(store: &Store, journal: Arc<Journal>, config: LookupConfig) -> Self {
        let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let store = store.with_own_pool();
        spawn_with_runtime("dedup-lookup", move || {
            run(store, journal, config, receiver)
        });
        Self { sender }
    }

    /// Look-ups waiting for their query.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// The stored conversion with this id, if any.
    pub async fn find(&self, id: ConversionId) -> Result<Option<Conversion>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .try_send((id, reply))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => {
                    StoreError::Unavailable("too many look-ups wait for ClickHouse".into())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    StoreError::Unavailable("the lookup loop has stopped".into())
                }
            })?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the lookup loop has stopped".into(),
            ))
        })
    }
}

async fn run(
    store: Store,
    journal: Arc<Journal>,
    config: LookupConfig,
    mut receiver: mpsc::Receiver<(ConversionId, Reply)>,
) {
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    let mut waiting = Vec::with_capacity(MAX_IDS_PER_QUERY);
    loop {
        // A query slot first, then the ids: what arrives while every slot is taken goes
        // together in the next query.
        let Ok(slot) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        if receiver.recv_many(&mut waiting, MAX_IDS_PER_QUERY).await == 0 {
            return;
        }
        // The journal first: what this node journaled and has not shipped is newer than
        // anything ClickHouse holds of the same conversion.
        let mut asked = Vec::with_capacity(waiting.len());
        for (id, reply) in waiting.drain(..) {
            match journaled(&journal, &id) {
                Ok(Some(conversion)) => {
                    let _ = reply.send(Ok(Some(conversion)));
                }
                Ok(None) => asked.push((id, reply)),
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            }
        }
        if asked.is_empty() {
            continue;
        }
        let store = store.clone();
        tokio::spawn(async move {
            let ids: Vec<ConversionId> = asked.iter().map(|(id, _)| id.clone()).collect();
            let found = tokio::time::timeout(config.timeout, store.conversions_by_id(&ids))
                .await
                .unwrap_or_else(|_| {
                    Err(StoreError::Unavailable(format!(
                        "no answer to the look-up within {:?}",
                        config.timeout
                    )))
                });
            answer(asked, found);
            drop(slot);
        });
    }
}

fn answer(asked: Vec<(ConversionId, Reply)>, found: Result<Vec<Conversion>, StoreError>) {
    match found {
        Ok(found) => {
            let found: HashMap<ConversionId, Conversion> =
                found.into_iter().map(|c| (c.id.clone(), c)).collect();
            for (id, reply) in asked {
                let _ = reply.send(Ok(found.get(&id).cloned()));
            }
        }
        Err(error) => {
            for (_, reply) in asked {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

fn journaled(journal: &Journal, id: &ConversionId) -> Result<Option<Conversion>, StoreError> {
    let unreadable =
        |error: String| StoreError::Corrupt(format!("journal record of {id}: {error}"));
    match journal.conversion(id) {
        Ok(Some(row)) => Conversion::try_from(row).map(Some),
        Ok(None) => Ok(None),
        Err(error) => Err(unreadable(error.to_string())),
    }
}
