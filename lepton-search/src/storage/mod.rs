//! Storages: where studies and trials live, behind the core `Storage` trait.

pub mod conformance;
mod memory;
mod names;
mod postgres;
mod postgres_tls;
mod sqlite;
mod trial_rows;
mod url;

pub use memory::InMemoryStorage;
pub use postgres::{PG_SCHEMA_VERSION, PostgresError, PostgresStorage};
pub use sqlite::{SCHEMA_VERSION, SqliteError, SqliteStorage, Synchronous};
pub use url::open;
