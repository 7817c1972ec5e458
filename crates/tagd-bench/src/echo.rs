//! The "echo" baseline: a bare tonic `CustomerService` whose `GetCustomer` returns a canned customer.
//!
//! It runs on its own tokio runtime in its own thread, so the generator and the server do not share
//! one scheduler (as they would not with the real server, which is another process).

use std::{net::SocketAddr, sync::Arc, thread};

use anyhow::{Context, Result};
use tagd_proto::v1::{
    Customer, DeleteCustomerRequest, DeleteCustomerResponse, GetCustomerRequest,
    ListCustomersRequest, ListCustomersResponse, UpdateCustomerRequest, UpsertCustomersRequest,
    UpsertCustomersResponse,
    customer_service_server::{CustomerService, CustomerServiceServer},
};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status, transport::server::TcpIncoming};

/// The service: every `GetCustomer` answers with a clone of `canned`, with the requested id.
struct Echo {
    canned: Arc<Customer>,
}

#[tonic::async_trait]
impl CustomerService for Echo {
    async fn create_customer(
        &self,
        _request: Request<tagd_proto::v1::CreateCustomerRequest>,
    ) -> Result<Response<Customer>, Status> {
        Err(Status::unimplemented("echo baseline"))
    }

    async fn get_customer(
        &self,
        request: Request<GetCustomerRequest>,
    ) -> Result<Response<Customer>, Status> {
        let mut customer = Customer::clone(&self.canned);
        customer.id = request.into_inner().id;
        Ok(Response::new(customer))
    }

    async fn update_customer(
        &self,
        _request: Request<UpdateCustomerRequest>,
    ) -> Result<Response<Customer>, Status> {
        Err(Status::unimplemented("echo baseline"))
    }

    async fn delete_customer(
        &self,
        _request: Request<DeleteCustomerRequest>,
    ) -> Result<Response<DeleteCustomerResponse>, Status> {
        Err(Status::unimplemented("echo baseline"))
    }

    async fn list_customers(
        &self,
        _request: Request<ListCustomersRequest>,
    ) -> Result<Response<ListCustomersResponse>, Status> {
        Err(Status::unimplemented("echo baseline"))
    }

    async fn get_field_history(
        &self,
        _request: Request<tagd_proto::v1::GetFieldHistoryRequest>,
    ) -> Result<Response<tagd_proto::v1::GetFieldHistoryResponse>, Status> {
        Err(Status::unimplemented("echo baseline"))
    }

    async fn upsert_customers(
        &self,
        _request: Request<UpsertCustomersRequest>,
    ) -> Result<Response<UpsertCustomersResponse>, Status> {
        Err(Status::unimplemented("echo baseline"))
    }
}

/// A running echo server; dropping it shuts the server down and joins its thread.
pub struct EchoServer {
    /// Where it listens (loopback, a free port).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<Result<()>>>,
}

impl EchoServer {
    /// Starts the server on 127.0.0.1 with a free port, on a runtime with `worker_threads` workers.
    ///
    /// `nodelay` sets TCP_NODELAY on accepted connections (off only to show what Nagle costs).
    pub fn start(canned: Customer, worker_threads: usize, nodelay: bool) -> Result<Self> {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<Result<SocketAddr>>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let canned = Arc::new(canned);
        let thread = thread::Builder::new()
            .name("echo-server".into())
            .spawn(move || -> Result<()> {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(worker_threads.max(1))
                    .thread_name("echo-worker")
                    .enable_all()
                    .build()
                    .context("building the echo runtime")?;
                runtime.block_on(async move {
                    let incoming = match bind(nodelay) {
                        Ok((incoming, addr)) => {
                            // The receiver only goes away if `start` already failed.
                            let _ = addr_tx.send(Ok(addr));
                            incoming
                        }
                        Err(err) => {
                            let _ = addr_tx.send(Err(err));
                            return Ok(());
                        }
                    };
                    tonic::transport::Server::builder()
                        .add_service(CustomerServiceServer::new(Echo { canned }))
                        .serve_with_incoming_shutdown(incoming, async {
                            let _ = shutdown_rx.await;
                        })
                        .await
                        .context("echo server failed")
                })
            })
            .context("spawning the echo server thread")?;
        let addr = addr_rx
            .recv()
            .context("echo server thread ended before binding")??;
        Ok(Self {
            addr,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    /// Stops the server and reports how it ended.
    pub fn stop(mut self) -> Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(handle) => handle
                .join()
                .map_err(|_| anyhow::anyhow!("echo server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        if let Err(err) = self.stop_inner() {
            eprintln!("bench: {err:#}");
        }
    }
}

fn bind(nodelay: bool) -> Result<(TcpIncoming, SocketAddr)> {
    let incoming = TcpIncoming::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .map_err(|err| anyhow::anyhow!("binding the echo server: {err}"))?
        .with_nodelay(Some(nodelay));
    let addr = incoming
        .local_addr()
        .context("reading the echo server address")?;
    Ok((incoming, addr))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tagd_proto::v1::customer_service_client::CustomerServiceClient;

    use super::*;
    use crate::load::{self, Limits};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generator_drives_the_echo_server() {
        let canned = crate::workload::synthetic_stored_customer();
        let server = EchoServer::start(canned.clone(), 1, true).unwrap();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let client = CustomerServiceClient::new(channel);
        let limits = Limits {
            concurrency: 8,
            max_calls: 2000,
            duration: Duration::from_secs(60),
        };
        let m = load::run(limits, move |_, i| {
            let mut client = client.clone();
            let expected_name = canned.name.clone();
            async move {
                let id = format!("customer-{i}");
                let customer = client
                    .get_customer(GetCustomerRequest { id: id.clone() })
                    .await?
                    .into_inner();
                anyhow::ensure!(customer.id == id && customer.name == expected_name);
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!((m.ok, m.errors), (2000, 0), "{:?}", m.first_error);
        assert!(m.latency_ms(0.99) > 0.0);

        // Other methods are not part of the baseline.
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let status = CustomerServiceClient::new(channel)
            .list_customers(ListCustomersRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        tokio::task::spawn_blocking(move || server.stop())
            .await
            .unwrap()
            .unwrap();
    }
}
