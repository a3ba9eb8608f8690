//! SQLite storage: the embedded default for a persistent study on one machine.
//!
//! One file though long: its schema and migrations, then the `Storage` trait's operations,
//! each one or two statements in a transaction on the one connection, read together.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::names::Names;
use super::trial_rows::TrialRows;
use lepton_core::{
    Direction, Distribution, Error, FrozenTrial, ParamValue, RETRIES_ATTR, RETRY_OF_ATTR, Result,
    STALE_ATTR, Storage, TrialState, check_finish, check_param, check_report,
};

/// The schema version this build writes; older files are migrated, newer ones refused.
pub const SCHEMA_VERSION: i64 = 5;

/// Version 2: a heartbeat per trial (milliseconds since the Unix epoch).
const SCHEMA_V2: &str = "ALTER TABLE trials ADD COLUMN heartbeat_ms INTEGER NOT NULL DEFAULT 0;";

/// Version 3: fixed parameters of enqueued (waiting) trials.
const SCHEMA_V3: &str = "
CREATE TABLE enqueued_params (
    study TEXT NOT NULL,
    number INTEGER NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (study, number, name),
    FOREIGN KEY (study, number) REFERENCES trials(study, number) ON DELETE CASCADE
);";

/// Version 4: an index of failed trials (a budgeted creation counts the trials that are not
/// failed).
const SCHEMA_V4: &str = "CREATE INDEX trials_failed ON trials (study) WHERE state = 'failed';";

/// Version 5: trials' blobs (results too large for a user attribute).
const SCHEMA_V5: &str = "
CREATE TABLE trial_blobs (
    study TEXT NOT NULL,
    number INTEGER NOT NULL,
    key TEXT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (study, number, key),
    FOREIGN KEY (study, number) REFERENCES trials(study, number) ON DELETE CASCADE
);";

/// The migrations, in order: migration `i` takes a file from version `i` to `i + 1`.
const MIGRATIONS: [&str; 5] = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4, SCHEMA_V5];

const SCHEMA_V1: &str = "
CREATE TABLE studies (
    name TEXT PRIMARY KEY,
    direction TEXT NOT NULL
);
CREATE TABLE trials (
    study TEXT NOT NULL REFERENCES studies(name) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (study, number)
);
CREATE TABLE params (
    study TEXT NOT NULL,
    number INTEGER NOT NULL,
    name TEXT NOT NULL,
    distribution TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (study, number, name),
    FOREIGN KEY (study, number) REFERENCES trials(study, number) ON DELETE CASCADE
);
CREATE TABLE intermediate_values (
    study TEXT NOT NULL,
    number INTEGER NOT NULL,
    step INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (study, number, step),
    FOREIGN KEY (study, number) REFERENCES trials(study, number) ON DELETE CASCADE
);
CREATE TABLE user_attrs (
    study TEXT NOT NULL,
    number INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (study, number, key),
    FOREIGN KEY (study, number) REFERENCES trials(study, number) ON DELETE CASCADE
);
";

/// Errors of the SQLite storage, wrapped into `lepton_core::Error::Stage`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteError {
    /// SQLite refused an operation.
    #[error("sqlite ({path}): {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// The file was written by a newer Lepton.
    #[error("{path}: schema version {found} is newer than this build's {SCHEMA_VERSION}")]
    NewerSchema {
        /// The database file.
        path: String,
        /// The file's schema version.
        found: i64,
    },
    /// A stored value that does not parse.
    #[error("{path}: corrupt record: {message}")]
    Corrupt {
        /// The database file.
        path: String,
        /// What failed to parse.
        message: String,
    },
}

/// How hard SQLite works to put each committed write on disk before going on (its
/// `synchronous` pragma, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `NORMAL`, the default: commits are not synced one by one, only at WAL checkpoints.
    /// Every committed trial survives a crash of the process (kill -9, a panic), but the last
    /// transactions before a power cut or an operating-system crash may be rolled back: told
    /// trials can be lost (they come back as running or missing; the database stays
    /// consistent).
    #[default]
    Normal,
    /// `FULL`: every commit is synced to disk before it returns, so a told trial survives
    /// power loss too; each write costs an fsync.
    Full,
}

