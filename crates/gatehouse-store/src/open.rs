use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::ports::{LOOK_AGAIN, Store, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Executor as _};

use crate::group_commit::FlowStarts;

use crate::sql::{PgStore, SqliteStore};

/// Batches of flow starts PostgreSQL writes at once, each on a connection of its own: while one waits for its
/// WAL flush (or for a row lock) the next can go. Measured at 32 clients (docs/benchmarks.md): one start per
/// transaction 717 initiations/s, one batch at a time 811/s, four 776/s.
const PG_FLOW_WRITERS: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub url: String,
    /// PostgreSQL schema (created if missing); `None` = the connection's default.
    pub schema: Option<String>,
    pub max_connections: u32,
    /// Apply pending migrations after connecting.
    pub migrate: bool,
    /// How long a statement waits for a lock another connection holds (SQLite busy timeout, PostgreSQL
    /// `lock_timeout`) before it fails as unavailable (503 + Retry-After).
    pub lock_wait: Duration,
}

impl OpenOptions {
    pub fn backend(&self) -> Result<Backend, StoreError> {
        if self.url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if self.url.starts_with("postgres://") || self.url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Other(format!("unsupported database URL `{}`", redact_url(&self.url))))
        }
    }
}

/// The connections of the admin search (`PgStore::search`): statements planned once, for any parameters, and never
/// compiled. A generic plan estimates a range of names at 0.5 % of the table, so at 10 M users its cost passes
/// `jit_above_cost` once `failed_attempts` holds rows, and PostgreSQL compiled 36 functions on every call: 50–80 ms
/// for a search that takes well under 1 ms (auto_explain, docs/benchmarks.md, eighth session). Opened when an
/// admin first searches; a quarter of the main pool's connections at most.
fn pg_search_pool(connect: &PgConnectOptions, max_connections: u32) -> sqlx::PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections.div_ceil(4).max(2))
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(connect.clone().options([("plan_cache_mode", "force_generic_plan"), ("jit", "off")]))
}

/// A SQLite connection idle this long is pinged before it is handed out; one in use more often is not.
const PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// The options of SQLite's pools. sqlx pings a connection each time it is taken from its pool, and again each time
/// it goes back: on SQLite a round trip to the connection's own thread, for every store call, on a file that cannot
/// hang up. Only a connection idle for longer than `PING_AFTER_IDLE` is pinged first. Measured (docs/benchmarks.md,
/// sixteenth session): per login 8 fewer switches onto SQLite's threads and 12 fewer on the runtime's; reset
/// initiations 1,072 / 1,109 per s against 972 / 778. PostgreSQL's pools keep the ping: the same change there
/// measured both slower and faster on a noisy machine (no result either way), and a connection to a server can go
/// stale while it waits in the pool.
fn sqlite_pool() -> SqlitePoolOptions {
    SqlitePoolOptions::new().test_before_acquire(false).before_acquire(|conn, meta| {
        Box::pin(async move {
            if meta.idle_for >= PING_AFTER_IDLE {
                sqlx::Connection::ping(conn).await?;
            }
            Ok(true)
        })
    })
}

