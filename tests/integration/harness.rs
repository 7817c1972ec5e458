//! Starts the real `tagd` binary on a free port over a fresh database (SQLite
//! file or a new MariaDB database) and hands out authenticated gRPC clients.

use std::process::Stdio;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncMysqlConnection, SimpleAsyncConnection};
use rand::Rng;
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
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
}

/// Who a client calls as: one configured key per role, or none at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    Admin,
    Writer,
    Reader,
    Nobody,
    Stranger,
}

pub const ADMIN_KEY: &str = "admin-key-0123456789";
pub const WRITER_KEY: &str = "writer-key-0123456789";
pub const READER_KEY: &str = "reader-key-0123456789";

/// The MariaDB server tests create their databases on.
fn mysql_base_url() -> String {
    std::env::var("MYSQL_TEST_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned())
}

/// A test database that is dropped when the test ends.
pub struct Database {
    pub url: String,
    mysql_name: Option<String>,
    _dir: tempfile::TempDir,
}

impl Database {
    pub async fn fresh(backend: Backend) -> Database {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Database {
                url: format!("sqlite://{}", dir.path().join("tagd.db").display()),
                mysql_name: None,
                _dir: dir,
            },
            Backend::Mysql => {
                let name = format!("tagd_test_{:016x}", rand::rng().random::<u64>());
                let base = mysql_base_url();
                let mut conn = AsyncMysqlConnection::establish(&format!("{base}/mysql"))
                    .await
                    .unwrap_or_else(|e| {
                        panic!("MariaDB must run at {base} for the mysql tests: {e}")
                    });
                conn.batch_execute(&format!(
                    "CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
                ))
                .await
                .expect("create test database");
                Database {
                    url: format!("{base}/{name}"),
                    mysql_name: Some(name),
                    _dir: dir,
                }
            }
        }
    }
}

impl Database {
    /// Another handle on the same database, for a second server over it
    /// (its own folder for the config file; dropping it drops nothing).
    pub fn shared(&self) -> Database {
        Database {
            url: self.url.clone(),
            mysql_name: None,
            _dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Kills every MariaDB connection open to this database (as a server restart would).
    pub async fn kill_mysql_connections(&self) -> usize {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;

        #[derive(QueryableByName)]
        struct Process {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            id: i64,
        }

        let name = self.mysql_name.as_deref().expect("a MariaDB test database");
        let mut admin = AsyncMysqlConnection::establish(&format!("{}/mysql", mysql_base_url()))
            .await
            .unwrap();
        let processes: Vec<Process> = diesel::sql_query(
            "SELECT CAST(id AS SIGNED) AS id FROM information_schema.processlist WHERE db = ?",
        )
        .bind::<diesel::sql_types::Text, _>(name)
        .load(&mut admin)
        .await
        .unwrap();
        for process in &processes {
            let _ = admin.batch_execute(&format!("KILL {}", process.id)).await;
        }
        processes.len()
    }
}

impl Database {
    /// How many rows of `table` belong to the customer (read beside the running server).
    pub async fn count_rows(&self, table: &str, customer_id: &str) -> i64 {
        use diesel::prelude::*;
        use diesel::sql_types::{BigInt, Text};

        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }

        let query = diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE customer_id = ?"
        ))
        .bind::<Text, _>(customer_id.to_owned());
        let count: Count = match &self.mysql_name {
            Some(_) => {
                let mut conn = AsyncMysqlConnection::establish(&self.url).await.unwrap();
                diesel_async::RunQueryDsl::get_result(query, &mut conn)
                    .await
                    .unwrap()
            }
            None => {
                let path = self.url.strip_prefix("sqlite://").unwrap();
                let mut conn = SqliteConnection::establish(path).unwrap();
                RunQueryDsl::get_result(query, &mut conn).unwrap()
            }
        };
        count.n
    }
}

