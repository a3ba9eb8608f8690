//! `lepton model ...`: the model registry from a shell.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use lepton::deploy::{LocalRegistry, ModelArtifact, PRODUCTION, Registry};

use crate::Result;

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Verifies the artifact in a directory and stores it as the model's next version (no
    /// alias moves); prints the version.
    Register {
        /// The registry's directory.
        #[arg(long)]
        registry: PathBuf,
        /// The model's name (letters, digits, `-`, `_`).
        #[arg(long)]
        name: String,
        /// The artifact directory (manifest.json and weights).
        artifact: PathBuf,
        /// Also take an artifact of an older format (1 or 2), which has no manifest
        /// checksum: registered, it gets one. Only for an artifact you vouch for (a version
        /// of this registry's, say: `REGISTRY/NAME/vN`).
        #[arg(long)]
        upgrade: bool,
    },
    /// The models, or one model's versions with their family, metrics, lineage and aliases.
    List {
        /// The registry's directory.
        #[arg(long)]
        registry: PathBuf,
        /// Only this model's versions.
        #[arg(long)]
        name: Option<String>,
    },
    /// Points an alias (production by default) at a version.
    Promote {
        /// The registry's directory.
        #[arg(long)]
        registry: PathBuf,
        /// The model's name.
        #[arg(long)]
        name: String,
        /// The version: a number, `vN`, `latest`, or another alias.
        #[arg(long)]
        version: String,
        /// The alias to move.
        #[arg(long, default_value = PRODUCTION)]
        alias: String,
    },
    /// Moves an alias (production by default) back to the version it pointed at before;
    /// prints that version.
    Rollback {
        /// The registry's directory.
        #[arg(long)]
        registry: PathBuf,
        /// The model's name.
        #[arg(long)]
        name: String,
        /// The alias to move back.
        #[arg(long, default_value = PRODUCTION)]
        alias: String,
    },
}

pub fn run(command: ModelCommand) -> Result<()> {
    let out = &mut std::io::stdout().lock();
    match command {
        ModelCommand::Register {
            registry,
            name,
            artifact,
            upgrade,
        } => {
            let artifact = if upgrade {
                ModelArtifact::upgrade(&artifact)?
            } else {
                ModelArtifact::load(&artifact)?
            };
            let version = LocalRegistry::new(registry).register(&name, &artifact)?;
            writeln!(out, "{version}")?;
        }
        ModelCommand::List {
            registry,
            name: None,
        } => {
            let registry = LocalRegistry::new(registry);
            for name in registry.models()? {
                let aliases: Vec<String> = registry
                    .aliases(&name)?
                    .into_iter()
                    .map(|(a, v)| format!("{a}=v{v}"))
                    .collect();
                writeln!(
                    out,
                    "{name}\t{} versions\t{}",
                    registry.versions(&name)?.len(),
                    aliases.join(" ")
                )?;
            }
        }
        ModelCommand::List {
            registry,
            name: Some(name),
        } => {
            let registry = LocalRegistry::new(registry);
            let aliases = registry.aliases(&name)?;
            for version in registry.versions(&name)? {
                let pointing: Vec<&str> = aliases
                    .iter()
                    .filter(|(_, v)| **v == version)
                    .map(|(a, _)| a.as_str())
                    .collect();
                // The manifest only: listing does not read or hash the weights (promotion and
                // serving verify them).
                let line = match registry.manifest(&name, version) {
                    Ok(m) => {
                        let metrics: Vec<String> = m
                            .metrics
                            .iter()
                            .map(|(k, v)| format!("{k}={v:.4}"))
                            .collect();
                        let parent = m.parent_version.map_or("-".into(), |p| format!("v{p}"));
                        format!(
                            "{}\tcreated {}\tparent {parent}\t{}",
                            m.model_family,
                            m.created_unix,
                            metrics.join(" ")
                        )
                    }
                    Err(e) => format!("unreadable: {e}"),
                };
                writeln!(out, "v{version}\t{}\t{line}", pointing.join(","))?;
            }
        }
        ModelCommand::Promote {
            registry,
            name,
            version,
            alias,
        } => {
            let registry = LocalRegistry::new(registry);
            let version = registry.resolve(&name, &version)?;
            registry.promote(&name, version, &alias)?;
            writeln!(out, "{name} {alias} -> v{version}")?;
        }
        ModelCommand::Rollback {
            registry,
            name,
            alias,
        } => {
            let version = LocalRegistry::new(registry).rollback(&name, &alias)?;
            writeln!(out, "{version}")?;
        }
    }
    Ok(())
}