/// The URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            let shown = if creds.contains(':') { format!("{user}:***") } else { user.to_owned() };
            format!("{}{shown}{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Applies the pending migrations on a connection of their own whose statements sqlx does not log. A migration can
/// take minutes on a large database, and `migrations::apply` logs each one and its time; sqlx would also warn of a
/// slow statement and print the migration's whole text.
async fn migrate<DB>(
    migrator: &sqlx::migrate::Migrator,
    connect: <DB::Connection as sqlx::Connection>::Options,
) -> Result<(), StoreError>
where
    DB: sqlx::Database,
    DB::Connection: sqlx::migrate::Migrate,
{
    use sqlx::ConnectOptions as _;
    let pool = sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(1)
        .connect_with(connect.disable_statement_logging())
        .await
        .map_err(unavailable)?;
    let applied = crate::migrations::apply(migrator, &pool).await;
    pool.close().await;
    applied.map_err(|e| StoreError::Other(format!("migration failed: {e}")))
}

/// Connects (creating the SQLite file and its directory if needed) and, if asked, migrates.
pub async fn open(options: &OpenOptions) -> Result<Arc<dyn Store>, StoreError> {
    match options.backend()? {
        Backend::Sqlite => {
            let connect = SqliteConnectOptions::from_str(&options.url)
                .map_err(|e| StoreError::Other(format!("bad SQLite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(options.lock_wait)
                .foreign_keys(true);
            if let Some(parent) = connect.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", parent.display())))?;
            }
            if options.migrate {
                migrate::<sqlx::Sqlite>(&crate::migrations::sqlite(), connect.clone()).await?;
            }
            let writer = sqlite_pool()
                .max_connections(1)
                .acquire_timeout(options.lock_wait.max(Duration::from_secs(10)))
                .connect_with(connect.clone())
                .await
                .map_err(unavailable)?;
            let pool = sqlite_pool()
                .max_connections(options.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(connect)
                .await
                .map_err(unavailable)?;
            let (events, _) = tokio::sync::broadcast::channel(256);
            let batch_writer = writer.clone();
            let flow_starts = FlowStarts::start(1, move |starts| {
                let writer = batch_writer.clone();
                async move { SqliteStore::write_flow_starts(&writer, starts).await }
            });
            let look_again = look_again_after_commits(&pool, events.clone());
            Ok(Arc::new(SqliteStore { search: pool.clone(), pool, writer, events, look_again, flow_starts }))
        }
        Backend::Postgres => {
            let mut connect = PgConnectOptions::from_str(&options.url)
                .map_err(|e| StoreError::Other(format!("bad PostgreSQL URL: {e}")))?;
            if let Some(schema) = &options.schema {
                // The schema name was validated by the config (lower-case letters, digits, _).
                let admin =
                    PgPoolOptions::new().max_connections(1).connect_with(connect.clone()).await.map_err(unavailable)?;
                admin
                    .execute(AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"")))
                    .await
                    .map_err(unavailable)?;
                admin.close().await;
                connect = connect.options([("search_path", schema.as_str())]);
            }
            connect = connect.options([("lock_timeout", options.lock_wait.as_millis().to_string())]);
            if options.migrate {
                migrate::<sqlx::Postgres>(&crate::migrations::postgres(), connect.clone()).await?;
            }
            let search = pg_search_pool(&connect, options.max_connections);
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(connect)
                .await
                .map_err(unavailable)?;
            let (events, _) = tokio::sync::broadcast::channel(256);
            let listener = relay_notifications(&pool, events.clone()).await?;
            let batch_writer = pool.clone();
            let flow_starts = FlowStarts::start(PG_FLOW_WRITERS, move |starts| {
                let writer = batch_writer.clone();
                async move { PgStore::write_flow_starts(&writer, starts).await }
            });
            Ok(Arc::new(PgStore { writer: pool.clone(), pool, search, events, listener, flow_starts }))
        }
    }
}

/// Listens on the approval events channel and relays every notification to this process's waiters, who read the
/// database only when told. A notification sent while the listener has no connection is lost, so when the
/// connection ends (`Ok(None)`, or an error) the relay sends [`LOOK_AGAIN`] at once and every second until a new
/// listener listens, and once more after: the waiters read the database, which holds whatever was decided meanwhile.
/// The listener does not reconnect by itself (`eager_reconnect` off): sqlx's own reconnection said nothing until it
/// had a connection, up to the pool's acquire timeout (10 s) while the database was unreachable.
async fn relay_notifications(
    pool: &sqlx::PgPool,
    events: tokio::sync::broadcast::Sender<String>,
) -> Result<tokio::task::AbortHandle, StoreError> {
    let mut listener = listen(pool).await.map_err(unavailable)?;
    let pool = pool.clone();
    let task = tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let _ = events.send(n.payload().to_owned());
                }
                Ok(None) => {
                    tracing::warn!("approval event listener lost its connection; waiters read the database meanwhile");
                    drop(listener);
                    listener = relisten(&pool, &events).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "approval event listener failed; waiters read the database meanwhile");
                    drop(listener);
                    listener = relisten(&pool, &events).await;
                }
            }
        }
    });
    Ok(task.abort_handle())
}

/// SQLite's approval events reach the waiters of this process only: another process on the same file (a second
/// `gatehouse serve`) changes it unannounced. So every second the store asks SQLite whether another connection
/// committed since it last asked (`PRAGMA data_version`, on a connection of its own) and, if one did and anyone
/// waits, sends [`LOOK_AGAIN`]. Waiters of an idle database read nothing; under writes they look once a second.
fn look_again_after_commits(
    pool: &sqlx::SqlitePool,
    events: tokio::sync::broadcast::Sender<String>,
) -> tokio::task::AbortHandle {
    let pool = pool.clone();
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut own: Option<sqlx::SqliteConnection> = None;
        let mut seen = None;
        loop {
            ticks.tick().await;
            if own.is_none() {
                own = pool.acquire().await.ok().map(sqlx::pool::PoolConnection::detach);
            }
            // Asked every second, waiters or not, so that a waiter's first second compares with the one before.
            let version = match own.as_mut() {
                Some(conn) => sqlx::query_scalar::<_, i64>("PRAGMA data_version").fetch_one(&mut *conn).await.ok(),
                None => None,
            };
            // Without an answer, waiters look anyway.
            if (version.is_none() || version != seen) && events.receiver_count() > 0 {
                let _ = events.send(LOOK_AGAIN.to_owned());
            }
            if version.is_none() {
                own = None;
            }
            seen = version;
        }
    });
    task.abort_handle()
}