impl Database {
    /// Runs one statement with text parameters beside the running server: how a scenario
    /// plants data the API would never write (a hand-edited row).
    pub async fn execute(&self, sql: &str, params: &[&str]) -> usize {
        use diesel::sql_types::Text;

        match &self.mysql_name {
            Some(_) => {
                let mut query = diesel::sql_query(sql).into_boxed::<diesel::mysql::Mysql>();
                for param in params {
                    query = query.bind::<Text, _>((*param).to_owned());
                }
                let mut conn = AsyncMysqlConnection::establish(&self.url).await.unwrap();
                diesel_async::RunQueryDsl::execute(query, &mut conn)
                    .await
                    .unwrap()
            }
            None => {
                use diesel::{Connection, RunQueryDsl};
                let mut query = diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>();
                for param in params {
                    query = query.bind::<Text, _>((*param).to_owned());
                }
                let path = self.url.strip_prefix("sqlite://").unwrap();
                let mut conn = diesel::SqliteConnection::establish(path).unwrap();
                // The server may be writing: wait for its lock rather than fail.
                diesel::sql_query("PRAGMA busy_timeout = 5000")
                    .execute(&mut conn)
                    .unwrap();
                query.execute(&mut conn).unwrap()
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let Some(name) = self.mysql_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime; use a thread with its own.
        let base = mysql_base_url();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = AsyncMysqlConnection::establish(&format!("{base}/mysql"))
                    .await
                    .ok()?;
                conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// Options for starting a server.
pub struct Options {
    /// Configure the three role keys (default) or run open.
    pub with_keys: bool,
    /// Extra TOML lines for the config file.
    pub extra_config: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            with_keys: true,
            extra_config: String::new(),
        }
    }
}

pub struct TestServer {
    child: Child,
    pub database: Database,
    channel: Channel,
    /// `http://127.0.0.1:<port>`, for clients other than the gRPC ones here (tagctl).
    pub url: String,
}

pub fn tagd_binary() -> &'static str {
    env!("CARGO_BIN_EXE_tagd")
}

/// Builds the workspace's plugin libraries (once per run) next to `tagd`, where
/// the server looks for them by default: `cargo test --workspace` has built them
/// already, `cargo test -p tagd` has not.
pub fn build_plugins() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo.arg("build").current_dir(env!("CARGO_MANIFEST_DIR"));
        if std::path::Path::new(tagd_binary())
            .parent()
            .is_some_and(|dir| dir.ends_with("release"))
        {
            cargo.arg("--release");
        }
        for name in [
            "tagd-plugin-spreadsheet",
            "tagd-plugin-orders",
            "tagd-plugin-wecom",
            "tagd-plugin-vcard",
            "tagd-plugin-test-crash",
            "tagd-plugin-test-wrong-abi",
        ] {
            cargo.args(["-p", name]);
        }
        let status = cargo.status().expect("run cargo build for the plugins");
        assert!(status.success(), "cargo build of the plugins failed");
    });
}

