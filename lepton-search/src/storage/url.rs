//! Opening a storage from a URL, as the command line and worker processes name them.

use std::sync::Arc;

use lepton_core::{Error, Result, Storage};

use super::{InMemoryStorage, PostgresStorage, SqliteStorage};

/// Opens the storage a URL names: `memory:` (a fresh in-memory storage), `sqlite://PATH`
/// (`sqlite:///tmp/s.db` is the absolute path `/tmp/s.db`, `sqlite://s.db` a relative one), or
/// `postgres://...` / `postgresql://...` (any libpq-style URL).
pub fn open(url: &str) -> Result<Arc<dyn Storage>> {
    if url == "memory:" {
        return Ok(Arc::new(InMemoryStorage::new()));
    }
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(Error::InvalidInput(format!("`{url}` names no file")));
        }
        return Ok(Arc::new(SqliteStorage::open(path)?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStorage::connect(url)?));
    }
    Err(Error::InvalidInput(format!(
        "unknown storage URL `{url}`: use memory:, sqlite://PATH or postgres://..."
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(open("memory:").is_ok());
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        assert!(url.starts_with("sqlite:///"));
        open(&url)
            .unwrap()
            .create_study("s", Default::default())
            .unwrap();
        assert_eq!(open(&url).unwrap().study_names().unwrap(), ["s"]);
        for bad in ["", "sqlite://", "mysql://x", "memory"] {
            assert!(open(bad).is_err(), "{bad}");
        }
    }
}
