//! Deploying to a running prediction server: the artifact goes into the registry the server
//! follows, its alias moves, and the deployment is done when the server answers with the new
//! version (or says why it refused it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lepton_core::{Deployer, Deployment};
use serde::Deserialize;

use crate::error::{DeployError, Result};
use crate::local_registry::LocalRegistryDeployer;

/// Deploys onto a `lepton-serve` ([`Server`](crate::Server)) that follows a
/// [`LocalRegistry`](crate::LocalRegistry): registers and promotes through the registry, then
/// waits until the server at `url` serves the version. A version the server refuses (it does
/// not load) is an error carrying the server's reason, the alias moves back, and the previous
/// version keeps serving.
///
/// Uses a blocking HTTP client: call it from synchronous code, not from inside an async
/// runtime.
#[derive(Debug, Clone)]
pub struct HttpServerDeployer {
    registry: LocalRegistryDeployer,
    url: String,
    token: Option<String>,
    wait: Duration,
}

/// The part of `GET /v1/models/{name}` the deployer reads.
#[derive(Deserialize)]
struct Served {
    version: Option<u64>,
    refused: Option<Refused>,
}

#[derive(Deserialize)]
struct Refused {
    version: u64,
    error: String,
}

impl HttpServerDeployer {
    /// Deploys into the registry at `registry_root`, followed by the server at `url`
    /// (`http://host:port`), to the `production` alias.
    pub fn new(registry_root: impl Into<PathBuf>, url: impl Into<String>) -> Self {
        HttpServerDeployer {
            registry: LocalRegistryDeployer::new(registry_root),
            url: url.into().trim_end_matches('/').to_owned(),
            token: None,
            wait: Duration::from_secs(30),
        }
    }

    /// Follows `alias` instead of `production` (the server's `--alias` must match).
    pub fn with_alias(mut self, alias: &str) -> Result<Self> {
        self.registry = self.registry.with_alias(alias)?;
        Ok(self)
    }

    /// The bearer token the server asks for.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How long to wait for the server to serve a new version (30 s by default).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Waits until the server answers `name` with `version`.
    fn wait_until_serving(&self, name: &str, version: u64) -> Result<Deployment> {
        let url = format!("{}/v1/models/{name}", self.url);
        let error = |message: String| DeployError::Server {
            url: url.clone(),
            message,
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| error(e.to_string()))?;
        let started = Instant::now();
        let mut last = String::from("no answer yet");
        while started.elapsed() < self.wait {
            let mut request = client.get(&url);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            match request.send() {
                Ok(response) if response.status().is_success() => {
                    let served: Served = response
                        .json()
                        .map_err(|e| error(format!("unexpected answer: {e}")))?;
                    if served.version == Some(version) {
                        return Ok(Deployment {
                            name: name.to_owned(),
                            version,
                            address: format!("{}/v1/models/{name}/predict", self.url),
                        });
                    }
                    if let Some(refused) = served.refused.filter(|r| r.version == version) {
                        return Err(error(format!(
                            "the server refused version {version}: {}",
                            refused.error
                        )));
                    }
                    last = format!("serving version {:?}", served.version);
                }
                Ok(response) if response.status() == reqwest::StatusCode::UNAUTHORIZED => {
                    return Err(error("the server wants a (different) bearer token".into()));
                }
                Ok(response) => last = format!("status {}", response.status()),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(error(format!(
            "not serving version {version} after {:?} ({last})",
            self.wait
        )))
    }

    /// The registry deployed into.
    pub fn registry(&self) -> &crate::LocalRegistry {
        self.registry.registry()
    }
}

impl Deployer for HttpServerDeployer {
    /// A version the server refuses is rolled back in the registry too, so that the alias
    /// names what is served.
    fn deploy(&self, name: &str, artifact_dir: &Path) -> lepton_core::Result<Deployment> {
        let registered = self.registry.deploy(name, artifact_dir)?;
        match self.wait_until_serving(name, registered.version) {
            Ok(deployment) => Ok(deployment),
            Err(e) => {
                if let Err(back) = self.registry.rollback(name) {
                    tracing::warn!(model = name, error = %back, "could not move the alias back");
                }
                Err(e.into())
            }
        }
    }

    fn rollback(&self, name: &str) -> lepton_core::Result<Deployment> {
        let back = self.registry.rollback(name)?;
        Ok(self.wait_until_serving(name, back.version)?)
    }
}
