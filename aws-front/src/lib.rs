//! `aws-front`: an HTTP front of the AWS emulator that models what AWS does and the
//! emulator does not (throttling, lost answers, stalls, pages, lagging lists, updates in
//! progress, code storage), switchable per test, and counts every call by operation.
//!
//! In process ([`Front::start`], its own thread and tokio runtime, so sync tests use it)
//! or as the `aws-front` binary (control endpoints `GET /__front/counts`,
//! `POST /__front/faults`, `POST /__front/reset`). What each behaviour models and assumes:
//! docs/aws-front.md.
//!
//! `faults.rs` what a test asks for, `operation.rs` which call a request is, `counts.rs`
//! the counts, `paging.rs` pages with markers, `lag.rs` what the front remembers (publishes,
//! updates) and the answers that changes, `answer.rs` made-up answers, `server.rs` the
//! server and the relay.

mod answer;
mod counts;
mod faults;
mod lag;
mod operation;
mod paging;
mod server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub use counts::Counts;
pub use faults::{Fault, Faults, Rule, Storage};

/// A running front; dropping it stops the server (calls open then are cut).
pub struct Front {
    addr: SocketAddr,
    state: server::Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Front {
    /// A front of `upstream` (`http://HOST:PORT`) on a free port of 127.0.0.1.
    pub fn start(upstream: &str) -> std::io::Result<Front> {
        Front::bind("127.0.0.1:0", upstream)
    }

    /// A front of `upstream` listening on `listen` (`HOST:PORT`).
    pub fn bind(listen: &str, upstream: &str) -> std::io::Result<Front> {
        let upstream = upstream.trim_end_matches('/').to_string();
        if !upstream.starts_with("http://") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("aws-front: the upstream {upstream:?} must be a plain http://HOST:PORT URL"),
            ));
        }
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("aws-front")
            .enable_all()
            .build()?;
        let state: server::Shared = Arc::new(Mutex::new(server::State::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let shared = state.clone();
        let thread = std::thread::Builder::new().name("aws-front".into()).spawn(move || {
            rt.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => server::serve(listener, shared, upstream, stopped).await,
                    Err(e) => eprintln!("aws-front: cannot serve on {addr}: {e}"),
                }
            });
            rt.shutdown_background();
        })?;
        Ok(Front { addr, state, stop: Some(stop), thread: Some(thread) })
    }

    /// `http://127.0.0.1:PORT`, the endpoint URL to give the clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the behaviours; the rules' call counters start again.
    pub fn set(&self, faults: Faults) {
        server::lock(&self.state).set(faults);
    }

    /// The calls seen so far.
    pub fn counts(&self) -> Counts {
        server::lock(&self.state).counter.counts.clone()
    }

    /// Counts to zero and behaviours to none.
    pub fn reset(&self) {
        let mut s = server::lock(&self.state);
        s.counter.reset();
        s.set(Faults::default());
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