/// A `tagd` command with no inherited `TAGD_*` settings.
pub fn tagd_command() -> Command {
    let mut command = Command::new(tagd_binary());
    for (key, _) in std::env::vars() {
        if key.starts_with("TAGD_") {
            command.env_remove(key);
        }
    }
    command.env_remove("RUST_BACKTRACE");
    command
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> TestServer {
        let database = Database::fresh(backend).await;
        Self::start_on(database, options).await
    }

    pub async fn start_on(database: Database, options: Options) -> TestServer {
        let config_path = database._dir.path().join("tagd.toml");
        let mut config = format!(
            "listen = \"127.0.0.1:0\"\ndatabase_url = \"{}\"\npool_size = 4\nlog_level = \"warn\"\nexpiry_sweep_secs = 1\n{}\n",
            database.url, options.extra_config
        );
        if options.with_keys {
            for (name, key, role) in [
                ("ops", ADMIN_KEY, "admin"),
                ("crm", WRITER_KEY, "writer"),
                ("bi", READER_KEY, "reader"),
            ] {
                config.push_str(&format!(
                    "[[auth.keys]]\nname = \"{name}\"\nkey = \"{key}\"\nrole = \"{role}\"\n"
                ));
            }
        }
        std::fs::write(&config_path, config).expect("write config");
        let mut child = tagd_command()
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tagd");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("tagd did not start within 60 s")
            .expect("read tagd stdout")
            .expect("tagd exited before listening");
        let address = line
            .strip_prefix("tagd listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from tagd: {line}"))
            .to_owned();
        let url = format!("http://{address}");
        let channel = Channel::from_shared(url.clone())
            .expect("uri")
            .connect()
            .await
            .expect("connect to tagd");
        TestServer {
            child,
            database,
            channel,
            url,
        }
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn tags(&self) -> TagServiceClient<InterceptedService<Channel, Auth>> {
        self.tags_as(As::Admin)
    }

    pub fn tags_as(&self, who: As) -> TagServiceClient<InterceptedService<Channel, Auth>> {
        TagServiceClient::with_interceptor(self.channel(), Auth(who))
    }

    pub fn customers(&self) -> CustomerServiceClient<InterceptedService<Channel, Auth>> {
        self.customers_as(As::Admin)
    }

    pub fn customers_as(
        &self,
        who: As,
    ) -> CustomerServiceClient<InterceptedService<Channel, Auth>> {
        CustomerServiceClient::with_interceptor(self.channel(), Auth(who))
            .max_decoding_message_size(64 << 20)
    }

    pub fn tagging(&self) -> TaggingServiceClient<InterceptedService<Channel, Auth>> {
        self.tagging_as(As::Admin)
    }

    pub fn tagging_as(&self, who: As) -> TaggingServiceClient<InterceptedService<Channel, Auth>> {
        TaggingServiceClient::with_interceptor(self.channel(), Auth(who))
            .max_encoding_message_size(64 << 20)
    }

    pub fn imports_as(&self, who: As) -> ImportServiceClient<InterceptedService<Channel, Auth>> {
        ImportServiceClient::with_interceptor(self.channel(), Auth(who))
    }

    pub fn imports(&self) -> ImportServiceClient<InterceptedService<Channel, Auth>> {
        self.imports_as(As::Admin)
    }

    pub fn dedupe(&self) -> DedupeServiceClient<InterceptedService<Channel, Auth>> {
        self.dedupe_as(As::Admin)
    }

    pub fn dedupe_as(&self, who: As) -> DedupeServiceClient<InterceptedService<Channel, Auth>> {
        DedupeServiceClient::with_interceptor(self.channel(), Auth(who))
            .max_decoding_message_size(64 << 20)
    }

    pub fn cleanse(&self) -> CleanseServiceClient<InterceptedService<Channel, Auth>> {
        self.cleanse_as(As::Admin)
    }

    pub fn cleanse_as(&self, who: As) -> CleanseServiceClient<InterceptedService<Channel, Auth>> {
        CleanseServiceClient::with_interceptor(self.channel(), Auth(who))
    }

    pub fn jobs(&self) -> JobServiceClient<InterceptedService<Channel, Auth>> {
        JobServiceClient::with_interceptor(self.channel(), Auth(As::Admin))
    }

    pub fn purchases_as(
        &self,
        who: As,
    ) -> PurchaseServiceClient<InterceptedService<Channel, Auth>> {
        PurchaseServiceClient::with_interceptor(self.channel(), Auth(who))
            .max_encoding_message_size(64 << 20)
    }

    pub fn purchases(&self) -> PurchaseServiceClient<InterceptedService<Channel, Auth>> {
        self.purchases_as(As::Admin)
    }

    pub fn interactions_as(
        &self,
        who: As,
    ) -> InteractionServiceClient<InterceptedService<Channel, Auth>> {
        InteractionServiceClient::with_interceptor(self.channel(), Auth(who))
    }

    pub fn interactions(&self) -> InteractionServiceClient<InterceptedService<Channel, Auth>> {
        self.interactions_as(As::Admin)
    }

    pub fn segments(&self) -> SegmentServiceClient<InterceptedService<Channel, Auth>> {
        self.segments_as(As::Admin)
    }

    pub fn segments_as(&self, who: As) -> SegmentServiceClient<InterceptedService<Channel, Auth>> {
        SegmentServiceClient::with_interceptor(self.channel(), Auth(who))
    }

    pub fn rules(&self) -> RuleServiceClient<InterceptedService<Channel, Auth>> {
        self.rules_as(As::Admin)
    }

    pub fn rules_as(&self, who: As) -> RuleServiceClient<InterceptedService<Channel, Auth>> {
        RuleServiceClient::with_interceptor(self.channel(), Auth(who))
    }

    pub fn metrics_as(&self, who: As) -> MetricsServiceClient<InterceptedService<Channel, Auth>> {
        MetricsServiceClient::with_interceptor(self.channel(), Auth(who))
    }

    /// Stops the server with SIGTERM and returns its exit status.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, Database) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("tagd did not stop within 30 s of SIGTERM")
            .expect("wait");
        (exit, self.database)
    }
}

#[derive(Clone)]
pub struct Auth(pub As);

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let key = match self.0 {
            As::Admin => Some(ADMIN_KEY),
            As::Writer => Some(WRITER_KEY),
            As::Reader => Some(READER_KEY),
            As::Stranger => Some("not-a-configured-key-at-all"),
            As::Nobody => None,
        };
        if let Some(key) = key {
            let value: MetadataValue<_> = format!("Bearer {key}").parse().expect("header");
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// Asserts that a call failed with `code` and a message containing `needle`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: tonic::Code,
    needle: &str,
) {
    match result {
        Ok(value) => panic!("expected {code:?} containing {needle:?}, got Ok({value:?})"),
        Err(status) => {
            assert_eq!(
                status.code(),
                code,
                "wrong code; message: {}",
                status.message()
            );
            assert!(
                status.message().contains(needle),
                "message {:?} should contain {needle:?}",
                status.message()
            );
        }
    }
}

/// Generates one `#[tokio::test]` per backend for each scenario `fn name(Backend)`.
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Sqlite).await;
                }
            )+
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Mysql).await;
                }
            )+
        }
    };
}

pub(crate) use backend_tests;