impl Synchronous {
    /// The setting called `name` (`normal` or `full`, any case).
    pub fn parse(name: &str) -> Option<Synchronous> {
        match name.to_ascii_lowercase().as_str() {
            "normal" => Some(Synchronous::Normal),
            "full" => Some(Synchronous::Full),
            _ => None,
        }
    }

    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// A study storage in one SQLite file (WAL mode, a busy timeout, every write in a
/// transaction), which several threads or processes can share.
///
/// Every committed write survives a crash of the writing process. What a power cut or an
/// operating-system crash may lose depends on [`Synchronous`]: with the default
/// ([`Synchronous::Normal`]) the last transactions may be rolled back; with
/// [`Synchronous::Full`] (`sqlite:///path/s.db?synchronous=full` as a URL, or
/// [`open_with`](Self::open_with)) nothing committed is lost, for an fsync per write.
#[derive(Debug)]
pub struct SqliteStorage {
    path: String,
    conn: Mutex<Connection>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` and migrates its schema, with
    /// [`Synchronous::Normal`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, Synchronous::Normal)
    }

    /// [`open`](Self::open), with the given durability.
    pub fn open_with(path: impl AsRef<Path>, synchronous: Synchronous) -> Result<Self> {
        let path = path.as_ref().display().to_string();
        let conn = Connection::open(&path).map_err(|e| sql(&path, e))?;
        Self::init(path, conn, synchronous)
    }

    /// A private database in memory (for tests).
    pub fn in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(|e| sql(":memory:", e))?;
        Self::init(":memory:".into(), conn, Synchronous::Normal)
    }

    fn init(path: String, mut conn: Connection, synchronous: Synchronous) -> Result<Self> {
        conn.busy_handler(Some(retry_while_busy))
            .map_err(|err| sql(&path, err))?;
        // Switching a new file to WAL takes an exclusive lock, and SQLite answers "busy" at
        // once, without the busy handler, while another process opens the same new file (an
        // AutoML run and its `--join` workers started together): try again, as the handler
        // would. The set-up is idempotent and its transaction rolled back on failure.
        let mut attempt = 0;
        loop {
            match Self::set_up(&path, &mut conn, synchronous) {
                Err(SetUp::Sqlite(err)) if is_busy(&err) && retry_while_busy(attempt) => {
                    attempt += 1;
                }
                Err(SetUp::Sqlite(err)) => return Err(sql(&path, err)),
                Err(SetUp::Newer(found)) => {
                    return Err(Error::stage(SqliteError::NewerSchema { path, found }));
                }
                Ok(()) => break,
            }
        }
        Ok(SqliteStorage {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// WAL mode, the pragmas, and the schema migrated to [`SCHEMA_VERSION`].
    fn set_up(
        path: &str,
        conn: &mut Connection,
        synchronous: Synchronous,
    ) -> std::result::Result<(), SetUp> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "synchronous", synchronous.pragma())?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let version: Option<i64> =
            tx.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))?;
        let found = version.unwrap_or(0);
        if found > SCHEMA_VERSION {
            return Err(SetUp::Newer(found));
        }
        for (from, migration) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
            tx.execute_batch(migration)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [from as i64 + 1],
            )?;
            tracing::info!(path = %path, version = from + 1, "migrated the study database");
        }
        tx.commit()?;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock rolls back the open transaction (it is dropped), so
        // the connection is still consistent.
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` in an immediate (write-locking) transaction, committed only if `f` succeeds.
    fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql(&self.path, e))?;
        let out = f(&tx)?;
        tx.commit().map_err(|e| sql(&self.path, e))?;
        Ok(out)
    }

    fn corrupt(&self, message: String) -> Error {
        Error::stage(SqliteError::Corrupt {
            path: self.path.clone(),
            message,
        })
    }

    /// Fails unless trial `number` of `study` exists and is running.
    fn running(
        &self,
        tx: &rusqlite::Transaction<'_>,
        study: &str,
        number: u64,
        to: TrialState,
    ) -> Result<()> {
        self.in_state(tx, study, number, &[TrialState::Running], to)
    }

    /// Fails unless trial `number` of `study` exists in one of `states`.
    fn in_state(
        &self,
        tx: &rusqlite::Transaction<'_>,
        study: &str,
        number: u64,
        states: &[TrialState],
        to: TrialState,
    ) -> Result<()> {
        let state: Option<String> = tx
            .query_row(
                "SELECT state FROM trials WHERE study = ?1 AND number = ?2",
                params![study, number as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| sql(&self.path, e))?;
        let Some(state) = state else {
            if !self.study_exists(tx, study)? {
                return Err(Error::UnknownStudy(study.to_owned()));
            }
            return Err(Error::UnknownTrial {
                study: study.to_owned(),
                number,
            });
        };
        let from =
            TrialState::parse(&state).ok_or_else(|| self.corrupt(format!("state `{state}`")))?;
        if !states.contains(&from) {
            return Err(Error::IllegalTransition { number, from, to });
        }
        Ok(())
    }

    /// The next trial number of `study` (inside a write transaction, which holds the lock).
    fn next_number(&self, tx: &rusqlite::Transaction<'_>, study: &str) -> Result<i64> {
        if !self.study_exists(tx, study)? {
            return Err(Error::UnknownStudy(study.to_owned()));
        }
        tx.query_row(
            "SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study = ?1",
            [study],
            |r| r.get(0),
        )
        .map_err(|e| sql(&self.path, e))
    }

    fn study_exists(&self, conn: &Connection, study: &str) -> Result<bool> {
        conn.query_row("SELECT 1 FROM studies WHERE name = ?1", [study], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(|e| sql(&self.path, e))
    }
}

/// Milliseconds since the Unix epoch on this machine's clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn sql(path: &str, source: rusqlite::Error) -> Error {
    Error::stage(SqliteError::Sqlite {
        path: path.to_owned(),
        source,
    })
}

