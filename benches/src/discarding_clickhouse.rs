use std::net::SocketAddr;
use std::sync::mpsc;

use actix_web::{App, HttpResponse, HttpServer, web};
use attributor::store::StoreTimeouts;
use attributor::{Store, StoreSettings};

/// Bodies up to this size are read in full before the answer; far above any bench batch.
const BODY_LIMIT_BYTES: usize = 256 * 1024 * 1024;

/// Stands where ClickHouse's HTTP interface stands and answers every statement 200 with
/// an empty body: INSERTs are read to the end and dropped, SELECTs find no rows. It runs
/// on its own thread until the bench process exits.
pub struct DiscardingClickHouse {
    address: SocketAddr,
}

impl DiscardingClickHouse {
    pub fn start() -> Self {
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("discarding-clickhouse".into())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(|| {
                        App::new()
                            .app_data(web::PayloadConfig::new(BODY_LIMIT_BYTES))
                            .default_service(web::to(|_body: web::Bytes| async {
                                HttpResponse::Ok().finish()
                            }))
                    })
                    // One worker: the benches' own threads need the other cores.
                    .workers(1)
                    .bind(("127.0.0.1", 0))
                    .expect("binding the discarding clickhouse to a local port");
                    sender
                        .send(server.addrs()[0])
                        .expect("the starting thread waits for the address");
                    server.run().await
                })
            })
            .expect("spawning the discarding clickhouse thread");
        let address = receiver
            .recv()
            .expect("the discarding clickhouse reports its address");
        Self { address }
    }

    /// A store that talks to this server.
    pub fn store(&self) -> Store {
        Store::unconnected(&StoreSettings {
            url: format!("http://{}", self.address),
            cluster: None,
            database: "bench".into(),
            user: "default".into(),
            password: String::new(),
            timeouts: StoreTimeouts::default(),
        })
    }
}
