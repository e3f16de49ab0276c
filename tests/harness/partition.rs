//! A network partition between one client and the kube-apiserver, on loopback: a TCP
//! relay in front of the real apiserver that forwards bytes both ways until it is
//! stalled, and from then on holds every connection open without forwarding anything
//! (as an apiserver stopped with SIGSTOP, or a partition, looks to that client). Only
//! the clients pointed at the relay are cut off; every other client reaches the
//! apiserver as before. TLS passes through untouched.

use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context, Result};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// A running relay (stopped when dropped).
pub struct Partition {
    addr: SocketAddr,
    stalled: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Partition {
    /// A relay to `target` on a free loopback port.
    pub async fn start(target: SocketAddr) -> Result<Partition> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, _) = watch::channel(false);
        let stalled = Arc::new(tx);
        let s = stalled.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let rx = s.subscribe();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, rx).await;
                    }
                });
            }
        });
        Ok(Partition {
            addr,
            stalled,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on nothing is forwarded, either way, on any connection.
    pub fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// A kube client for `config` that reaches the apiserver only through this relay.
    pub fn client(&self, mut config: kube::Config) -> Result<kube::Client> {
        let url = format!("https://{}", self.addr);
        config.cluster_url = url.parse().context("relay url")?;
        Ok(kube::Client::try_from(config)?)
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forward both ways until either side closes; once stalled, hold everything.
async fn relay(client: TcpStream, server: TcpStream, stalled: watch::Receiver<bool>) {
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, stalled.clone());
    let down = pump(sr, cw, stalled);
    let _ = tokio::join!(up, down);
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if *stalled.borrow() {
            // Held for ever: the bytes never arrive.
            let _ = stalled.wait_for(|s| !*s).await;
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
