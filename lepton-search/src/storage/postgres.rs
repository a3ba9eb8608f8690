//! PostgreSQL storage: one study shared by workers on many machines, around a real database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postgres::{NoTls, Transaction};
use r2d2::{CustomizeConnection, Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;

use super::names::Names;
use super::trial_rows::TrialRows;
use lepton_core::{
    Direction, Distribution, Error, FrozenTrial, ParamValue, Result, Storage, TrialState,
    check_finish, check_param, check_report,
};

/// The schema version this build writes; older databases are migrated, newer ones refused.
pub const PG_SCHEMA_VERSION: i32 = 4;

/// Serialises concurrent migrations (a transaction-scoped advisory lock).
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

/// The migrations, in order: migration `i` takes a database from version `i` to `i + 1`.
const MIGRATIONS: [&str; 4] = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4];

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
}

fn pg(e: impl Into<PostgresError>) -> Error {
    Error::stage(e.into())
}

/// Sets each pooled connection's search path to the storage's schema.
#[derive(Debug)]
struct SearchPath(String);

impl CustomizeConnection<postgres::Client, postgres::Error> for SearchPath {
    fn on_acquire(&self, conn: &mut postgres::Client) -> std::result::Result<(), postgres::Error> {
        conn.batch_execute(&format!("SET search_path TO {}", self.0))
    }
}

/// A study storage in a PostgreSQL database, shared by any number of worker processes on any
/// number of machines. Trial numbers come from a per-study counter updated in the same
/// transaction as the insert, so they stay unique and contiguous under concurrency; every
/// write checks the trial's state under a row lock.
///
/// Finished trials never change, so each storage keeps the ones it has read: reading a study
/// fetches only the trials from the first one not known to be finished on (Optuna's
/// `_CachedStorage` idea), and a long study's `ask` reads a short window, not the whole study.
#[derive(Debug)]
pub struct PostgresStorage {
    pool: Pool<PostgresConnectionManager<NoTls>>,
    finished: Mutex<HashMap<String, FinishedPrefix>>,
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
        let config: postgres::Config = url.parse().map_err(pg)?;
        let manager = PostgresConnectionManager::new(config, NoTls);
        // A worker needs two connections at most (its trial and its heartbeat), opened when
        // first needed rather than a pool's worth each: many workers share one server.
        let pool = Pool::builder()
            .max_size(4)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(30))
            .connection_customizer(Box::new(SearchPath(schema.to_owned())))
            .build_unchecked(manager);
        let storage = PostgresStorage {
            pool,
            finished: Mutex::new(HashMap::new()),
        };
        let mut conn = storage.conn()?;
        conn.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .map_err(pg)?;
        let mut tx = conn.transaction().map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS lepton_schema_version (version INTEGER NOT NULL)",
        )
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
        drop(conn);
        Ok(storage)
    }

    fn conn(&self) -> Result<PooledConnection<PostgresConnectionManager<NoTls>>> {
        self.pool.get().map_err(pg)
    }

    fn write<T>(&self, f: impl FnOnce(&mut Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(pg)?;
        let out = f(&mut tx)?;
        tx.commit().map_err(pg)?;
        Ok(out)
    }
}

/// Fails unless trial `number` of `study` exists and is running; locks its row.
fn running(tx: &mut Transaction<'_>, study: &str, number: u64, to: TrialState) -> Result<()> {
    in_state(tx, study, number, &[TrialState::Running], to)
}

/// Fails unless trial `number` of `study` exists in one of `states`; locks its row.
fn in_state(
    tx: &mut Transaction<'_>,
    study: &str,
    number: u64,
    states: &[TrialState],
    to: TrialState,
) -> Result<()> {
    let row = tx
        .query_opt(
            "SELECT state FROM lepton_trials WHERE study = $1 AND number = $2 FOR UPDATE",
            &[&study, &(number as i64)],
        )
        .map_err(pg)?;
    let Some(row) = row else {
        if !study_exists(tx, study)? {
            return Err(Error::UnknownStudy(study.to_owned()));
        }
        return Err(Error::UnknownTrial {
            study: study.to_owned(),
            number,
        });
    };
    let state: String = row.get(0);
    let from =
        TrialState::parse(&state).ok_or_else(|| pg(PostgresError::Corrupt(state.clone())))?;
    if !states.contains(&from) {
        return Err(Error::IllegalTransition { number, from, to });
    }
    Ok(())
}

