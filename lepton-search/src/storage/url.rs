//! Opening a storage from a URL, as the command line and worker processes name them.

use std::sync::Arc;

use lepton_core::{Error, Result, Storage};

use super::{InMemoryStorage, PostgresStorage, SqliteStorage, Synchronous};

/// Opens the storage a URL names: `memory:` (a fresh in-memory storage), `sqlite://PATH`
/// (`sqlite:///tmp/s.db` is the absolute path `/tmp/s.db`, `sqlite://s.db` a relative one;
/// `?synchronous=full` makes every commit durable across power loss, see [`Synchronous`]),
/// or `postgres://...` / `postgresql://...` (any libpq-style URL, `sslmode` included; see
/// [`PostgresStorage::connect`]).
pub fn open(url: &str) -> Result<Arc<dyn Storage>> {
    if url == "memory:" {
        return Ok(Arc::new(InMemoryStorage::new()));
    }
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(Error::InvalidInput(format!("`{url}` names no file")));
        }
        let mut synchronous = Synchronous::Normal;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            synchronous = match pair.split_once('=') {
                Some(("synchronous", value)) => Synchronous::parse(value).ok_or_else(|| {
                    Error::InvalidInput(format!(
                        "`{url}`: synchronous must be normal or full, not `{value}`"
                    ))
                })?,
                _ => {
                    return Err(Error::InvalidInput(format!(
                        "`{url}`: unknown parameter `{pair}` (SQLite takes synchronous=normal|full)"
                    )));
                }
            };
        }
        return Ok(Arc::new(SqliteStorage::open_with(path, synchronous)?));
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
        // A durable file is the same file, whatever its synchronous setting.
        let full = open(&format!("{url}?synchronous=full")).unwrap();
        assert_eq!(full.study_names().unwrap(), ["s"]);
        assert!(full.is_persistent() && !open("memory:").unwrap().is_persistent());
        for bad in ["?synchronous=off", "?durable=yes", "?synchronous"] {
            let e = open(&format!("{url}{bad}")).err().unwrap();
            assert!(e.to_string().contains(bad.trim_start_matches('?')), "{e}");
        }
        for bad in [
            "",
            "sqlite://",
            "sqlite://?synchronous=full",
            "mysql://x",
            "memory",
        ] {
            assert!(open(bad).is_err(), "{bad}");
        }
    }
}
