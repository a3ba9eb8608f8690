//! Storages: where studies and trials live, behind the core `Storage` trait. The in-memory
//! storage is always here; SQLite and PostgreSQL are the `sqlite` and `postgres` features
//! (both on by default).

pub mod conformance;
mod memory;
mod names;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "postgres")]
mod postgres_tls;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod trial_rows;
mod url;

pub use memory::InMemoryStorage;
#[cfg(feature = "postgres")]
pub use postgres::{PG_SCHEMA_VERSION, PostgresError, PostgresStorage};
#[cfg(feature = "sqlite")]
pub use sqlite::{SCHEMA_VERSION, SqliteError, SqliteStorage, Synchronous};
pub use url::open;
