//! Tower middleware around every RPC: authenticates the bearer key, enforces
//! the method's role, and logs one line per call (method, status, latency).

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http::HeaderMap;
use subtle::ConstantTimeEq;
use tagd_core::auth::Role;
use tonic::{Code, Status};
use tower::{Layer, Service};

/// One configured API key. `key` is secret: never logged, compared in constant time.
#[derive(Clone)]
pub struct ApiKey {
    pub name: String,
    pub key: String,
    pub role: Role,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// The configured keys; with none, every caller is let in as an admin.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Arc<Vec<ApiKey>>,
}

/// Who is calling; put into each request's extensions for the handlers.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub name: String,
}

/// The actor recorded for calls on a server running without keys.
const ANONYMOUS: &str = "anonymous";

impl KeyRing {
    pub fn new(keys: Vec<ApiKey>) -> Self {
        Self {
            keys: Arc::new(keys),
        }
    }

    /// Whether the server runs without authentication.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<(String, Role), Status> {
        if self.is_open() {
            return Ok((ANONYMOUS.to_owned(), Role::Admin));
        }
        let header = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
            Status::unauthenticated(
                "missing authorization header: send `authorization: Bearer <key>`",
            )
        })?;
        let presented = header
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                Status::unauthenticated("authorization header must be `Bearer <key>`")
            })?;
        // Check every key, without stopping early, so timing says nothing about which matched.
        let mut matched: Option<&ApiKey> = None;
        for key in self.keys.iter() {
            if bool::from(key.key.as_bytes().ct_eq(presented.as_bytes())) {
                matched = Some(key);
            }
        }
        matched
            .map(|key| (key.name.clone(), key.role))
            .ok_or_else(|| Status::unauthenticated("unknown API key"))
    }
}

/// Paths that need no key at all.
fn is_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
}

/// The role an RPC requires; anything not listed needs admin.
fn required_role(path: &str) -> Role {
    let method = path.rsplit('/').next().unwrap_or_default();
    if path.starts_with("/grpc.reflection.") {
        return Role::Reader;
    }
    match method {
        "GetTag"
        | "ListCategories"
        | "ListTags"
        | "GetTagStats"
        | "GetCustomer"
        | "ListCustomers"
        | "ListCustomerTags"
        | "GetTagHistory"
        | "GetJob"
        | "ListJobs"
        | "WatchJob"
        | "ListImporters"
        | "GetImportReport"
        | "ListPurchases"
        | "ListInteractions"
        | "ListDueFollowUps"
        | "GetCustomerMetrics"
        | "FindDuplicates"
        | "GetFieldHistory"
        | "GetSegment"
        | "ListSegments"
        | "CountSegment"
        | "CountCondition"
        | "ListSegmentMembers"
        | "StreamSegmentMembers"
        | "ExportSegment"
        | "CompareSegments"
        | "ValidateCondition"
        | "GetRule"
        | "ListRules"
        | "ListRuleRuns"
        | "PreviewRule" => Role::Reader,
        "CreateCategory" | "UpdateCategory" | "CreateTag" | "UpdateTag" | "CreateCustomer"
        | "UpdateCustomer" | "UpsertCustomers" | "AssignTags" | "RemoveTags"
        | "BatchAssignTags" | "RecordPurchases" | "RecordInteraction" => Role::Writer,
        _ => Role::Admin,
    }
}

fn authorize(keys: &KeyRing, path: &str, headers: &HeaderMap) -> Result<Option<Caller>, Status> {
    if is_public(path) {
        return Ok(None);
    }
    let (name, role) = keys.authenticate(headers)?;
    let required = required_role(path);
    if !role.allows(required) {
        return Err(Status::permission_denied(format!(
            "key {name:?} has role {}; {path} needs {}",
            role.as_str(),
            required.as_str()
        )));
    }
    Ok(Some(Caller { name }))
}

#[derive(Clone, Debug)]
pub(crate) struct RpcLayer {
    keys: KeyRing,
}

impl RpcLayer {
    pub(crate) fn new(keys: KeyRing) -> Self {
        Self { keys }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            keys: self.keys.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct RpcService<S> {
    inner: S,
    keys: KeyRing,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for RpcService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let path = request.uri().path().to_owned();
        let verdict = authorize(&self.keys, &path, request.headers());
        // The ready service must be the one called; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (caller, response) = match verdict {
                Err(status) => (None, status.into_http()),
                Ok(caller) => {
                    let name = caller.as_ref().map(|c| c.name.clone());
                    if let Some(caller) = caller {
                        request.extensions_mut().insert(caller);
                    }
                    (name, inner.call(request).await?)
                }
            };
            // Unary errors arrive trailers-only, with grpc-status in the headers;
            // success puts it in trailers, which a layer sees too late to log.
            let code = response
                .headers()
                .get("grpc-status")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<i32>().ok())
                .map_or(Code::Ok, Code::from_i32);
            let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let caller = caller.as_deref().unwrap_or("-");
            match rpc_log_level(&path, code) {
                tracing::Level::WARN => {
                    tracing::warn!(target: "tagd::rpc", method = %path, status = ?code, latency_us, caller, "rpc");
                }
                tracing::Level::INFO => {
                    tracing::info!(target: "tagd::rpc", method = %path, status = ?code, latency_us, caller, "rpc");
                }
                _ => {
                    tracing::debug!(target: "tagd::rpc", method = %path, status = ?code, latency_us, caller, "rpc");
                }
            }
            Ok(response)
        })
    }
}