/// Why [`SqliteStorage::set_up`] failed.
enum SetUp {
    Sqlite(rusqlite::Error),
    /// The file's schema version, newer than this build's.
    Newer(i64),
}

impl From<rusqlite::Error> for SetUp {
    fn from(err: rusqlite::Error) -> Self {
        SetUp::Sqlite(err)
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// SQLite's busy handler: another connection holds the write lock, so wait and try again, for
/// about 30 s in all (1, 2, 4, ... then 100 ms between tries), saying so in the log.
fn retry_while_busy(attempt: i32) -> bool {
    const TRIES: i32 = 310;
    match attempt {
        0 => tracing::debug!("SQLite database is busy (another writer); retrying"),
        TRIES => {
            tracing::warn!(
                attempts = TRIES,
                "SQLite database still busy after about 30 s; giving up"
            );
            return false;
        }
        _ => {}
    }
    std::thread::sleep(Duration::from_millis(
        (1u64 << attempt.clamp(0, 7)).min(100),
    ));
    true
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::stage)
}

impl Storage for SqliteStorage {
    fn is_persistent(&self) -> bool {
        // `:memory:` and the empty path are private databases that die with the connection.
        !matches!(self.path.as_str(), ":memory:" | "")
    }

    fn create_study(&self, name: &str, direction: Direction) -> Result<()> {
        self.write(|tx| {
            if self.study_exists(tx, name)? {
                return Err(Error::StudyExists(name.to_owned()));
            }
            let d = direction.as_str();
            tx.execute(
                "INSERT INTO studies (name, direction) VALUES (?1, ?2)",
                params![name, d],
            )
            .map_err(|e| sql(&self.path, e))?;
            Ok(())
        })
    }

    fn delete_study(&self, name: &str) -> Result<()> {
        self.write(|tx| {
            let n = tx
                .execute("DELETE FROM studies WHERE name = ?1", [name])
                .map_err(|e| sql(&self.path, e))?;
            if n == 0 {
                return Err(Error::UnknownStudy(name.to_owned()));
            }
            Ok(())
        })
    }

    fn study_direction(&self, name: &str) -> Result<Direction> {
        let conn = self.lock();
        let d: Option<String> = conn
            .query_row(
                "SELECT direction FROM studies WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| sql(&self.path, e))?;
        match d.as_deref() {
            None => Err(Error::UnknownStudy(name.to_owned())),
            Some(name) => {
                Direction::parse(name).ok_or_else(|| self.corrupt(format!("direction `{name}`")))
            }
        }
    }

    fn study_names(&self) -> Result<Vec<String>> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT name FROM studies ORDER BY name")
            .map_err(|e| sql(&self.path, e))?;
        let names = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(|e| sql(&self.path, e))?;
        Ok(names)
    }