/// Takes the next trial number of `study` from its counter. The counter's row lock orders
/// concurrent creators; a rolled-back transaction rolls back its increment too, so numbers
/// stay contiguous.
fn next_number(tx: &mut Transaction<'_>, study: &str) -> Result<i64> {
    let row = tx
        .query_opt(
            "UPDATE lepton_studies SET next_number = next_number + 1 WHERE name = $1 \
             RETURNING next_number - 1",
            &[&study],
        )
        .map_err(pg)?
        .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
    Ok(row.get(0))
}

fn study_exists(tx: &mut Transaction<'_>, study: &str) -> Result<bool> {
    Ok(study_id(tx, study)?.is_some())
}

/// The identity of `study`, if it exists.
fn study_id(tx: &mut Transaction<'_>, study: &str) -> Result<Option<i64>> {
    Ok(tx
        .query_opt("SELECT id FROM lepton_studies WHERE name = $1", &[&study])
        .map_err(pg)?
        .map(|r| r.get(0)))
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(Error::stage)
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| pg(PostgresError::Corrupt(e.to_string())))
}

impl Storage for PostgresStorage {
    fn create_study(&self, name: &str, direction: Direction) -> Result<()> {
        let d = direction.as_str();
        self.write(|tx| {
            let inserted = tx
                .execute(
                    "INSERT INTO lepton_studies (name, direction) VALUES ($1, $2) \
                     ON CONFLICT (name) DO NOTHING",
                    &[&name, &d],
                )
                .map_err(pg)?;
            if inserted == 0 {
                return Err(Error::StudyExists(name.to_owned()));
            }
            Ok(())
        })
    }

    fn delete_study(&self, name: &str) -> Result<()> {
        self.write(|tx| {
            let n = tx
                .execute("DELETE FROM lepton_studies WHERE name = $1", &[&name])
                .map_err(pg)?;
            if n == 0 {
                return Err(Error::UnknownStudy(name.to_owned()));
            }
            Ok(())
        })?;
        self.lock_finished().remove(name);
        Ok(())
    }

    fn study_direction(&self, name: &str) -> Result<Direction> {
        let row = self
            .conn()?
            .query_opt(
                "SELECT direction FROM lepton_studies WHERE name = $1",
                &[&name],
            )
            .map_err(pg)?
            .ok_or_else(|| Error::UnknownStudy(name.to_owned()))?;
        let name: &str = row.get(0);
        Direction::parse(name)
            .ok_or_else(|| pg(PostgresError::Corrupt(format!("direction `{name}`"))))
    }