async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.eager_reconnect(false);
    listener.listen(crate::sql::EVENTS_CHANNEL).await?;
    Ok(listener)
}

async fn relisten(pool: &sqlx::PgPool, events: &tokio::sync::broadcast::Sender<String>) -> sqlx::postgres::PgListener {
    let reconnect = async {
        loop {
            match listen(pool).await {
                Ok(listener) => break listener,
                Err(e) => {
                    tracing::warn!(error = %e, "approval event listener cannot reconnect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    };
    tokio::pin!(reconnect);
    // Ticks however long a connection attempt takes; the first at once.
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let listener = loop {
        tokio::select! {
            listener = &mut reconnect => break listener,
            _ = ticks.tick() => {
                let _ = events.send(LOOK_AGAIN.to_owned());
            }
        }
    };
    let _ = events.send(LOOK_AGAIN.to_owned());
    tracing::info!("approval event listener listening again");
    listener
}

/// Compile-time options of the bundled SQLite that cost throughput when connections read at once, each with what
/// it does; none with the flags of `.cargo/config.toml` (a build from outside this repository does not get them).
pub async fn sqlite_build_costs() -> Result<Vec<&'static str>, StoreError> {
    let options = sqlite_compile_options().await?;
    let mut costs = Vec::new();
    if options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT") {
        costs.push("ENABLE_MEMORY_MANAGEMENT: all connections share one page cache behind one mutex");
    }
    if !options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0") {
        costs.push("memory statistics on: a global mutex around every allocation");
    }
    Ok(costs)
}

/// The compile-time options of the SQLite library this binary links, as `PRAGMA compile_options` lists them.
async fn sqlite_compile_options() -> Result<Vec<String>, StoreError> {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await.map_err(unavailable)?;
    sqlx::query_scalar("PRAGMA compile_options").fetch_all(&mut conn).await.map_err(unavailable)
}

/// Which migrations the database has and which this build knows (`gatehouse doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub applied: Vec<i64>,
    pub known: Vec<i64>,
}

impl MigrationStatus {
    /// Known but not applied.
    pub fn pending(&self) -> Vec<i64> {
        self.known.iter().filter(|v| !self.applied.contains(v)).copied().collect()
    }

    /// Applied but unknown to this build (a newer node migrated the database).
    pub fn unknown(&self) -> Vec<i64> {
        self.applied.iter().filter(|v| !self.known.contains(v)).copied().collect()
    }
}

/// Reads the applied migrations without applying any.
pub async fn migration_status(options: &OpenOptions) -> Result<MigrationStatus, StoreError> {
    let sqlite = options.backend()? == Backend::Sqlite;
    let single = OpenOptions { max_connections: 2, migrate: false, ..options.clone() };
    let store = open(&single).await?;
    let applied = store.applied_migrations().await?;
    Ok(MigrationStatus { applied, known: crate::migrations::known(sqlite) })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gatehouse_core::ports::LOOK_AGAIN;

    use super::{pg_search_pool, redact_url, relay_notifications, sqlite_build_costs, sqlite_compile_options};

    /// The admin search's connections keep the one plan `plan_tests` checks, and the store's other settings.
    #[tokio::test]
    async fn the_search_connections_plan_once() {
        use std::str::FromStr as _;
        let connect = sqlx::postgres::PgConnectOptions::from_str(&crate::test_postgres::url())
            .unwrap()
            .options([("lock_timeout", "1234")]);
        let pool = pg_search_pool(&connect, 8);
        let (mode, jit, lock): (String, String, String) = sqlx::query_as(
            "SELECT current_setting('plan_cache_mode'), current_setting('jit'), current_setting('lock_timeout')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!((mode.as_str(), jit.as_str(), lock.as_str()), ("force_generic_plan", "off", "1234ms"));
        assert_eq!(pool.options().get_max_connections(), 2);
    }

    /// Waits until a notification sent after a [`LOOK_AGAIN`] arrives: one is sent after each (the first ones may
    /// come before the new listener listens), and [`LOOK_AGAIN`] must keep coming until one is heard. Other tests'
    /// servers NOTIFY on the same channel of the same database: their events are skipped.
    async fn heard_again(
        heard: &mut tokio::sync::broadcast::Receiver<String>,
        direct: &sqlx::PgPool,
        name: &str,
        deadline: tokio::time::Instant,
    ) {
        let mut sent = Vec::new();
        loop {
            let event = tokio::time::timeout_at(deadline, heard.recv()).await.expect("heard again").unwrap();
            if sent.contains(&event) {
                return;
            }
            if event == LOOK_AGAIN {
                let payload = format!("decided:{name}:{}", sent.len());
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(crate::sql::EVENTS_CHANNEL)
                    .bind(&payload)
                    .execute(direct)
                    .await
                    .unwrap();
                sent.push(payload);
            }
        }
    }

    /// A listener whose connection ends (a restart, a proxy's idle timeout, an operator) sends every waiter to the
    /// database, and listens again: what is notified afterwards arrives.
    #[tokio::test]
    async fn waiters_look_again_when_the_listener_loses_its_connection() {
        use std::str::FromStr as _;
        let name = format!("gh_relay_{}", std::process::id());
        let connect =
            sqlx::postgres::PgConnectOptions::from_str(&crate::test_postgres::url()).unwrap().application_name(&name);
        // The listener takes a connection of the pool's for good.
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(connect).await.unwrap();
        let (events, mut heard) = tokio::sync::broadcast::channel(1024);
        let relay = relay_notifications(&pool, events).await.unwrap();
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(ended, [true], "one listener");
        heard_again(&mut heard, &pool, &name, tokio::time::Instant::now() + Duration::from_secs(10)).await;
        relay.abort();
    }

    /// A TCP proxy in front of PostgreSQL that a test cuts (every connection ends, new ones are refused) and
    /// restores: a network outage, as the listener sees it.
    struct Proxy {
        addr: std::net::SocketAddr,
        upstream: String,
        serving: Option<tokio::task::JoinHandle<()>>,
    }

    impl Proxy {
        async fn start(upstream: String) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let serving = Some(tokio::spawn(Self::serve(listener, upstream.clone())));
            Self { addr, upstream, serving }
        }

        async fn serve(listener: tokio::net::TcpListener, upstream: String) {
            // Dropped with this task when the proxy is cut: every connection ends with it.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        }

        fn cut(&mut self) {
            if let Some(serving) = self.serving.take() {
                serving.abort();
            }
        }

        async fn restore(&mut self) {
            let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
            self.serving = Some(tokio::spawn(Self::serve(listener, self.upstream.clone())));
        }
    }

    /// While PostgreSQL cannot be reached, waiters are sent to the database at once and every second (where they
    /// find it down too, and answer so); once it can, the listener listens again and notifications arrive.
    #[tokio::test]
    async fn waiters_look_again_every_second_while_the_database_is_unreachable() {
        use std::str::FromStr as _;
        let name = format!("gh_outage_{}", std::process::id());
        let direct_options = sqlx::postgres::PgConnectOptions::from_str(&crate::test_postgres::url()).unwrap();
        let upstream = format!("{}:{}", direct_options.get_host(), direct_options.get_port());
        let mut proxy = Proxy::start(upstream).await;
        let through_proxy = direct_options.clone().host("127.0.0.1").port(proxy.addr.port()).application_name(&name);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(through_proxy)
            .await
            .unwrap();
        let direct =
            sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_with(direct_options).await.unwrap();
        let (events, mut heard) = tokio::sync::broadcast::channel(1024);
        let relay = relay_notifications(&pool, events).await.unwrap();

        proxy.cut();
        let outage = tokio::time::Instant::now();
        let mut looks = 0;
        while looks < 3 {
            // At once, then every second: well before the pool gives up acquiring a connection (10 s, as the store's).
            let event = tokio::time::timeout_at(outage + Duration::from_secs(5), heard.recv())
                .await
                .expect("LOOK_AGAIN every second")
                .unwrap();
            if event == LOOK_AGAIN {
                looks += 1;
            }
        }
        let unreachable: Vec<String> =
            sqlx::query_scalar("SELECT application_name::text FROM pg_stat_activity WHERE application_name = $1")
                .bind(&name)
                .fetch_all(&direct)
                .await
                .unwrap();
        assert_eq!(unreachable, Vec::<String>::new(), "no connection through the proxy while it is cut");

        proxy.restore().await;
        heard_again(&mut heard, &direct, &name, tokio::time::Instant::now() + Duration::from_secs(20)).await;
        relay.abort();
        pool.close().await;
        direct.close().await;
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact_url("postgres://app:s3cret@db:5432/x"), "postgres://app:***@db:5432/x");
        assert_eq!(redact_url("postgres://postgres@127.0.0.1/test"), "postgres://postgres@127.0.0.1/test");
        assert_eq!(redact_url("sqlite://./data/g.db"), "sqlite://./data/g.db");
    }

    /// `.cargo/config.toml` builds the bundled SQLite without a page cache shared by all connections behind one
    /// mutex, and without memory statistics behind another; a build that lost those flags fails here.
    #[tokio::test]
    async fn sqlite_is_built_with_a_page_cache_per_connection() {
        assert_eq!(sqlite_build_costs().await.unwrap(), Vec::<&str>::new());
        // The flags take nothing away that the store's readers and writer on several threads rely on.
        let options = sqlite_compile_options().await.unwrap();
        assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
    }
}