    fn create_trial(&self, study: &str) -> Result<u64> {
        self.write(|tx| {
            let number = self.next_number(tx, study)?;
            tx.execute(
                "INSERT INTO trials (study, number, state, heartbeat_ms) \
                 VALUES (?1, ?2, 'running', ?3)",
                params![study, number, now_ms()],
            )
            .map_err(|e| sql(&self.path, e))?;
            Ok(number as u64)
        })
    }

    fn create_trial_within(&self, study: &str, limit: u64) -> Result<Option<u64>> {
        // The immediate transaction holds the file's write lock: the count and the insert are
        // one step for every process on the file.
        self.write(|tx| {
            let number = self.next_number(tx, study)?;
            let failed: i64 = tx
                .query_row(
                    "SELECT count(*) FROM trials WHERE study = ?1 AND state = 'failed'",
                    [study],
                    |r| r.get(0),
                )
                .map_err(|e| sql(&self.path, e))?;
            if number - failed >= i64::try_from(limit).unwrap_or(i64::MAX) {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO trials (study, number, state, heartbeat_ms) \
                 VALUES (?1, ?2, 'running', ?3)",
                params![study, number, now_ms()],
            )
            .map_err(|e| sql(&self.path, e))?;
            Ok(Some(number as u64))
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
        check_param(name, distribution, value)?;
        let (d, v) = (json(distribution)?, json(value)?);
        self.write(|tx| {
            self.running(tx, study, number, TrialState::Running)?;
            tx.execute(
                "INSERT OR REPLACE INTO params (study, number, name, distribution, value) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![study, number as i64, name, d, v],
            )
            .map_err(|e| sql(&self.path, e))?;
            Ok(())
        })
    }

    fn set_user_attr(&self, study: &str, number: u64, key: &str, value: &ParamValue) -> Result<()> {
        let v = json(value)?;
        self.write(|tx| {
            let live = [TrialState::Waiting, TrialState::Running];
            self.in_state(tx, study, number, &live, TrialState::Running)?;
            tx.execute(
                "INSERT OR REPLACE INTO user_attrs (study, number, key, value) VALUES (?1, ?2, ?3, ?4)",
                params![study, number as i64, key, v],
            )
            .map_err(|e| sql(&self.path, e))?;
            Ok(())
        })
    }

    fn set_trial_blob(&self, study: &str, number: u64, key: &str, bytes: &[u8]) -> Result<bool> {
        self.write(|tx| {
            let live = [TrialState::Waiting, TrialState::Running];
            self.in_state(tx, study, number, &live, TrialState::Running)?;
            tx.execute(
                "INSERT OR REPLACE INTO trial_blobs (study, number, key, bytes) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![study, number as i64, key, bytes],
            )
            .map_err(|e| sql(&self.path, e))?;
            Ok(true)
        })
    }

    fn trial_blob(&self, study: &str, number: u64, key: &str) -> Result<Option<Vec<u8>>> {
        let conn = self.lock();
        if !self.study_exists(&conn, study)? {
            return Err(Error::UnknownStudy(study.to_owned()));
        }
        conn.query_row(
            "SELECT bytes FROM trial_blobs WHERE study = ?1 AND number = ?2 AND key = ?3",
            params![study, number as i64, key],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| sql(&self.path, e))
    }

    fn enqueue_trial(
        &self,
        study: &str,
        params: &std::collections::BTreeMap<String, ParamValue>,
    ) -> Result<u64> {
        let values: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| Ok((k.clone(), json(v)?)))
            .collect::<Result<_>>()?;
        self.write(|tx| {
            let number = self.next_number(tx, study)?;
            tx.execute(
                "INSERT INTO trials (study, number, state, heartbeat_ms) \
                 VALUES (?1, ?2, 'waiting', ?3)",
                params![study, number, now_ms()],
            )
            .map_err(|e| sql(&self.path, e))?;
            for (name, value) in &values {
                tx.execute(
                    "INSERT INTO enqueued_params (study, number, name, value) VALUES (?1, ?2, ?3, ?4)",
                    params![study, number, name, value],
                )
                .map_err(|e| sql(&self.path, e))?;
            }
            Ok(number as u64)
        })
    }

    fn claim_waiting_trial(
        &self,
        study: &str,
    ) -> Result<Option<(u64, std::collections::BTreeMap<String, ParamValue>)>> {
        self.write(|tx| {
            if !self.study_exists(tx, study)? {
                return Err(Error::UnknownStudy(study.to_owned()));
            }
            // The immediate transaction holds the write lock: no other worker can claim the
            // same trial between the read and the update.
            let number: Option<i64> = tx
                .query_row(
                    "SELECT MIN(number) FROM trials WHERE study = ?1 AND state = 'waiting'",
                    [study],
                    |r| r.get(0),
                )
                .map_err(|e| sql(&self.path, e))?;
            let Some(number) = number else {
                return Ok(None);
            };
            tx.execute(
                "UPDATE trials SET state = 'running', heartbeat_ms = ?3 \
                 WHERE study = ?1 AND number = ?2",
                params![study, number, now_ms()],
            )
            .map_err(|e| sql(&self.path, e))?;
            let mut stmt = tx
                .prepare("SELECT name, value FROM enqueued_params WHERE study = ?1 AND number = ?2")
                .map_err(|e| sql(&self.path, e))?;
            let rows = stmt
                .query_map(params![study, number], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| sql(&self.path, e))?;
            let mut fixed = std::collections::BTreeMap::new();
            for (name, value) in rows {
                let v: ParamValue =
                    serde_json::from_str(&value).map_err(|err| self.corrupt(err.to_string()))?;
                fixed.insert(name, v);
            }
            Ok(Some((number as u64, fixed)))
        })
    }

    fn heartbeat(&self, study: &str, number: u64) -> Result<()> {
        self.write(|tx| {
            self.running(tx, study, number, TrialState::Running)?;
            tx.execute(
                "UPDATE trials SET heartbeat_ms = ?3 WHERE study = ?1 AND number = ?2",
                params![study, number as i64, now_ms()],
            )
            .map_err(|e| sql(&self.path, e))?;
            Ok(())
        })
    }

    fn fail_stale_trials(&self, study: &str, grace: Duration) -> Result<Vec<u64>> {
        let cutoff = now_ms() - i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        self.write(|tx| {
            if !self.study_exists(tx, study)? {
                return Err(Error::UnknownStudy(study.to_owned()));
            }
            let mut stmt = tx
                .prepare(
                    "UPDATE trials SET state = 'failed' \
                     WHERE study = ?1 AND state = 'running' AND heartbeat_ms < ?2 RETURNING number",
                )
                .map_err(|e| sql(&self.path, e))?;
            let mut numbers = stmt
                .query_map(params![study, cutoff], |r| r.get::<_, i64>(0))
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<i64>>>())
                .map_err(|e| sql(&self.path, e))?;
            numbers.sort_unstable();
            for n in &numbers {
                tx.execute(
                    "INSERT OR REPLACE INTO user_attrs (study, number, key, value) \
                     VALUES (?1, ?2, ?3, 'true')",
                    params![study, n, STALE_ATTR],
                )
                .map_err(|e| sql(&self.path, e))?;
            }
            if !numbers.is_empty() {
                tracing::warn!(study, trials = ?numbers, "failed trials whose workers stopped beating");
            }
            Ok(numbers.into_iter().map(|n| n as u64).collect())
        })
    }

