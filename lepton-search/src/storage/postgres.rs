//! PostgreSQL storage: one study shared by workers on many machines, around a real database.
//!
//! One file though long: its schema and migrations, the statements each trial runs, the pooled
//! connection that prepares them, and the `Storage` trait's operations over them, which a
//! reader follows from one to the next (TLS is `postgres_tls`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postgres::Statement;
use postgres::types::ToSql;
use r2d2::{ManageConnection, Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::names::Names;
use super::postgres_tls::TlsUrl;
use super::trial_rows::TrialRows;
use lepton_core::{
    Direction, Distribution, Error, FrozenTrial, ParamValue, RETRIES_ATTR, RETRY_OF_ATTR, Result,
    STALE_ATTR, Storage, TrialState, check_finish, check_param, check_report,
};

/// The schema version this build writes; older databases are migrated, newer ones refused.
pub const PG_SCHEMA_VERSION: i32 = 6;

/// Serializes concurrent migrations (a transaction-scoped advisory lock).
const MIGRATION_LOCK: i64 = 0x6c65_7074_6f6e; // "lepton"

/// Version 2: a heartbeat per trial, on the server's clock (so workers' clocks never matter).
const SCHEMA_V2: &str =
    "ALTER TABLE lepton_trials ADD COLUMN heartbeat TIMESTAMPTZ NOT NULL DEFAULT now();";

/// Version 3: fixed parameters of enqueued (waiting) trials.
const SCHEMA_V3: &str = "
CREATE TABLE lepton_enqueued_params (
    study TEXT NOT NULL,
    number BIGINT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (study, number, name),
    FOREIGN KEY (study, number) REFERENCES lepton_trials(study, number) ON DELETE CASCADE
);";

/// Version 4: an identity per study (so a worker's cache of finished trials never outlives
/// a study deleted and created again under the same name), and an index of failed trials
/// (a budgeted creation counts the trials that are not failed).
const SCHEMA_V4: &str = "
ALTER TABLE lepton_studies ADD COLUMN id BIGSERIAL;
CREATE INDEX lepton_trials_failed ON lepton_trials (study) WHERE state = 'failed';";

/// Version 5: indexes of waiting and running trials, so that claiming an enqueued trial and
/// sweeping stale ones cost the same in a study of a million trials as in a new one.
const SCHEMA_V5: &str = "
CREATE INDEX lepton_trials_waiting ON lepton_trials (study, number) WHERE state = 'waiting';
CREATE INDEX lepton_trials_running ON lepton_trials (study, heartbeat) WHERE state = 'running';";

/// Version 6: trials' blobs (results too large for a user attribute).
const SCHEMA_V6: &str = "
CREATE TABLE lepton_trial_blobs (
    study TEXT NOT NULL,
    number BIGINT NOT NULL,
    key TEXT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (study, number, key),
    FOREIGN KEY (study, number) REFERENCES lepton_trials(study, number) ON DELETE CASCADE
);";

/// The migrations, in order: migration `i` takes a database from version `i` to `i + 1`.
const MIGRATIONS: [&str; 6] = [
    SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5, SCHEMA_V6,
];

const SCHEMA_V1: &str = "
CREATE TABLE lepton_studies (
    name TEXT PRIMARY KEY,
    direction TEXT NOT NULL,
    next_number BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE lepton_trials (
    study TEXT NOT NULL REFERENCES lepton_studies(name) ON DELETE CASCADE,
    number BIGINT NOT NULL,
    state TEXT NOT NULL,
    value DOUBLE PRECISION,
    PRIMARY KEY (study, number)
);
CREATE TABLE lepton_params (
    study TEXT NOT NULL,
    number BIGINT NOT NULL,
    name TEXT NOT NULL,
    distribution TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (study, number, name),
    FOREIGN KEY (study, number) REFERENCES lepton_trials(study, number) ON DELETE CASCADE
);
CREATE TABLE lepton_intermediate_values (
    study TEXT NOT NULL,
    number BIGINT NOT NULL,
    step BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (study, number, step),
    FOREIGN KEY (study, number) REFERENCES lepton_trials(study, number) ON DELETE CASCADE
);
CREATE TABLE lepton_user_attrs (
    study TEXT NOT NULL,
    number BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (study, number, key),
    FOREIGN KEY (study, number) REFERENCES lepton_trials(study, number) ON DELETE CASCADE
);
";

/// Errors of the PostgreSQL storage, wrapped into `lepton_core::Error::Stage`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// The server refused an operation or could not be reached.
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    /// No pooled connection could be had.
    #[error("postgres connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// The database was written by a newer Lepton.
    #[error("schema version {0} is newer than this build's {PG_SCHEMA_VERSION}")]
    NewerSchema(i32),
    /// A stored value that does not parse.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A schema name that is not a plain identifier.
    #[error("invalid schema name `{0}`: use letters, digits and `_`")]
    InvalidSchema(String),
    /// TLS could not be set up as the URL's `sslmode` asks: a bad setting, an unreadable root
    /// certificate, a server without TLS under `require`, or a certificate that fails the
    /// checks of `verify-ca` or `verify-full`.
    #[error("postgres TLS: {0}")]
    Tls(String),
}

fn pg(e: impl Into<PostgresError>) -> Error {
    Error::stage(e.into())
}

// Every statement a worker runs per trial is one of these, prepared once per connection (no
// parsing or planning per call) and, except the read of a study, a single statement in its own
// implicit transaction: the row locks they take and PostgreSQL's re-check of a locked row
// (EvalPlanQual) make each one atomic against concurrent workers.

/// Creates a running trial: takes the next number from the study's counter (its row lock
/// orders concurrent creators) and inserts the trial, in one statement.
const CREATE_TRIAL: &str = "
WITH n AS (UPDATE lepton_studies SET next_number = next_number + 1 WHERE name = $1
           RETURNING next_number - 1 AS number)
INSERT INTO lepton_trials (study, number, state) SELECT $1, number, 'running' FROM n
RETURNING number";

/// As [`CREATE_TRIAL`], only while the study holds fewer than `$2` trials that are not failed.
/// The counter's row is re-checked at its latest version when another creator held it; the
/// count of failed trials may be a moment old, which can only under-count room (a failed trial
/// stays failed), so the limit is never passed.
const CREATE_TRIAL_WITHIN: &str = "
WITH n AS (UPDATE lepton_studies SET next_number = next_number + 1
           WHERE name = $1 AND next_number
               - (SELECT count(*) FROM lepton_trials WHERE study = $1 AND state = 'failed') < $2
           RETURNING next_number - 1 AS number)
INSERT INTO lepton_trials (study, number, state) SELECT $1, number, 'running' FROM n
RETURNING number";

/// Claims the oldest waiting trial (SKIP LOCKED: concurrent claimers each get another one),
/// and says whether the study exists.
const CLAIM_WAITING: &str = "
WITH c AS (UPDATE lepton_trials SET state = 'running', heartbeat = now()
           WHERE study = $1 AND number = (SELECT number FROM lepton_trials
               WHERE study = $1 AND state = 'waiting' ORDER BY number LIMIT 1
               FOR UPDATE SKIP LOCKED)
           RETURNING number)
SELECT EXISTS (SELECT 1 FROM lepton_studies WHERE name = $1), (SELECT number FROM c)";

const ENQUEUED_PARAMS: &str =
    "SELECT name, value FROM lepton_enqueued_params WHERE study = $1 AND number = $2";

/// Fails the running trials whose heartbeat is older than `$2` seconds (on the server's
/// clock), marking each with the stale attribute (`$3`), and says whether the study exists.
const FAIL_STALE: &str = "
WITH f AS (UPDATE lepton_trials SET state = 'failed' WHERE study = $1 AND state = 'running'
           AND heartbeat < now() - make_interval(secs => $2) RETURNING number),
m AS (INSERT INTO lepton_user_attrs (study, number, key, value)
      SELECT $1, number, $3, 'true' FROM f
      ON CONFLICT (study, number, key) DO UPDATE SET value = EXCLUDED.value)
SELECT EXISTS (SELECT 1 FROM lepton_studies WHERE name = $1), ARRAY(SELECT number FROM f)";

/// Writes to a trial only while it is running: the trial's row is share-locked, so a
/// concurrent finish waits for the write or, if it came first, makes the write find nothing.
const SET_PARAM: &str = "
INSERT INTO lepton_params (study, number, name, distribution, value)
SELECT study, number, $3, $4, $5 FROM lepton_trials
WHERE study = $1 AND number = $2 AND state = 'running' FOR SHARE
ON CONFLICT (study, number, name)
DO UPDATE SET distribution = EXCLUDED.distribution, value = EXCLUDED.value";

const SET_USER_ATTR: &str = "
INSERT INTO lepton_user_attrs (study, number, key, value)
SELECT study, number, $3, $4 FROM lepton_trials
WHERE study = $1 AND number = $2 AND state IN ('waiting', 'running') FOR SHARE
ON CONFLICT (study, number, key) DO UPDATE SET value = EXCLUDED.value";

const SET_BLOB: &str = "
INSERT INTO lepton_trial_blobs (study, number, key, bytes)
SELECT study, number, $3, $4 FROM lepton_trials
WHERE study = $1 AND number = $2 AND state IN ('waiting', 'running') FOR SHARE
ON CONFLICT (study, number, key) DO UPDATE SET bytes = EXCLUDED.bytes";

const READ_BLOB: &str =
    "SELECT bytes FROM lepton_trial_blobs WHERE study = $1 AND number = $2 AND key = $3";

const REPORT: &str = "
INSERT INTO lepton_intermediate_values (study, number, step, value)
SELECT study, number, $3, $4 FROM lepton_trials
WHERE study = $1 AND number = $2 AND state = 'running' FOR SHARE
ON CONFLICT (study, number, step) DO UPDATE SET value = EXCLUDED.value";

const HEARTBEAT: &str = "UPDATE lepton_trials SET heartbeat = now() \
                         WHERE study = $1 AND number = $2 AND state = 'running'";

const FINISH: &str = "UPDATE lepton_trials SET state = $3, value = $4 \
                      WHERE study = $1 AND number = $2 AND state = 'running'";

const TRIAL_STATE: &str = "SELECT state FROM lepton_trials WHERE study = $1 AND number = $2";

const STUDY_ID: &str = "SELECT id FROM lepton_studies WHERE name = $1";

const READ_TRIALS: &str = "SELECT number, state, value FROM lepton_trials \
                           WHERE study = $1 AND number >= $2 ORDER BY number";
const READ_PARAMS: &str = "SELECT number, name, distribution, value FROM lepton_params \
                           WHERE study = $1 AND number >= $2";
const READ_REPORTS: &str = "SELECT number, step, value FROM lepton_intermediate_values \
                            WHERE study = $1 AND number >= $2";
const READ_ATTRS: &str = "SELECT number, key, value FROM lepton_user_attrs \
                          WHERE study = $1 AND number >= $2";

/// A pooled connection and the statements prepared on it.
struct Conn {
    client: postgres::Client,
    prepared: HashMap<&'static str, Statement>,
}

impl Conn {
    /// `sql`, prepared on this connection the first time it is asked for.
    fn prepared(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).map_err(pg)?;
        self.prepared.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Runs prepared statement `sql`, returning its rows.
    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>> {
        let statement = self.prepared(sql)?;
        self.client.query(&statement, params).map_err(pg)
    }

    /// Runs prepared statement `sql`, returning how many rows it changed.
    fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.prepared(sql)?;
        self.client.execute(&statement, params).map_err(pg)
    }

    /// Why a write to trial `number` that found no running (or waiting) trial did nothing:
    /// the study or the trial is unknown, or the trial is in another state.
    fn refusal(&mut self, study: &str, number: u64, to: TrialState) -> Error {
        let rows = match self.query(TRIAL_STATE, &[&study, &(number as i64)]) {
            Ok(rows) => rows,
            Err(e) => return e,
        };
        let Some(row) = rows.first() else {
            return match self.query(STUDY_ID, &[&study]) {
                Ok(found) if found.is_empty() => Error::UnknownStudy(study.to_owned()),
                Ok(_) => Error::UnknownTrial {
                    study: study.to_owned(),
                    number,
                },
                Err(e) => e,
            };
        };
        let state: String = row.get(0);
        match TrialState::parse(&state) {
            Some(from) => Error::IllegalTransition { number, from, to },
            None => pg(PostgresError::Corrupt(format!("state `{state}`"))),
        }
    }
}