    fn study_names(&self) -> Result<Vec<String>> {
        Ok(self
            .conn()?
            .query("SELECT name FROM lepton_studies ORDER BY name", &[])
            .map_err(pg)?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn create_trial(&self, study: &str) -> Result<u64> {
        self.write(|tx| {
            let number = next_number(tx, study)?;
            tx.execute(
                "INSERT INTO lepton_trials (study, number, state) VALUES ($1, $2, 'running')",
                &[&study, &number],
            )
            .map_err(pg)?;
            Ok(number as u64)
        })
    }

    fn create_trial_within(&self, study: &str, limit: u64) -> Result<Option<u64>> {
        self.write(|tx| {
            // Every creation updates the study's row: locking it first makes the count below
            // and the insert one step that no other creation can interleave with.
            let next: i64 = tx
                .query_opt(
                    "SELECT next_number FROM lepton_studies WHERE name = $1 FOR UPDATE",
                    &[&study],
                )
                .map_err(pg)?
                .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?
                .get(0);
            let failed: i64 = tx
                .query_one(
                    "SELECT count(*) FROM lepton_trials WHERE study = $1 AND state = 'failed'",
                    &[&study],
                )
                .map_err(pg)?
                .get(0);
            if next - failed >= i64::try_from(limit).unwrap_or(i64::MAX) {
                return Ok(None);
            }
            let number = next_number(tx, study)?;
            tx.execute(
                "INSERT INTO lepton_trials (study, number, state) VALUES ($1, $2, 'running')",
                &[&study, &number],
            )
            .map_err(pg)?;
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
            running(tx, study, number, TrialState::Running)?;
            tx.execute(
                "INSERT INTO lepton_params (study, number, name, distribution, value) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (study, number, name) \
                 DO UPDATE SET distribution = EXCLUDED.distribution, value = EXCLUDED.value",
                &[&study, &(number as i64), &name, &d, &v],
            )
            .map_err(pg)?;
            Ok(())
        })
    }

    fn set_user_attr(&self, study: &str, number: u64, key: &str, value: &ParamValue) -> Result<()> {
        let v = json(value)?;
        self.write(|tx| {
            let live = [TrialState::Waiting, TrialState::Running];
            in_state(tx, study, number, &live, TrialState::Running)?;
            tx.execute(
                "INSERT INTO lepton_user_attrs (study, number, key, value) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (study, number, key) DO UPDATE SET value = EXCLUDED.value",
                &[&study, &(number as i64), &key, &v],
            )
            .map_err(pg)?;
            Ok(())
        })
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
            let number = next_number(tx, study)?;
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
            Ok(number as u64)
        })
    }

    fn claim_waiting_trial(
        &self,
        study: &str,
    ) -> Result<Option<(u64, std::collections::BTreeMap<String, ParamValue>)>> {
        self.write(|tx| {
            if !study_exists(tx, study)? {
                return Err(Error::UnknownStudy(study.to_owned()));
            }
            // SKIP LOCKED: concurrent workers each take a different waiting trial, none waits.
            let Some(row) = tx
                .query_opt(
                    "SELECT number FROM lepton_trials WHERE study = $1 AND state = 'waiting' \
                     ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED",
                    &[&study],
                )
                .map_err(pg)?
            else {
                return Ok(None);
            };
            let number: i64 = row.get(0);
            tx.execute(
                "UPDATE lepton_trials SET state = 'running', heartbeat = now() \
                 WHERE study = $1 AND number = $2",
                &[&study, &number],
            )
            .map_err(pg)?;
            let mut fixed = std::collections::BTreeMap::new();
            for row in tx
                .query(
                    "SELECT name, value FROM lepton_enqueued_params WHERE study = $1 AND number = $2",
                    &[&study, &number],
                )
                .map_err(pg)?
            {
                fixed.insert(row.get::<_, String>(0), parse(row.get(1))?);
            }
            Ok(Some((number as u64, fixed)))
        })
    }

    fn heartbeat(&self, study: &str, number: u64) -> Result<()> {
        self.write(|tx| {
            running(tx, study, number, TrialState::Running)?;
            tx.execute(
                "UPDATE lepton_trials SET heartbeat = now() WHERE study = $1 AND number = $2",
                &[&study, &(number as i64)],
            )
            .map_err(pg)?;
            Ok(())
        })
    }

    fn fail_stale_trials(&self, study: &str, grace: Duration) -> Result<Vec<u64>> {
        self.write(|tx| {
            if !study_exists(tx, study)? {
                return Err(Error::UnknownStudy(study.to_owned()));
            }
            let mut numbers: Vec<u64> = tx
                .query(
                    "UPDATE lepton_trials SET state = 'failed' WHERE study = $1 \
                     AND state = 'running' AND heartbeat < now() - make_interval(secs => $2) \
                     RETURNING number",
                    &[&study, &grace.as_secs_f64()],
                )
                .map_err(pg)?
                .iter()
                .map(|r| r.get::<_, i64>(0) as u64)
                .collect();
            numbers.sort_unstable();
            Ok(numbers)
        })
    }