/// The level of an RPC's log line. Every change and every refusal is worth a
/// line at the default level; a read that succeeded is not: at tens of
/// thousands of reads a second those lines cost a quarter of GetCustomer's
/// throughput on SQLite (docs/BENCHMARKS.md, session 10).
fn rpc_log_level(path: &str, code: Code) -> tracing::Level {
    match code {
        Code::Internal | Code::Unknown | Code::Unavailable | Code::DataLoss => tracing::Level::WARN,
        Code::Ok if required_role(path) == Role::Reader => tracing::Level::DEBUG,
        _ => tracing::Level::INFO,
    }
}

/// The name of the calling key, for history entries.
pub(crate) fn actor<T>(request: &tonic::Request<T>) -> String {
    request
        .extensions()
        .get::<Caller>()
        .map_or_else(|| ANONYMOUS.to_owned(), |caller| caller.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(vec![
            ApiKey {
                name: "bi".into(),
                key: "read-key".into(),
                role: Role::Reader,
            },
            ApiKey {
                name: "crm".into(),
                key: "write-key".into(),
                role: Role::Writer,
            },
        ])
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn keys_and_roles() {
        let keys = ring();
        let path = "/tagd.v1.TaggingService/AssignTags";
        assert_eq!(
            authorize(&keys, path, &HeaderMap::new())
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
        assert_eq!(
            authorize(&keys, path, &headers("Bearer nope"))
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
        assert_eq!(
            authorize(&keys, path, &headers("Basic x"))
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
        assert_eq!(
            authorize(&keys, path, &headers("Bearer read-key"))
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
        let caller = authorize(&keys, path, &headers("Bearer write-key"))
            .unwrap()
            .unwrap();
        assert_eq!(caller.name, "crm");
        let delete = "/tagd.v1.CustomerService/DeleteCustomer";
        assert_eq!(
            authorize(&keys, delete, &headers("Bearer write-key"))
                .unwrap_err()
                .code(),
            Code::PermissionDenied
        );
        assert!(
            authorize(&keys, "/grpc.health.v1.Health/Check", &HeaderMap::new())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn activity_records_need_a_writer_and_reads_a_reader() {
        for method in [
            "PurchaseService/RecordPurchases",
            "InteractionService/RecordInteraction",
        ] {
            assert_eq!(required_role(&format!("/tagd.v1.{method}")), Role::Writer);
        }
        for method in [
            "PurchaseService/ListPurchases",
            "InteractionService/ListInteractions",
            "InteractionService/ListDueFollowUps",
            "MetricsService/GetCustomerMetrics",
        ] {
            assert_eq!(required_role(&format!("/tagd.v1.{method}")), Role::Reader);
        }
    }

    #[test]
    fn field_history_is_read_and_cleansing_is_administered() {
        for (path, role) in [
            ("/tagd.v1.CustomerService/GetFieldHistory", Role::Reader),
            ("/tagd.v1.CleanseService/StartCleanse", Role::Admin),
            // A report lists customers' raw values: it goes with starting the job.
            ("/tagd.v1.CleanseService/GetCleanseReport", Role::Admin),
        ] {
            assert_eq!(required_role(path), role, "{path}");
        }
    }

    #[test]
    fn dedupe_is_administered_but_anyone_may_look_for_duplicates() {
        for (path, role) in [
            ("/tagd.v1.DedupeService/FindDuplicates", Role::Reader),
            ("/tagd.v1.DedupeService/MergeCustomers", Role::Admin),
            ("/tagd.v1.DedupeService/Unmerge", Role::Admin),
            ("/tagd.v1.DedupeService/StartDedupe", Role::Admin),
            ("/tagd.v1.DedupeService/ListCandidates", Role::Admin),
        ] {
            assert_eq!(required_role(path), role, "{path}");
        }
    }

    #[test]
    fn segments_are_read_by_readers_and_curated_by_admins() {
        for method in [
            "GetSegment",
            "ListSegments",
            "CountSegment",
            "CountCondition",
            "ListSegmentMembers",
            "StreamSegmentMembers",
            "ExportSegment",
            "CompareSegments",
            "ValidateCondition",
        ] {
            let path = format!("/tagd.v1.SegmentService/{method}");
            assert_eq!(required_role(&path), Role::Reader, "{path}");
        }
        for method in [
            "CreateSegment",
            "UpdateSegment",
            "DeleteSegment",
            "SnapshotSegment",
        ] {
            let path = format!("/tagd.v1.SegmentService/{method}");
            assert_eq!(required_role(&path), Role::Admin, "{path}");
        }
    }

    #[test]
    fn open_ring_admits_everyone_as_anonymous() {
        let caller = authorize(
            &KeyRing::default(),
            "/tagd.v1.TagService/DeleteTag",
            &HeaderMap::new(),
        );
        assert_eq!(caller.unwrap().unwrap().name, ANONYMOUS);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let text = format!("{:?}", ring());
        assert!(!text.contains("read-key"), "{text}");
    }

    #[test]
    fn successful_reads_log_at_debug_and_everything_else_louder() {
        let get = "/tagd.v1.CustomerService/GetCustomer";
        let assign = "/tagd.v1.TaggingService/AssignTags";
        assert_eq!(rpc_log_level(get, Code::Ok), tracing::Level::DEBUG);
        assert_eq!(rpc_log_level(get, Code::NotFound), tracing::Level::INFO);
        assert_eq!(rpc_log_level(get, Code::Internal), tracing::Level::WARN);
        assert_eq!(rpc_log_level(assign, Code::Ok), tracing::Level::INFO);
        assert_eq!(
            rpc_log_level(assign, Code::InvalidArgument),
            tracing::Level::INFO
        );
        assert_eq!(
            rpc_log_level(assign, Code::Unavailable),
            tracing::Level::WARN
        );
    }
}
