//! The live view of a storage's studies, served by `lepton-serve --studies URL`:
//!
//! - `GET /studies`: every study, with its direction, trial count and a link;
//! - `GET /studies/{name}`: the study's report ([`StudyReport`]), which reloads itself when a
//!   trial finishes;
//! - `GET /studies/{name}/progress`: `{"trials": N, "finished": M}`, what the page polls.
//!
//! Pages are made on request from the storage (every worker writing to it shows up), on the
//! blocking thread pool, since storages and plots are synchronous.

use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use lepton_core::{History, Storage};
use lepton_report::{StudyReport, escape};

/// The routes of the live view over `storage`, to merge into a server (see
/// `lepton_deploy::server::Pages`).
pub fn studies_view(storage: Arc<dyn Storage>) -> Router {
    Router::new()
        .route("/studies", get(index))
        .route("/studies/{name}", get(report))
        .route("/studies/{name}/progress", get(progress))
        .with_state(storage)
}

type Shared = State<Arc<dyn Storage>>;

/// A failed page: the status and a line saying why.
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Html(format!("<p>{}</p>", escape(&self.1)))).into_response()
    }
}

/// Runs a storage read off the async threads; a missing study is a 404, any other error a 500.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> lepton_core::Result<T> + Send + 'static,
) -> Result<T, Failure> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e @ lepton_core::Error::UnknownStudy(_))) => {
            Err(Failure(StatusCode::NOT_FOUND, e.to_string()))
        }
        Ok(Err(e)) => Err(Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => Err(Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

async fn index(State(storage): Shared) -> Result<Html<String>, Failure> {
    let rows = blocking(move || {
        let mut rows = Vec::new();
        for name in storage.study_names()? {
            let direction = storage.study_direction(&name)?;
            let trials = storage.trials_shared(&name)?.len();
            rows.push((name, direction, trials));
        }
        Ok(rows)
    })
    .await?;
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Studies: Lepton</title><style>body{font-family:sans-serif;margin:24px}\
         td,th{padding:3px 10px;text-align:left}</style></head><body><h1>Studies</h1>",
    );
    if rows.is_empty() {
        page.push_str("<p>The storage holds no study yet.</p>");
    } else {
        page.push_str("<table><tr><th>study</th><th>direction</th><th>trials</th></tr>");
        for (name, direction, trials) in rows {
            let _ = write!(
                page,
                "<tr><td><a href=\"/studies/{}\">{}</a></td><td>{}</td><td>{trials}</td></tr>",
                path_segment(&name),
                escape(&name),
                direction.as_str()
            );
        }
        page.push_str("</table>");
    }
    page.push_str("</body></html>\n");
    Ok(Html(page))
}

async fn report(State(storage): Shared, Path(name): Path<String>) -> Result<Html<String>, Failure> {
    blocking(move || {
        let history = History::shared(
            storage.study_direction(&name)?,
            storage.trials_shared(&name)?,
        );
        let progress = format!("/studies/{}/progress", path_segment(&name));
        StudyReport::new(&name, &history)
            .live(&progress)
            .html()
            .map_err(lepton_core::Error::stage)
    })
    .await
    .map(Html)
}

async fn progress(
    State(storage): Shared,
    Path(name): Path<String>,
) -> Result<axum::Json<serde_json::Value>, Failure> {
    let (trials, finished) = blocking(move || {
        storage.study_direction(&name)?;
        let trials = storage.trials_shared(&name)?;
        let finished = trials.iter().filter(|t| t.state.is_finished()).count();
        Ok((trials.len(), finished))
    })
    .await?;
    Ok(axum::Json(
        serde_json::json!({ "trials": trials, "finished": finished }),
    ))
}

/// `name` as one URL path segment: unreserved characters as they are, the rest
/// percent-encoded (UTF-8).
fn path_segment(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_names_become_one_path_segment() {
        assert_eq!(path_segment("mnist-1"), "mnist-1");
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(path_segment("é"), "%C3%A9");
    }
}
