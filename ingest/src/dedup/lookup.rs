use std::collections::HashMap;

use attributor::domain::ConversionId;
use attributor::{Conversion, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// The most ids one lookup query carries.
const MAX_IDS_PER_QUERY: usize = 1_000;

type Reply = oneshot::Sender<Result<Option<Conversion>, StoreError>>;

/// Confirms bloom "maybe"s in ClickHouse in batches: while one query is out, the ids that
/// arrive wait and go together in the next, so a burst of replays costs a few queries.
#[derive(Clone)]
pub struct StoredLookup {
    sender: mpsc::Sender<(ConversionId, Reply)>,
}

impl StoredLookup {
    /// Starts the lookup loop on its own thread and runtime; it ends when every handle
    /// has been dropped.
    pub fn start(store: &Store, queue_capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(queue_capacity);
        let store = store.with_own_pool();
        std::thread::Builder::new()
            .name("dedup-lookup".into())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building the dedup lookup runtime")
                    .block_on(run(store, receiver));
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

async fn run(store: Store, mut receiver: mpsc::Receiver<(ConversionId, Reply)>) {
    let mut waiting = Vec::with_capacity(MAX_IDS_PER_QUERY);
    while receiver.recv_many(&mut waiting, MAX_IDS_PER_QUERY).await > 0 {
        let ids: Vec<ConversionId> = waiting.iter().map(|(id, _)| id.clone()).collect();
        match store.conversions_by_id(&ids).await {
            Ok(found) => {
                let found: HashMap<ConversionId, Conversion> =
                    found.into_iter().map(|c| (c.id.clone(), c)).collect();
                for (id, reply) in waiting.drain(..) {
                    let _ = reply.send(Ok(found.get(&id).cloned()));
                }
            }
            Err(error) => {
                for (_, reply) in waiting.drain(..) {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