    fn enqueue_retry(&self, study: &str, number: u64) -> Result<Option<u64>> {
        let e = |err| sql(&self.path, err);
        let of = json(&ParamValue::Int(number as i64))?;
        // The write lock makes the check for an existing retry and the insert one step.
        self.write(|tx| {
            self.in_state(
                tx,
                study,
                number,
                &[TrialState::Failed],
                TrialState::Waiting,
            )?;
            let retried = tx
                .query_row(
                    "SELECT 1 FROM user_attrs WHERE study = ?1 AND key = ?2 AND value = ?3",
                    params![study, RETRY_OF_ATTR, of],
                    |_| Ok(()),
                )
                .optional()
                .map_err(e)?;
            if retried.is_some() {
                return Ok(None);
            }
            let before: Option<String> = tx
                .query_row(
                    "SELECT value FROM user_attrs WHERE study = ?1 AND number = ?2 AND key = ?3",
                    params![study, number as i64, RETRIES_ATTR],
                    |r| r.get(0),
                )
                .optional()
                .map_err(e)?;
            let retries = match before.map(|v| serde_json::from_str::<ParamValue>(&v)) {
                Some(Ok(ParamValue::Int(n))) => n.saturating_add(1),
                _ => 1,
            };
            let retry = self.next_number(tx, study)?;
            tx.execute(
                "INSERT INTO trials (study, number, state, heartbeat_ms) \
                 VALUES (?1, ?2, 'waiting', ?3)",
                params![study, retry, now_ms()],
            )
            .map_err(e)?;
            tx.execute(
                "INSERT INTO enqueued_params (study, number, name, value) \
                 SELECT study, ?3, name, value FROM params WHERE study = ?1 AND number = ?2",
                params![study, number as i64, retry],
            )
            .map_err(e)?;
            for (key, value) in [
                (RETRY_OF_ATTR, of.clone()),
                (RETRIES_ATTR, json(&ParamValue::Int(retries))?),
            ] {
                tx.execute(
                    "INSERT INTO user_attrs (study, number, key, value) VALUES (?1, ?2, ?3, ?4)",
                    params![study, retry, key, value],
                )
                .map_err(e)?;
            }
            Ok(Some(retry as u64))
        })
    }

