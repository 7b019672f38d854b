//! A TCP proxy that makes a server slow: every chunk the server sends is held back for a
//! fixed delay. TLS passes through untouched, so it stands in front of kube-apiserver and the
//! client still verifies the apiserver's own certificate.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Runs until dropped.
pub struct SlowProxy {
    pub addr: SocketAddr,
    accept_loop: JoinHandle<()>,
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl SlowProxy {
    pub async fn start(target: SocketAddr, delay: Duration) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accept_loop = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, delay).await;
                    }
                });
            }
        });
        Ok(Self { addr, accept_loop })
    }
}

async fn relay(client: TcpStream, server: TcpStream, delay: Duration) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let downstream = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match server_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tokio::time::sleep(delay).await;
                    if client_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// A TCP proxy that can be cut (every connection closed, new ones refused at once) and
/// restored: an apiserver that becomes unreachable for one client only.
pub struct SwitchableProxy {
    pub addr: SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    relays: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept_loop: JoinHandle<()>,
}

impl Drop for SwitchableProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
        self.cut();
    }
}

impl SwitchableProxy {
    /// Starts open or cut.
    pub async fn start(target: SocketAddr, open: bool) -> Result<Self> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let open = std::sync::Arc::new(AtomicBool::new(open));
        let relays: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (accepting, tracked) = (open.clone(), relays.clone());
        let accept_loop = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let relay = tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, Duration::ZERO).await;
                    }
                });
                tracked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(relay.abort_handle());
            }
        });
        Ok(Self { addr, open, relays, accept_loop })
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for relay in self.relays.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..) {
            relay.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
