//! A TCP proxy between ferry and a target database, so a test can take the target away —
//! refuse new connections and cut the open ones — and bring it back on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Proxy {
    /// The port ferry connects to.
    pub port: u16,
    upstream: SocketAddr,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let mut proxy = Proxy { port, upstream, accept: None, connections: Arc::default() };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let (upstream, connections) = (self.upstream, self.connections.clone());
        self.accept = Some(tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let forward = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut open = connections.lock().expect("connections lock");
                open.retain(|c| !c.is_finished());
                open.push(forward);
            }
        }));
    }

    /// Stops listening (new connections are refused) and cuts every open connection.
    pub fn stop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for connection in self.connections.lock().expect("connections lock").drain(..) {
            connection.abort();
        }
    }

    /// Listens on the same port again.
    pub async fn restart(&mut self) {
        let address = format!("127.0.0.1:{}", self.port);
        for _ in 0..100 {
            if let Ok(listener) = TcpListener::bind(&address).await {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cannot listen on {address} again");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `host:port` of a `scheme://user@host:port/db` URL, resolved.
pub async fn address_of(url: &str, default_port: u16) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let with_port = if host_port.contains(':') { host_port.to_owned() } else { format!("{host_port}:{default_port}") };
    tokio::net::lookup_host(&with_port)
        .await
        .unwrap_or_else(|e| panic!("cannot resolve {with_port}: {e}"))
        .next()
        .unwrap_or_else(|| panic!("{with_port} has no address"))
}

/// `url` with its host and port replaced by `127.0.0.1:port`.
pub fn via_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@")).unwrap_or_default();
    format!("{scheme}://{user}127.0.0.1:{port}{tail}")
}

#[test]
fn urls_are_pointed_at_the_proxy() {
    assert_eq!(via_port("postgres://postgres@127.0.0.1:5432/db", 9), "postgres://postgres@127.0.0.1:9/db");
    assert_eq!(via_port("mysql://root:pw@localhost/x?a=b", 9), "mysql://root:pw@127.0.0.1:9/x?a=b");
}
