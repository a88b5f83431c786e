//! A TCP proxy between coupond and PostgreSQL, the harness's hand on the network: it can delay
//! every chunk of bytes for a while, and reset every connection it carries at once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    addr: SocketAddr,
    /// Milliseconds added before each chunk is passed on, 0 for none.
    delay: Arc<AtomicU64>,
    /// Bumped to reset every connection open now.
    epoch: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the proxy")?;
        let addr = listener.local_addr()?;
        let delay = Arc::new(AtomicU64::new(0));
        let (epoch, _) = watch::channel(0u64);
        let task = tokio::spawn(accept(listener, upstream, delay.clone(), epoch.clone()));
        Ok(Proxy {
            addr,
            delay,
            epoch,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay
            .store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Resets every connection open now (new ones are accepted as before).
    pub fn reset_all(&self) {
        self.epoch.send_modify(|e| *e += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, delay: Arc<AtomicU64>, epoch: watch::Sender<u64>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(relay(client, upstream, delay.clone(), epoch.subscribe()));
    }
}

async fn relay(mut client: TcpStream, upstream: SocketAddr, delay: Arc<AtomicU64>, mut epoch: watch::Receiver<u64>) {
    let mut server = match TcpStream::connect(upstream).await {
        Ok(server) => server,
        Err(_) => {
            // As a database that is down would: the client sees its connection refused at once
            // and, with several hosts in its URL, tries the next.
            let _ = client.set_zero_linger();
            return;
        }
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let reset = {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        tokio::select! {
            _ = pump(&mut client_read, &mut server_write, &delay) => false,
            _ = pump(&mut server_read, &mut client_write, &delay) => false,
            _ = epoch.changed() => true,
        }
    };
    if reset {
        // SO_LINGER 0: closing sends a reset, as a dropped network path or a killed peer would.
        let _ = (client.set_zero_linger(), server.set_zero_linger());
    }
}

/// Copies one direction until it closes, each chunk after the delay in force.
async fn pump(from: &mut (impl AsyncReadExt + Unpin), to: &mut (impl AsyncWriteExt + Unpin), delay: &AtomicU64) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let ms = delay.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn forwards_delays_and_resets() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut buf = [0u8; 4];
        conn.write_all(b"ping").await.unwrap();
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");

        proxy.set_delay(Duration::from_millis(100));
        let started = std::time::Instant::now();
        conn.write_all(b"pong").await.unwrap();
        conn.read_exact(&mut buf).await.unwrap();
        // Once on the way there, once on the way back.
        assert!(started.elapsed() >= Duration::from_millis(200));
        proxy.set_delay(Duration::ZERO);

        proxy.reset_all();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Err(_)) | Ok(Ok(0))), "the connection ends: {read:?}");
        // New connections still go through.
        let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
        again.write_all(b"ping").await.unwrap();
        again.read_exact(&mut buf).await.unwrap();
    }
}