    fn report(&self, study: &str, number: u64, step: u64, value: f64) -> Result<()> {
        check_report(value)?;
        self.write(|tx| {
            self.running(tx, study, number, TrialState::Running)?;
            tx.execute(
                "INSERT OR REPLACE INTO intermediate_values (study, number, step, value) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![study, number as i64, step as i64, value],
            )
            .map_err(|e| sql(&self.path, e))?;
            Ok(())
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
        self.write(|tx| {
            self.running(tx, study, number, state)?;
            tx.execute(
                "UPDATE trials SET state = ?3, value = ?4 WHERE study = ?1 AND number = ?2",
                params![
                    study,
                    number as i64,
                    state.as_str(),
                    value.filter(|v| v.is_finite())
                ],
            )
            .map_err(|e| sql(&self.path, e))?;
            Ok(())
        })
    }

    fn trials(&self, study: &str) -> Result<Vec<FrozenTrial>> {
        let mut guard = self.lock();
        // One read transaction is one snapshot of the file: the reads below agree with each
        // other while other processes write (a trial created between two reads is not half
        // seen). Dropping it ends it; it wrote nothing.
        let conn = guard
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(|e| sql(&self.path, e))?;
        if !self.study_exists(&conn, study)? {
            return Err(Error::UnknownStudy(study.to_owned()));
        }
        let e = |err| sql(&self.path, err);
        let corrupt = |message: String| self.corrupt(message);
        let mut rows = TrialRows::from_number(0, Names::default());
        let mut stmt = conn
            .prepare("SELECT number, state, value FROM trials WHERE study = ?1 ORDER BY number")
            .map_err(e)?;
        let mut query = stmt.query([study]).map_err(e)?;
        while let Some(r) = query.next().map_err(e)? {
            rows.trial(
                r.get(0).map_err(e)?,
                &r.get::<_, String>(1).map_err(e)?,
                r.get(2).map_err(e)?,
            )
            .map_err(corrupt)?;
        }
        let mut stmt = conn
            .prepare("SELECT number, name, distribution, value FROM params WHERE study = ?1")
            .map_err(e)?;
        let mut query = stmt.query([study]).map_err(e)?;
        while let Some(r) = query.next().map_err(e)? {
            let (d, v): (String, String) = (r.get(2).map_err(e)?, r.get(3).map_err(e)?);
            rows.param(r.get(0).map_err(e)?, r.get(1).map_err(e)?, &d, &v)
                .map_err(corrupt)?;
        }
        let mut stmt = conn
            .prepare("SELECT number, step, value FROM intermediate_values WHERE study = ?1")
            .map_err(e)?;
        let mut query = stmt.query([study]).map_err(e)?;
        while let Some(r) = query.next().map_err(e)? {
            rows.report(
                r.get(0).map_err(e)?,
                r.get(1).map_err(e)?,
                r.get(2).map_err(e)?,
            )
            .map_err(corrupt)?;
        }
        let mut stmt = conn
            .prepare("SELECT number, key, value FROM user_attrs WHERE study = ?1")
            .map_err(e)?;
        let mut query = stmt.query([study]).map_err(e)?;
        while let Some(r) = query.next().map_err(e)? {
            let v: String = r.get(2).map_err(e)?;
            rows.attr(r.get(0).map_err(e)?, r.get(1).map_err(e)?, &v)
                .map_err(corrupt)?;
        }
        Ok(rows.into_parts().0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance;

    #[test]
    fn passes_the_conformance_suite_in_memory_and_on_disk() {
        conformance::run(&SqliteStorage::in_memory().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        conformance::run(&SqliteStorage::open(dir.path().join("s.db")).unwrap()).unwrap();
    }

    #[test]
    fn handles_opened_at_once_on_a_new_file_all_open() {
        // Each open switches the file to WAL and migrates it; done at the same moment by
        // several processes (an AutoML run and its `--join` workers), none may fail busy.
        for round in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("new.db");
            let barrier = std::sync::Barrier::new(6);
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..6)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            SqliteStorage::open(&path).map(|_| ())
                        })
                    })
                    .collect();
                for h in handles {
                    if let Err(err) = h.join().unwrap() {
                        panic!("round {round}: {err}");
                    }
                }
            });
        }
    }

    #[test]
    fn a_study_survives_reopening_and_two_handles_share_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("study.db");
        {
            let s = SqliteStorage::open(&path).unwrap();
            s.create_study("s", Direction::Maximize).unwrap();
            let n = s.create_trial("s").unwrap();
            s.report("s", n, 1, 0.5).unwrap();
            s.finish_trial("s", n, TrialState::Complete, Some(0.5))
                .unwrap();
        }
        let (a, b) = (
            SqliteStorage::open(&path).unwrap(),
            SqliteStorage::open(&path).unwrap(),
        );
        assert_eq!(a.trials("s").unwrap()[0].value, Some(0.5));
        let numbers: Vec<u64> = std::thread::scope(|scope| {
            let ha = scope.spawn(|| {
                (0..20)
                    .map(|_| a.create_trial("s").unwrap())
                    .collect::<Vec<_>>()
            });
            let hb = scope.spawn(|| {
                (0..20)
                    .map(|_| b.create_trial("s").unwrap())
                    .collect::<Vec<_>>()
            });
            let mut all = ha.join().unwrap();
            all.extend(hb.join().unwrap());
            all
        });
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..41).collect::<Vec<_>>());
    }

    #[test]
    fn a_version_1_file_is_migrated_keeping_its_trials() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL);")
                .unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.execute_batch(
                "INSERT INTO schema_version VALUES (1);
                 INSERT INTO studies VALUES ('old', 'minimize');
                 INSERT INTO trials (study, number, state, value) VALUES ('old', 0, 'complete', 2.5);",
            )
            .unwrap();
        }
        let s = SqliteStorage::open(&path).unwrap();
        assert_eq!(s.trials("old").unwrap()[0].value, Some(2.5));
        let n = s.create_trial("old").unwrap();
        s.heartbeat("old", n).unwrap();
        let version: i64 = s
            .lock()
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[test]
    fn synchronous_full_is_applied_and_normal_is_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let level = |s: &SqliteStorage| -> i64 {
            s.lock()
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        let full = SqliteStorage::open_with(dir.path().join("f.db"), Synchronous::Full).unwrap();
        assert_eq!(level(&full), 2);
        let normal = SqliteStorage::open(dir.path().join("n.db")).unwrap();
        assert_eq!(level(&normal), 1);
        assert!(normal.is_persistent());
        assert!(!SqliteStorage::in_memory().unwrap().is_persistent());
        assert_eq!(Synchronous::parse("FULL"), Some(Synchronous::Full));
        assert_eq!(Synchronous::parse("off"), None);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        drop(SqliteStorage::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute("INSERT INTO schema_version (version) VALUES (99)", [])
            .unwrap();
        drop(conn);
        let e = SqliteStorage::open(&path).unwrap_err();
        assert!(e.to_string().contains("schema version 99"), "{e}");
    }
}
