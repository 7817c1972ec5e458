//! Assembles the services, health, reflection and middleware, and serves them
//! until shutdown; also runs the expiry sweeper.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tagd_core::customers::ContactRules;
use tagd_jobs::Jobs;
use tagd_proto::v1::cleanse_service_server::CleanseServiceServer;
use tagd_proto::v1::customer_service_server::CustomerServiceServer;
use tagd_proto::v1::dedupe_service_server::DedupeServiceServer;
use tagd_proto::v1::import_service_server::ImportServiceServer;
use tagd_proto::v1::interaction_service_server::InteractionServiceServer;
use tagd_proto::v1::job_service_server::JobServiceServer;
use tagd_proto::v1::metrics_service_server::MetricsServiceServer;
use tagd_proto::v1::purchase_service_server::PurchaseServiceServer;
use tagd_proto::v1::rule_service_server::RuleServiceServer;
use tagd_proto::v1::segment_service_server::SegmentServiceServer;
use tagd_proto::v1::tag_service_server::TagServiceServer;
use tagd_proto::v1::tagging_service_server::TaggingServiceServer;
use tagd_rules::Rules;
use tagd_segments::Segments;
use tagd_store::{AssignQueue, Store};
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::cleanse::Cleanse;
use crate::customers::Customers;
use crate::dedupe::Dedupe;
use crate::imports::Imports;
use crate::interactions::Interactions;
use crate::jobs::JobsService;
use crate::metrics::Metrics;
use crate::middleware::{KeyRing, RpcLayer};
use crate::purchases::Purchases;
use crate::rules::RulesService;
use crate::segments::SegmentsService;
use crate::tagging::Tagging;
use crate::tags::Tags;

/// Everything the server needs besides the store and the socket.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub keys: KeyRing,
    /// The largest request message accepted, in bytes.
    pub max_request_bytes: usize,
    pub contact_rules: ContactRules,
    /// How often expired assignments are removed and recorded in history.
    pub expiry_sweep_interval: Duration,
    /// Import and cleanse (and later dedupe) jobs.
    pub jobs: Arc<Jobs>,
    /// The windows (days) customer metrics count orders over; checked with
    /// `tagd_core::metrics::windows`.
    pub metric_windows_days: Vec<u32>,
    /// The segment index and its follower (built before serving).
    pub segments: Arc<Segments>,
    /// Tag rules and their scheduler.
    pub rules: Arc<Rules>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves every tagd service on `listener` until `shutdown` resolves; calls in
/// flight finish before this returns.
pub async fn serve(
    store: Arc<Store>,
    listener: TcpListener,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let limit = options.max_request_bytes;
    let tags = TagServiceServer::new(Tags {
        store: store.clone(),
    })
    .max_decoding_message_size(limit);
    let customers = CustomerServiceServer::new(Customers {
        store: store.clone(),
        rules: options.contact_rules,
    })
    .max_decoding_message_size(limit);
    let tagging = TaggingServiceServer::new(Tagging {
        assign_queue: AssignQueue::start(store.clone()),
        store: store.clone(),
    })
    .max_decoding_message_size(limit);

    let job_service = JobServiceServer::new(JobsService {
        jobs: options.jobs.clone(),
    })
    .max_decoding_message_size(limit);
    let dedupe = DedupeServiceServer::new(Dedupe {
        store: store.clone(),
        jobs: options.jobs.clone(),
        rules: options.contact_rules,
    })
    .max_decoding_message_size(limit);
    let imports = ImportServiceServer::new(Imports {
        jobs: options.jobs.clone(),
    })
    .max_decoding_message_size(limit);
    let cleanse = CleanseServiceServer::new(Cleanse {
        jobs: options.jobs.clone(),
    })
    .max_decoding_message_size(limit);

    let purchases = PurchaseServiceServer::new(Purchases {
        store: store.clone(),
    })
    .max_decoding_message_size(limit);
    let interactions = InteractionServiceServer::new(Interactions {
        store: store.clone(),
    })
    .max_decoding_message_size(limit);
    let metrics = MetricsServiceServer::new(Metrics {
        store: store.clone(),
        windows_days: options.metric_windows_days.clone(),
    })
    .max_decoding_message_size(limit);

    let segments = SegmentServiceServer::new(SegmentsService {
        segments: options.segments.clone(),
    })
    .max_decoding_message_size(limit);

    let rules = RuleServiceServer::new(RulesService {
        rules: options.rules.clone(),
    })
    .max_decoding_message_size(limit);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<TagServiceServer<Tags>>()
        .await;
    health_reporter
        .set_serving::<CustomerServiceServer<Customers>>()
        .await;
    health_reporter
        .set_serving::<TaggingServiceServer<Tagging>>()
        .await;
    health_reporter
        .set_serving::<JobServiceServer<JobsService>>()
        .await;
    health_reporter
        .set_serving::<ImportServiceServer<Imports>>()
        .await;
    health_reporter
        .set_serving::<DedupeServiceServer<Dedupe>>()
        .await;
    health_reporter
        .set_serving::<PurchaseServiceServer<Purchases>>()
        .await;
    health_reporter
        .set_serving::<InteractionServiceServer<Interactions>>()
        .await;
    health_reporter
        .set_serving::<MetricsServiceServer<Metrics>>()
        .await;
    health_reporter
        .set_serving::<CleanseServiceServer<Cleanse>>()
        .await;
    health_reporter
        .set_serving::<SegmentServiceServer<SegmentsService>>()
        .await;
    health_reporter
        .set_serving::<RuleServiceServer<RulesService>>()
        .await;

    // Many clients (grpcurl, Python grpcio) still speak only v1alpha reflection.
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tagd_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tagd_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let sweeper = tokio::spawn(sweep_expired(store.clone(), options.expiry_sweep_interval));
    let follower = tokio::spawn(options.segments.clone().follow());
    let scheduler = tokio::spawn(options.rules.clone().schedule());
    let result = Server::builder()
        .layer(RpcLayer::new(options.keys))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(tags)
        .add_service(customers)
        .add_service(tagging)
        .add_service(job_service)
        .add_service(imports)
        .add_service(dedupe)
        .add_service(purchases)
        .add_service(interactions)
        .add_service(metrics)
        .add_service(cleanse)
        .add_service(segments)
        .add_service(rules)
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await;
    sweeper.abort();
    follower.abort();
    scheduler.abort();
    Ok(result?)
}

/// Accepted connections with TCP_NODELAY: without it small responses wait for
/// the client's delayed ACK (~40 ms), and keepalive so dead peers are noticed.
fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)))
}

/// Pooled connections idle this long are closed (well under MySQL's default
/// `wait_timeout` of 8 hours).
const MAX_IDLE_CONNECTION: Duration = Duration::from_secs(600);

/// Periodically records and removes assignments whose expiry has passed, so
/// history shows every expiry even for customers nobody reads; also closes
/// long-idle database connections.
async fn sweep_expired(store: Arc<Store>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        store.prune_idle_connections(MAX_IDLE_CONNECTION);
        match store.expire_due().await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired tag assignments"),
            Err(error) => tracing::warn!(%error, "expiry sweep failed; will retry"),
        }
    }
}
