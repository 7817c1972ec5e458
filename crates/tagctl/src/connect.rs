//! The channel to tagd and the interceptor that adds the bearer key to every call.

use std::time::Duration;

use tagd_proto::v1::cleanse_service_client::CleanseServiceClient;
use tagd_proto::v1::customer_service_client::CustomerServiceClient;
use tagd_proto::v1::dedupe_service_client::DedupeServiceClient;
use tagd_proto::v1::import_service_client::ImportServiceClient;
use tagd_proto::v1::interaction_service_client::InteractionServiceClient;
use tagd_proto::v1::job_service_client::JobServiceClient;
use tagd_proto::v1::metrics_service_client::MetricsServiceClient;
use tagd_proto::v1::purchase_service_client::PurchaseServiceClient;
use tagd_proto::v1::rule_service_client::RuleServiceClient;
use tagd_proto::v1::segment_service_client::SegmentServiceClient;
use tagd_proto::v1::tag_service_client::TagServiceClient;
use tagd_proto::v1::tagging_service_client::TaggingServiceClient;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::exit::Failure;
use crate::settings::Settings;

/// Lists of many customers can exceed tonic's 4 MiB default; the server caps requests itself.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

pub type Authed = InterceptedService<Channel, Bearer>;

/// An open connection; the per-service clients share its channel.
#[derive(Clone)]
pub struct Connection {
    channel: Channel,
    bearer: Bearer,
}

impl Connection {
    /// Connects eagerly so an unreachable server is reported as such (exit 4)
    /// rather than as the first call's error.
    pub async fn open(settings: &Settings) -> Result<Self, Failure> {
        let bearer = Bearer::new(settings.key.as_deref())?;
        let endpoint = Endpoint::from_shared(settings.server.clone())
            .map_err(|e| Failure::usage(format!("server {:?}: {e}", settings.server)))?
            .connect_timeout(Duration::from_secs(5));
        let channel = endpoint.connect().await.map_err(|e| {
            Failure::Unreachable(format!(
                "cannot connect to {}: {}",
                settings.server,
                error_chain(&e)
            ))
        })?;
        Ok(Connection { channel, bearer })
    }

    pub fn tags(&self) -> TagServiceClient<Authed> {
        TagServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn customers(&self) -> CustomerServiceClient<Authed> {
        CustomerServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn imports(&self) -> ImportServiceClient<Authed> {
        ImportServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn dedupe(&self) -> DedupeServiceClient<Authed> {
        DedupeServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn cleanse(&self) -> CleanseServiceClient<Authed> {
        CleanseServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn jobs(&self) -> JobServiceClient<Authed> {
        JobServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn purchases(&self) -> PurchaseServiceClient<Authed> {
        PurchaseServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn interactions(&self) -> InteractionServiceClient<Authed> {
        InteractionServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn metrics(&self) -> MetricsServiceClient<Authed> {
        MetricsServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn segments(&self) -> SegmentServiceClient<Authed> {
        SegmentServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn rules(&self) -> RuleServiceClient<Authed> {
        RuleServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub fn tagging(&self) -> TaggingServiceClient<Authed> {
        TaggingServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

/// Adds `authorization: Bearer <key>` when a key is configured.
#[derive(Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Bearer {
    fn new(key: Option<&str>) -> Result<Self, Failure> {
        let Some(key) = key else {
            return Ok(Bearer(None));
        };
        // Never echo the key: the error only says what is wrong with it.
        let mut value: AsciiMetadataValue = MetadataValue::try_from(format!("Bearer {key}"))
            .map_err(|_| {
                Failure::usage("key: contains characters not allowed in an HTTP header")
            })?;
        value.set_sensitive(true);
        Ok(Bearer(Some(value)))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// tonic's transport error says only "transport error"; the cause is in its sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