    fn report(&self, study: &str, number: u64, step: u64, value: f64) -> Result<()> {
        check_report(value)?;
        self.write(|tx| {
            running(tx, study, number, TrialState::Running)?;
            tx.execute(
                "INSERT INTO lepton_intermediate_values (study, number, step, value) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (study, number, step) \
                 DO UPDATE SET value = EXCLUDED.value",
                &[&study, &(number as i64), &(step as i64), &value],
            )
            .map_err(pg)?;
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
        let value = value.filter(|v| v.is_finite());
        self.write(|tx| {
            running(tx, study, number, state)?;
            tx.execute(
                "UPDATE lepton_trials SET state = $3, value = $4 WHERE study = $1 AND number = $2",
                &[&study, &(number as i64), &state.as_str(), &value],
            )
            .map_err(pg)?;
            Ok(())
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
        // One repeatable-read snapshot, so the reads agree with each other.
        let mut conn = self.conn()?;
        let mut tx = conn
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(pg)?;
        let id = study_id(&mut tx, study)?.ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
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
        let window = &[&study as &(dyn postgres::types::ToSql + Sync), &from];
        for r in tx
            .query(
                "SELECT number, state, value FROM lepton_trials \
                 WHERE study = $1 AND number >= $2 ORDER BY number",
                window,
            )
            .map_err(pg)?
        {
            rows.trial(r.get(0), r.get(1), r.get(2)).map_err(corrupt)?;
        }
        for r in tx
            .query(
                "SELECT number, name, distribution, value FROM lepton_params \
                 WHERE study = $1 AND number >= $2",
                window,
            )
            .map_err(pg)?
        {
            rows.param(r.get(0), r.get(1), r.get(2), r.get(3))
                .map_err(corrupt)?;
        }
        for r in tx
            .query(
                "SELECT number, step, value FROM lepton_intermediate_values \
                 WHERE study = $1 AND number >= $2",
                window,
            )
            .map_err(pg)?
        {
            rows.report(r.get(0), r.get(1), r.get(2)).map_err(corrupt)?;
        }
        for r in tx
            .query(
                "SELECT number, key, value FROM lepton_user_attrs \
                 WHERE study = $1 AND number >= $2",
                window,
            )
            .map_err(pg)?
        {
            rows.attr(r.get(0), r.get(1), r.get(2)).map_err(corrupt)?;
        }
        tx.commit().map_err(pg)?;
        let (fresh, names) = rows.into_parts();
        let mut all = cached;
        all.extend(fresh.into_iter().map(Arc::new));
        let finished = all.iter().take_while(|t| t.state.is_finished()).count();
        let mut cache = self.lock_finished();
        let known = cache
            .get(study)
            .filter(|p| p.study_id == id)
            .map_or(0, |p| p.trials.len());
        if finished > known {
            cache.insert(
                study.to_owned(),
                FinishedPrefix {
                    study_id: id,
                    trials: all[..finished].to_vec(),
                    names,
                },
            );
        }
        drop(cache);
        Ok(all)
    }
}

impl PostgresStorage {
    fn lock_finished(&self) -> std::sync::MutexGuard<'_, HashMap<String, FinishedPrefix>> {
        // Every change to the map is one insert or remove: it is consistent after a panic.
        self.finished.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::conformance;

    /// A storage in a fresh schema of the test server, dropped afterwards.
    fn with_test_storage(f: impl FnOnce(&PostgresStorage, &str)) {
        let Ok(url) = std::env::var("LEPTON_TEST_POSTGRES_URL") else {
            eprintln!("LEPTON_TEST_POSTGRES_URL unset: skipping the PostgreSQL storage test");
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

    #[test]
    fn bad_urls_and_schema_names_are_typed_errors() {
        assert!(PostgresStorage::connect("not a url").is_err());
        assert!(
            PostgresStorage::connect_in_schema("postgres://x@127.0.0.1:1/x", "a;drop").is_err()
        );
    }
}
