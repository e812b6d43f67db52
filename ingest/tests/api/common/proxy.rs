//! A TCP proxy between the service and ClickHouse that a test can cut or stall, to show
//! what the service answers when its store is unreachable — against the real server.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const OPEN: u8 = 0;
const CUT: u8 = 1;
const STALLED: u8 = 2;

pub struct Proxy {
    pub url: String,
    mode: Arc<AtomicU8>,
    changes: watch::Sender<u8>,
}

impl Proxy {
    pub async fn start(upstream_url: &str) -> Proxy {
        let upstream = upstream_url.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(OPEN));
        let (changes, _) = watch::channel(OPEN);
        let accept_mode = Arc::clone(&mode);
        let accept_changes = changes.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let mode = Arc::clone(&accept_mode);
                let mut changed = accept_changes.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    match mode.load(Ordering::Acquire) {
                        CUT => return,
                        STALLED => {
                            // Hold the connection without answering until the mode changes.
                            let _ = changed.changed().await;
                            return;
                        }
                        _ => {}
                    }
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let copy = copy_bidirectional(&mut client, &mut server);
                    tokio::pin!(copy);
                    loop {
                        tokio::select! {
                            _ = &mut copy => return,
                            changed_mode = changed.changed() => {
                                if changed_mode.is_err() || *changed.borrow() != OPEN {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Proxy { url, mode, changes }
    }

    /// Every connection is closed and new ones are refused.
    pub fn cut(&self) {
        self.set(CUT);
    }

    /// New connections are accepted and never answered.
    pub fn stall(&self) {
        self.set(STALLED);
    }

    pub fn restore(&self) {
        self.set(OPEN);
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::Release);
        let _ = self.changes.send(mode);
    }
}