/// Opens connections with the storage's search path; each keeps its prepared statements.
struct Manager {
    inner: PostgresConnectionManager<MakeRustlsConnect>,
    schema: String,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<Conn, postgres::Error> {
        let mut client = self.inner.connect()?;
        client.batch_execute(&format!("SET search_path TO {}", self.schema))?;
        Ok(Conn {
            client,
            prepared: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> std::result::Result<(), postgres::Error> {
        self.inner.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// A study storage in a PostgreSQL database, shared by any number of worker processes on any
/// number of machines. Trial numbers come from a per-study counter updated in the same
/// statement as the insert, so they stay unique and contiguous under concurrency; every write
/// to a trial checks its state under a row lock.
///
/// Finished trials never change, so each storage keeps the ones it has read: reading a study
/// fetches only the trials from the first one not known to be finished on (Optuna's
/// `_CachedStorage` idea), and a long study's `ask` reads a short window, not the whole study.
pub struct PostgresStorage {
    pool: Pool<Manager>,
    finished: Mutex<HashMap<String, FinishedPrefix>>,
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// The longest run of finished trials from trial 0 that a storage has read, for one study.
#[derive(Debug, Default)]
struct FinishedPrefix {
    /// The study's identity when they were read.
    study_id: i64,
    trials: Vec<Arc<FrozenTrial>>,
    /// The parameter names those trials use, shared with the trials read after them.
    names: Names,
}

impl PostgresStorage {
    /// Connects to `url` (e.g. `postgres://postgres@127.0.0.1:5432/test`) and migrates the
    /// schema in the `public` schema.
    ///
    /// TLS (rustls) follows the URL's `sslmode`, as libpq: `disable`; `prefer` (the default:
    /// TLS when the server offers it); `require` (TLS or no connection, the certificate
    /// unchecked: encrypted, but open to a man in the middle); `verify-ca` (a certificate
    /// from a trusted authority) and `verify-full` (and issued for the host). The trusted
    /// authorities are those of the PEM file `sslrootcert=PATH`, else the Mozilla roots. A
    /// TLS failure is a [`PostgresError::Tls`] at once; an unreachable server is retried for
    /// 30 s.
    pub fn connect(url: &str) -> Result<Self> {
        Self::connect_in_schema(url, "public")
    }

    /// Like [`connect`](Self::connect), with the tables in database schema `schema` (created
    /// if missing): several independent storages can share one database.
    pub fn connect_in_schema(url: &str, schema: &str) -> Result<Self> {
        if schema.is_empty()
            || !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(pg(PostgresError::InvalidSchema(schema.to_owned())));
        }
        let tls = TlsUrl::parse(url).map_err(pg)?;
        let mut config: postgres::Config = tls.url.parse().map_err(pg)?;
        // Without one, a connection to a host that drops packets waits for the system's TCP
        // timeout (minutes) before the pool's 30 s even begin.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let manager = Manager {
            inner: PostgresConnectionManager::new(config, tls.connector().map_err(pg)?),
            schema: schema.to_owned(),
        };
        // The first connection is tried here, so that a TLS failure, which no retry mends,
        // is said at once rather than after the pool's 30 s of retries. tokio-postgres has
        // no public error kind: its TLS errors are known by their message (the TLS test
        // against the test server would catch a change).
        let first = match manager.connect() {
            Ok(conn) => Some(conn),
            Err(e) if e.to_string().starts_with("error performing TLS handshake") => {
                return Err(pg(PostgresError::Tls(e.to_string())));
            }
            Err(_) => None,
        };
        // A worker needs two connections at most (its trial and its heartbeat), opened when
        // first needed rather than a pool's worth each: many workers share one server.
        let pool = Pool::builder()
            .max_size(4)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(30))
            .error_handler(Box::new(LogRetries))
            .build_unchecked(manager);
        let storage = PostgresStorage {
            pool,
            finished: Mutex::new(HashMap::new()),
        };
        match first {
            Some(mut conn) => migrate(&mut conn.client, schema)?,
            None => migrate(&mut storage.conn()?.client, schema)?,
        }
        Ok(storage)
    }

    /// Runs `op`, again while its connection is lost, for up to [`RECONNECT_WINDOW`]: the
    /// pool drops the broken connection and opens a new one (waiting for a restarting
    /// server). Every operation may be repeated: reads and upserts are idempotent, a finish
    /// that had committed finds its trial finished (and counts as done), a claim that had
    /// committed finds another trial the second time, a trial created twice leaves one
    /// running trial that the heartbeat rule fails, and a configuration enqueued twice runs
    /// twice.
    fn retrying<T>(&self, mut op: impl FnMut() -> Result<T>) -> Result<T> {
        let started = std::time::Instant::now();
        loop {
            match op() {
                Err(e) if connection_lost(&e) && started.elapsed() < RECONNECT_WINDOW => {
                    tracing::warn!(error = %e, "postgres connection lost; trying again");
                    std::thread::sleep(Duration::from_millis(200));
                }
                outcome => return outcome,
            }
        }
    }

    fn conn(&self) -> Result<PooledConnection<Manager>> {
        self.pool.get().map_err(pg)
    }

    fn lock_finished(&self) -> std::sync::MutexGuard<'_, HashMap<String, FinishedPrefix>> {
        // Every change to the map is one insert or remove: it is consistent after a panic.
        self.finished.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a write to trial `number` of `study` that changes one row if the trial is in a
    /// state that takes it; if it changed nothing, says why.
    fn trial_write(
        &self,
        study: &str,
        number: u64,
        to: TrialState,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<()> {
        let mut conn = self.conn()?;
        if conn.execute(sql, params)? == 1 {
            return Ok(());
        }
        Err(conn.refusal(study, number, to))
    }
}

/// Creates `schema` if missing and migrates its tables, all under the migration lock: workers
/// that connect to a new schema at once wait for each other (`CREATE SCHEMA IF NOT EXISTS`
/// alone races: two creators can both find it missing, and one fails on a unique index).
fn migrate(client: &mut postgres::Client, schema: &str) -> Result<()> {
    let mut tx = client.transaction().map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg)?;
    tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .map_err(pg)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS lepton_schema_version (version INTEGER NOT NULL)")
        .map_err(pg)?;
    let version: Option<i32> = tx
        .query_one("SELECT MAX(version) FROM lepton_schema_version", &[])
        .map_err(pg)?
        .get(0);
    let found = version.unwrap_or(0);
    if found > PG_SCHEMA_VERSION {
        return Err(pg(PostgresError::NewerSchema(found)));
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.batch_execute(migration).map_err(pg)?;
        tx.execute(
            "INSERT INTO lepton_schema_version (version) VALUES ($1)",
            &[&(from as i32 + 1)],
        )
        .map_err(pg)?;
    }
    tx.commit().map_err(pg)?;
    Ok(())
}

/// How long a storage operation is tried again after its connection was lost (a server
/// restart, a failover, a dropped network link) before the error is returned.
const RECONNECT_WINDOW: Duration = Duration::from_secs(60);

/// Whether `e` is the loss of the connection (closed, reset, ended by a server shutting
/// down, or no connection to be had from the pool), after which the operation can be tried
/// again on a new connection.
fn connection_lost(e: &Error) -> bool {
    let Error::Stage(inner) = e else {
        return false;
    };
    let e = match inner.downcast_ref::<PostgresError>() {
        Some(PostgresError::Postgres(e)) => e,
        // The pool found no server within its own timeout: still down, so the window decides.
        Some(PostgresError::Pool(_)) => return true,
        _ => return false,
    };
    if e.is_closed() {
        return true;
    }
    if let Some(state) = e.code() {
        // Class 08: connection exceptions; 57P01-57P03: shutdowns, and a server starting up.
        let code = state.code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    std::error::Error::source(e).is_some_and(|source| source.is::<std::io::Error>())
}

/// Logs every failed connection attempt as a `tracing` event: the pool tries again until its
/// 30 s timeout (r2d2's own handler writes to the `log` crate, which tracing does not see).
#[derive(Debug)]
struct LogRetries;

impl r2d2::HandleError<postgres::Error> for LogRetries {
    fn handle_error(&self, error: postgres::Error) {
        tracing::warn!(%error, "postgres connection failed; retrying until the pool's 30 s timeout");
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::stage)
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| pg(PostgresError::Corrupt(e.to_string())))
}

impl Storage for PostgresStorage {
    fn is_persistent(&self) -> bool {
        true
    }

    fn create_study(&self, name: &str, direction: Direction) -> Result<()> {
        self.retrying(|| {
            let inserted = self
                .conn()?
                .client
                .execute(
                    "INSERT INTO lepton_studies (name, direction) VALUES ($1, $2) \
                     ON CONFLICT (name) DO NOTHING",
                    &[&name, &direction.as_str()],
                )
                .map_err(pg)?;
            if inserted == 0 {
                return Err(Error::StudyExists(name.to_owned()));
            }
            Ok(())
        })
    }

    fn delete_study(&self, name: &str) -> Result<()> {
        self.retrying(|| {
            let deleted = self
                .conn()?
                .client
                .execute("DELETE FROM lepton_studies WHERE name = $1", &[&name])
                .map_err(pg)?;
            self.lock_finished().remove(name);
            if deleted == 0 {
                return Err(Error::UnknownStudy(name.to_owned()));
            }
            Ok(())
        })
    }

    fn study_direction(&self, name: &str) -> Result<Direction> {
        self.retrying(|| {
            let row = self
                .conn()?
                .client
                .query_opt(
                    "SELECT direction FROM lepton_studies WHERE name = $1",
                    &[&name],
                )
                .map_err(pg)?
                .ok_or_else(|| Error::UnknownStudy(name.to_owned()))?;
            let name: &str = row.get(0);
            Direction::parse(name)
                .ok_or_else(|| pg(PostgresError::Corrupt(format!("direction `{name}`"))))
        })
    }

    fn study_names(&self) -> Result<Vec<String>> {
        self.retrying(|| {
            Ok(self
                .conn()?
                .client
                .query("SELECT name FROM lepton_studies ORDER BY name", &[])
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn create_trial(&self, study: &str) -> Result<u64> {
        self.retrying(|| {
            let rows = self.conn()?.query(CREATE_TRIAL, &[&study])?;
            let row = rows
                .first()
                .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn create_trial_within(&self, study: &str, limit: u64) -> Result<Option<u64>> {
        self.retrying(|| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut conn = self.conn()?;
            match conn.query(CREATE_TRIAL_WITHIN, &[&study, &limit])?.first() {
                Some(row) => Ok(Some(row.get::<_, i64>(0) as u64)),
                None if conn.query(STUDY_ID, &[&study])?.is_empty() => {
                    Err(Error::UnknownStudy(study.to_owned()))
                }
                None => Ok(None),
            }
        })
    }

    fn set_param(
        &self,
        study: &str,
        number: u64,
        name: &str,
        distribution: &Distribution,
        value: &ParamValue,
    ) -> Result<()> {
        self.retrying(|| {
            check_param(name, distribution, value)?;
            let (d, v) = (json(distribution)?, json(value)?);
            self.trial_write(
                study,
                number,
                TrialState::Running,
                SET_PARAM,
                &[&study, &(number as i64), &name, &d, &v],
            )
        })
    }

    fn set_user_attr(&self, study: &str, number: u64, key: &str, value: &ParamValue) -> Result<()> {
        self.retrying(|| {
            let v = json(value)?;
            self.trial_write(
                study,
                number,
                TrialState::Running,
                SET_USER_ATTR,
                &[&study, &(number as i64), &key, &v],
            )
        })
    }

    fn set_trial_blob(&self, study: &str, number: u64, key: &str, bytes: &[u8]) -> Result<bool> {
        self.retrying(|| {
            self.trial_write(
                study,
                number,
                TrialState::Running,
                SET_BLOB,
                &[&study, &(number as i64), &key, &bytes],
            )
        })?;
        Ok(true)
    }

    fn trial_blob(&self, study: &str, number: u64, key: &str) -> Result<Option<Vec<u8>>> {
        self.retrying(|| {
            let mut conn = self.conn()?;
            let row = conn
                .client
                .query_opt(READ_BLOB, &[&study, &(number as i64), &key])
                .map_err(pg)?;
            if row.is_none()
                && conn
                    .client
                    .query_opt(STUDY_ID, &[&study])
                    .map_err(pg)?
                    .is_none()
            {
                return Err(Error::UnknownStudy(study.to_owned()));
            }
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn enqueue_trial(
        &self,
        study: &str,
        params: &std::collections::BTreeMap<String, ParamValue>,
    ) -> Result<u64> {
        self.retrying(|| {
            let values: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| Ok((k.clone(), json(v)?)))
                .collect::<Result<_>>()?;
            let mut conn = self.conn()?;
            let mut tx = conn.client.transaction().map_err(pg)?;
            let number: i64 = tx
                .query_opt(
                    "UPDATE lepton_studies SET next_number = next_number + 1 WHERE name = $1 \
                     RETURNING next_number - 1",
                    &[&study],
                )
                .map_err(pg)?
                .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?
                .get(0);
            tx.execute(
                "INSERT INTO lepton_trials (study, number, state) VALUES ($1, $2, 'waiting')",
                &[&study, &number],
            )
            .map_err(pg)?;
            for (name, value) in &values {
                tx.execute(
                    "INSERT INTO lepton_enqueued_params (study, number, name, value) \
                     VALUES ($1, $2, $3, $4)",
                    &[&study, &number, name, value],
                )
                .map_err(pg)?;
            }
            tx.commit().map_err(pg)?;
            Ok(number as u64)
        })
    }

    fn claim_waiting_trial(
        &self,
        study: &str,
    ) -> Result<Option<(u64, std::collections::BTreeMap<String, ParamValue>)>> {
        self.retrying(|| {
            let mut conn = self.conn()?;
            let rows = conn.query(CLAIM_WAITING, &[&study])?;
            let row = rows
                .first()
                .ok_or_else(|| pg(PostgresError::Corrupt("no row from a claim".into())))?;
            if !row.get::<_, bool>(0) {
                return Err(Error::UnknownStudy(study.to_owned()));
            }
            let Some(number) = row.get::<_, Option<i64>>(1) else {
                return Ok(None);
            };
            // The claim is committed: the trial is this worker's, its parameters never change.
            let mut fixed = std::collections::BTreeMap::new();
            for row in conn.query(ENQUEUED_PARAMS, &[&study, &number])? {
                fixed.insert(row.get::<_, String>(0), parse(row.get(1))?);
            }
            Ok(Some((number as u64, fixed)))
        })
    }

    fn heartbeat(&self, study: &str, number: u64) -> Result<()> {
        self.retrying(|| {
            self.trial_write(
                study,
                number,
                TrialState::Running,
                HEARTBEAT,
                &[&study, &(number as i64)],
            )
        })
    }

    fn fail_stale_trials(&self, study: &str, grace: Duration) -> Result<Vec<u64>> {
        self.retrying(|| {
            let rows = self
                .conn()?
                .query(FAIL_STALE, &[&study, &grace.as_secs_f64(), &STALE_ATTR])?;
            let row = rows
                .first()
                .ok_or_else(|| pg(PostgresError::Corrupt("no row from a sweep".into())))?;
            if !row.get::<_, bool>(0) {
                return Err(Error::UnknownStudy(study.to_owned()));
            }
            let mut numbers: Vec<u64> = row
                .get::<_, Vec<i64>>(1)
                .into_iter()
                .map(|n| n as u64)
                .collect();
            numbers.sort_unstable();
            Ok(numbers)
        })
    }

    fn enqueue_retry(&self, study: &str, number: u64) -> Result<Option<u64>> {
        self.retrying(|| {
            let of = json(&ParamValue::Int(number as i64))?;
            let n = number as i64;
            let mut conn = self.conn()?;
            let mut tx = conn.client.transaction().map_err(pg)?;
            // The failed trial's row lock orders workers retrying it: the second one sees the
            // first one's retry.
            let Some(row) = tx
                .query_opt(
                    "SELECT state FROM lepton_trials WHERE study = $1 AND number = $2 FOR UPDATE",
                    &[&study, &n],
                )
                .map_err(pg)?
            else {
                drop(tx);
                return Err(conn.refusal(study, number, TrialState::Waiting));
            };
            let state: String = row.get(0);
            let from = TrialState::parse(&state)
                .ok_or_else(|| pg(PostgresError::Corrupt(format!("state `{state}`"))))?;
            if from != TrialState::Failed {
                return Err(Error::IllegalTransition {
                    number,
                    from,
                    to: TrialState::Waiting,
                });
            }
            let retried = tx
                .query_opt(
                    "SELECT 1 FROM lepton_user_attrs WHERE study = $1 AND key = $2 AND value = $3 \
                     LIMIT 1",
                    &[&study, &RETRY_OF_ATTR, &of],
                )
                .map_err(pg)?;
            if retried.is_some() {
                return Ok(None);
            }
            let before = tx
                .query_opt(
                    "SELECT value FROM lepton_user_attrs WHERE study = $1 AND number = $2 AND key = $3",
                    &[&study, &n, &RETRIES_ATTR],
                )
                .map_err(pg)?;
            let retries = match before.map(|r| parse::<ParamValue>(r.get(0))) {
                Some(Ok(ParamValue::Int(k))) => k.saturating_add(1),
                _ => 1,
            };
            let retry: i64 = tx
                .query_one(
                    "WITH n AS (UPDATE lepton_studies SET next_number = next_number + 1 \
                                WHERE name = $1 RETURNING next_number - 1 AS number) \
                     INSERT INTO lepton_trials (study, number, state) \
                     SELECT $1, number, 'waiting' FROM n RETURNING number",
                    &[&study],
                )
                .map_err(pg)?
                .get(0);
            tx.execute(
                "INSERT INTO lepton_enqueued_params (study, number, name, value) \
                 SELECT study, $3, name, value FROM lepton_params WHERE study = $1 AND number = $2",
                &[&study, &n, &retry],
            )
            .map_err(pg)?;
            for (key, value) in [
                (RETRY_OF_ATTR, of.clone()),
                (RETRIES_ATTR, json(&ParamValue::Int(retries))?),
            ] {
                tx.execute(
                    "INSERT INTO lepton_user_attrs (study, number, key, value) VALUES ($1, $2, $3, $4)",
                    &[&study, &retry, &key, &value],
                )
                .map_err(pg)?;
            }
            tx.commit().map_err(pg)?;
            Ok(Some(retry as u64))
        })
    }

    fn report(&self, study: &str, number: u64, step: u64, value: f64) -> Result<()> {
        self.retrying(|| {
            check_report(value)?;
            self.trial_write(
                study,
                number,
                TrialState::Running,
                REPORT,
                &[&study, &(number as i64), &(step as i64), &value],
            )
        })
    }

    fn finish_trial(
        &self,
        study: &str,
        number: u64,
        state: TrialState,
        value: Option<f64>,
    ) -> Result<()> {
        check_finish(number, state, value)?;
        let value = value.filter(|v| v.is_finite());
        let mut tried = false;
        self.retrying(|| {
            let written = self.trial_write(
                study,
                number,
                state,
                FINISH,
                &[&study, &(number as i64), &state.as_str(), &value],
            );
            // A finish whose connection was lost after it committed finds, the second time,
            // the trial already in that state: that is this finish, done.
            match (written, std::mem::replace(&mut tried, true)) {
                (Err(Error::IllegalTransition { from, .. }), true) if from == state => Ok(()),
                (written, _) => written,
            }
        })
    }

    fn trials(&self, study: &str) -> Result<Vec<FrozenTrial>> {
        Ok(self
            .trials_shared(study)?
            .into_iter()
            .map(Arc::unwrap_or_clone)
            .collect())
    }

    fn trials_shared(&self, study: &str) -> Result<Vec<Arc<FrozenTrial>>> {
        self.retrying(|| {
            let mut conn = self.conn()?;
            let statements = [STUDY_ID, READ_TRIALS, READ_PARAMS, READ_REPORTS, READ_ATTRS]
                .map(|sql| conn.prepared(sql));
            let [study_id, trials, params, reports, attrs] = statements;
            let (study_id, trials, params, reports, attrs) =
                (study_id?, trials?, params?, reports?, attrs?);
            // One repeatable-read snapshot, so the reads agree with each other.
            let mut tx = conn
                .client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(pg)?;
            let id: i64 = tx
                .query_opt(&study_id, &[&study])
                .map_err(pg)?
                .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?
                .get(0);
            // The finished trials read before, unless the study was created again since.
            let (cached, names) = self
                .lock_finished()
                .get(study)
                .filter(|p| p.study_id == id)
                .map(|p| (p.trials.clone(), p.names.clone()))
                .unwrap_or_default();
            let from = cached.len() as i64;
            let corrupt = |message: String| pg(PostgresError::Corrupt(message));
            let mut rows = TrialRows::from_number(from as u64, names);
            let window: &[&(dyn ToSql + Sync)] = &[&study, &from];
            for r in tx.query(&trials, window).map_err(pg)? {
                rows.trial(r.get(0), r.get(1), r.get(2)).map_err(corrupt)?;
            }
            for r in tx.query(&params, window).map_err(pg)? {
                rows.param(r.get(0), r.get(1), r.get(2), r.get(3))
                    .map_err(corrupt)?;
            }
            for r in tx.query(&reports, window).map_err(pg)? {
                rows.report(r.get(0), r.get(1), r.get(2)).map_err(corrupt)?;
            }
            for r in tx.query(&attrs, window).map_err(pg)? {
                rows.attr(r.get(0), r.get(1), r.get(2)).map_err(corrupt)?;
            }
            tx.commit().map_err(pg)?;
            let (fresh, names) = rows.into_parts();
            let mut all = cached;
            all.extend(fresh.into_iter().map(Arc::new));
            let finished = all.iter().take_while(|t| t.state.is_finished()).count();
            let mut cache = self.lock_finished();
            match cache.get_mut(study).filter(|p| p.study_id == id) {
                // The usual case: the cache still ends where this read began; append to it
                // rather than copy the whole prefix again.
                Some(prefix) if prefix.trials.len() == from as usize => {
                    prefix
                        .trials
                        .extend_from_slice(&all[from as usize..finished]);
                    prefix.names = names;
                }
                // Another thread moved the cache meanwhile; keep the longer prefix.
                Some(prefix) if prefix.trials.len() >= finished => {}
                _ => {
                    cache.insert(
                        study.to_owned(),
                        FinishedPrefix {
                            study_id: id,
                            trials: all[..finished].to_vec(),
                            names,
                        },
                    );
                }
            }
            drop(cache);
            Ok(all)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance;
    use postgres::NoTls;

    /// A storage in a fresh schema of the test server, dropped afterwards.
    fn with_test_storage(f: impl FnOnce(&PostgresStorage, &str)) {
        let Some(url) = lepton_test_support::env_or_skip(
            "LEPTON_TEST_POSTGRES_URL",
            "the PostgreSQL storage test",
        ) else {
            return;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let schema = format!("lepton_test_{}_{nanos}", std::process::id());
        let storage = PostgresStorage::connect_in_schema(&url, &schema).unwrap();
        f(&storage, &url);
        let mut client = postgres::Client::connect(&url, NoTls).unwrap();
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
    }

    #[test]
    fn passes_the_conformance_suite() {
        with_test_storage(|s, _| conformance::run(s).unwrap());
    }

    #[test]
    fn workers_on_separate_connections_share_a_study() {
        with_test_storage(|s, url| {
            s.create_study("shared", Direction::Minimize).unwrap();
            let schema: String = s
                .conn()
                .unwrap()
                .client
                .query_one("SELECT current_schema()", &[])
                .unwrap()
                .get(0);
            let other = PostgresStorage::connect_in_schema(url, &schema).unwrap();
            let n = other.create_trial("shared").unwrap();
            other
                .finish_trial("shared", n, TrialState::Complete, Some(1.5))
                .unwrap();
            assert_eq!(s.trials("shared").unwrap()[0].value, Some(1.5));
            assert!(
                s.finish_trial("shared", n, TrialState::Failed, None)
                    .is_err()
            );
        });
    }

    #[test]
    fn finished_trials_are_read_once_and_the_rest_every_time() {
        with_test_storage(|s, url| {
            s.create_study("cached", Direction::Minimize).unwrap();
            for v in [1.0, 2.0] {
                let n = s.create_trial("cached").unwrap();
                s.finish_trial("cached", n, TrialState::Complete, Some(v))
                    .unwrap();
            }
            let running = s.create_trial("cached").unwrap();
            assert_eq!(s.trials_shared("cached").unwrap().len(), 3);
            // Rewrite every stored value behind the storage's back: the finished trials it
            // has read are not read again (they cannot change), the running one is.
            let schema: String = s
                .conn()
                .unwrap()
                .client
                .query_one("SELECT current_schema()", &[])
                .unwrap()
                .get(0);
            let mut client = postgres::Client::connect(url, NoTls).unwrap();
            client
                .execute(
                    &format!("UPDATE {schema}.lepton_trials SET value = 9 WHERE study = 'cached'"),
                    &[],
                )
                .unwrap();
            let values: Vec<Option<f64>> = s
                .trials_shared("cached")
                .unwrap()
                .iter()
                .map(|t| t.value)
                .collect();
            assert_eq!(values, [Some(1.0), Some(2.0), Some(9.0)]);
            // Another storage (a fresh worker) reads everything.
            let other = PostgresStorage::connect_in_schema(url, &schema).unwrap();
            assert_eq!(other.trials("cached").unwrap()[0].value, Some(9.0));
            other
                .finish_trial("cached", running, TrialState::Complete, Some(3.0))
                .unwrap();
            assert_eq!(s.trials("cached").unwrap()[2].value, Some(3.0));
            // A study deleted and created again elsewhere is a new study.
            other.delete_study("cached").unwrap();
            other.create_study("cached", Direction::Minimize).unwrap();
            other.create_trial("cached").unwrap();
            let fresh = s.trials("cached").unwrap();
            assert_eq!(fresh.len(), 1);
            assert_eq!(fresh[0].state, TrialState::Running);
        });
    }

    /// `url` with query parameters added.
    fn with_query(url: &str, params: &str) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}{params}")
    }

    /// Whether the connection of `s` is encrypted.
    fn encrypted(s: &PostgresStorage) -> bool {
        s.conn()
            .unwrap()
            .client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap()
            .get(0)
    }

    /// Asserts that connecting to `url` fails at once with a TLS error saying `why`.
    fn refused_at_once(url: &str, why: &str) {
        let started = std::time::Instant::now();
        let e = PostgresStorage::connect(url).unwrap_err();
        let Error::Stage(inner) = &e else {
            panic!("{url}: not a storage error: {e}")
        };
        assert!(
            matches!(inner.downcast_ref(), Some(PostgresError::Tls(_))),
            "{url}: {e}"
        );
        assert!(e.to_string().contains(why), "{url}: {e}");
        // Not after the pool's 30 s of retries.
        assert!(started.elapsed() < Duration::from_secs(10), "{url}");
    }

    #[test]
    fn sslmode_is_honoured_against_the_test_server() {
        let Some(url) =
            lepton_test_support::env_or_skip("LEPTON_TEST_POSTGRES_URL", "the PostgreSQL TLS test")
        else {
            return;
        };
        let plain = PostgresStorage::connect(&with_query(&url, "sslmode=disable")).unwrap();
        assert!(!encrypted(&plain));
        let mut client = postgres::Client::connect(&url, NoTls).unwrap();
        let setting = |client: &mut postgres::Client, name: &str| -> String {
            client
                .query_one(&format!("SHOW {name}"), &[])
                .unwrap()
                .get(0)
        };
        if setting(&mut client, "ssl") != "on" {
            eprintln!("the test server has no TLS: checking that TLS modes refuse it");
            for mode in ["require", "verify-ca", "verify-full"] {
                refused_at_once(
                    &with_query(&url, &format!("sslmode={mode}")),
                    "does not support TLS",
                );
            }
            assert!(!encrypted(&PostgresStorage::connect(&url).unwrap()));
            return;
        }
        // The server offers TLS: the default (prefer) and require use it, unchecked.
        assert!(encrypted(&PostgresStorage::connect(&url).unwrap()));
        let require = with_query(&url, "sslmode=require");
        assert!(encrypted(&PostgresStorage::connect(&require).unwrap()));
        // Its certificate is not signed by a public authority.
        refused_at_once(
            &with_query(&url, "sslmode=verify-full"),
            "error performing TLS handshake",
        );
        let cert = setting(&mut client, "ssl_cert_file");
        // Read as the server does: a test that cannot read it would skip the verify modes.
        if let Err(e) = std::fs::read(&cert) {
            panic!("the test server's certificate {cert}: {e}");
        }
        // Trusted through sslrootcert. The test server's certificate (Debian's snake oil) is
        // issued for `localhost`, not for 127.0.0.1.
        let root = format!("sslrootcert={cert}");
        let ca = with_query(&url, &format!("sslmode=verify-ca&{root}"));
        assert!(encrypted(&PostgresStorage::connect(&ca).unwrap()));
        if url.contains("@127.0.0.1:") {
            let full = with_query(&url, &format!("sslmode=verify-full&{root}"));
            refused_at_once(&full, "error performing TLS handshake");
            let by_name = full.replace("@127.0.0.1:", "@localhost:");
            match PostgresStorage::connect(&by_name) {
                Ok(s) => assert!(encrypted(&s)),
                // A certificate for another name (not Debian's): verify-full refuses it.
                Err(e) => assert!(e.to_string().contains("NotValidForName"), "{e}"),
            }
        }
    }

    #[test]
    fn sixteen_first_connections_to_a_new_schema_all_succeed() {
        let Some(url) = lepton_test_support::env_or_skip(
            "LEPTON_TEST_POSTGRES_URL",
            "the PostgreSQL schema race test",
        ) else {
            return;
        };
        for round in 0..3 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let schema = format!("lepton_race_{}_{round}_{nanos}", std::process::id());
            let barrier = std::sync::Barrier::new(16);
            let outcomes: Vec<Result<PostgresStorage>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..16)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            PostgresStorage::connect_in_schema(&url, &schema)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut client = postgres::Client::connect(&url, NoTls).unwrap();
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .unwrap();
            for outcome in outcomes {
                if let Err(e) = outcome {
                    panic!("round {round}: a first connection failed: {e}");
                }
            }
        }
    }

    #[test]
    fn an_operation_whose_connection_is_ended_is_done_again_on_a_new_one() {
        with_test_storage(|s, url| {
            s.create_study("lost", Direction::Minimize).unwrap();
            let schema: String = s
                .conn()
                .unwrap()
                .client
                .query_one("SELECT current_schema()", &[])
                .unwrap()
                .get(0);
            // Hold the study's counter, so that creating a trial waits on it.
            let mut holder = postgres::Client::connect(url, NoTls).unwrap();
            let mut tx = holder.transaction().unwrap();
            let holder_pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
            tx.execute(
                &format!("SELECT 1 FROM {schema}.lepton_studies WHERE name = 'lost' FOR UPDATE"),
                &[],
            )
            .unwrap();
            let created = std::thread::scope(|scope| {
                let create = scope.spawn(|| s.create_trial("lost"));
                // End the waiting connection, as a server shutting down does (57P01).
                let mut admin = postgres::Client::connect(url, NoTls).unwrap();
                let started = std::time::Instant::now();
                while admin
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE $1 = ANY(pg_blocking_pids(pid))",
                        &[&holder_pid],
                    )
                    .unwrap()
                    .is_empty()
                {
                    assert!(started.elapsed() < Duration::from_secs(10), "never waited");
                    std::thread::sleep(Duration::from_millis(10));
                }
                std::thread::sleep(Duration::from_millis(300));
                tx.commit().unwrap();
                create.join().unwrap()
            });
            assert_eq!(created.unwrap(), 0);
            assert_eq!(s.trials("lost").unwrap().len(), 1);
        });
    }

    #[test]
    fn bad_urls_and_schema_names_are_typed_errors() {
        assert!(PostgresStorage::connect("not a url").is_err());
        assert!(
            PostgresStorage::connect_in_schema("postgres://x@127.0.0.1:1/x", "a;drop").is_err()
        );
        // A bad sslmode is refused before any connection is tried.
        let e = PostgresStorage::connect("postgres://x@127.0.0.1:1/x?sslmode=always").unwrap_err();
        assert!(e.to_string().contains("sslmode `always`"), "{e}");
    }
}
