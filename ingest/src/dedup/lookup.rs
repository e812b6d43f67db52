use std::collections::HashMap;

use std::sync::Arc;

use attributor::domain::ConversionId;
use attributor::{Conversion, Journal, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// The most ids one lookup query carries.
const MAX_IDS_PER_QUERY: usize = 1_000;

type Reply = oneshot::Sender<Result<Option<Conversion>, StoreError>>;

/// Finds conversions by id where they are: this node's unshipped journal first, then
/// ClickHouse, in batches: while one query is out, the ids that arrive wait and go together
/// in the next, so a burst of replays costs a few queries. Confirms the dedup bloom
/// filter's "maybe"s and serves GET and PATCH by id.
#[derive(Clone)]
pub struct StoredLookup {
    sender: mpsc::Sender<(ConversionId, Reply)>,
}

impl StoredLookup {
    /// Starts the lookup loop on its own thread and runtime; it ends when every handle
    /// has been dropped.
    pub fn start(store: &Store, journal: Arc<Journal>, queue_capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(queue_capacity);
        let store = store.with_own_pool();
        std::thread::Builder::new()
            .name("dedup-lookup".into())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building the dedup lookup runtime")
                    .block_on(run(store, journal, receiver));
            })
            .expect("spawning the dedup lookup thread");
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
            .send((id, reply))
            .await
            .map_err(|_| StoreError::Unavailable("the lookup loop has stopped".into()))?;
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
    mut receiver: mpsc::Receiver<(ConversionId, Reply)>,
) {
    let mut waiting = Vec::with_capacity(MAX_IDS_PER_QUERY);
    while receiver.recv_many(&mut waiting, MAX_IDS_PER_QUERY).await > 0 {
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
        let ids: Vec<ConversionId> = asked.iter().map(|(id, _)| id.clone()).collect();
        match store.conversions_by_id(&ids).await {
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
