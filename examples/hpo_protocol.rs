//! Lepton's samplers behind the HPO benchmark harness's JSON-lines ask/tell protocol
//! (`../shared/bench-hpo`, section "External optimisers"), so they run side by side with Optuna,
//! Rustuna, hyperopt, scikit-optimize and SMAC3 on the same problems and seeds.
//!
//! ```text
//! cargo run --release --example hpo_protocol -- --sampler tpe|tpe-indep|gp|cmaes|random|sobol
//! ```
//!
//! One request per line on stdin, one reply per line on stdout (flushed), nothing else on
//! stdout:
//!
//! | request | reply |
//! |---|---|
//! | `{"op":"init","seed":3,"n_trials":100,"space":[...]}` | `{"ok":true,"name":...}` |
//! | `{"op":"ask"}` | `{"id":0,"params":{...}}` |
//! | `{"op":"tell","id":0,"value":0.73}` | `{"ok":true}` |
//! | `{"op":"close"}` | `{"ok":true}`, then exit |
//!
//! Values are minimized. A malformed request gets `{"error": "..."}` and the session goes on.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use lepton::core::{Distribution, Result, Scale, Trial};
use lepton::search::{Study, samplers};
use serde_json::{Value, json};

struct Session {
    study: Study,
    space: Vec<(String, Distribution)>,
    pending: BTreeMap<u64, Trial>,
}

fn parse_space(space: &Value) -> std::result::Result<Vec<(String, Distribution)>, String> {
    let entries = space.as_array().ok_or("`space` must be a list")?;
    entries
        .iter()
        .map(|p| {
            let name = p["name"].as_str().ok_or("a parameter has no `name`")?;
            let log = p["log"].as_bool().unwrap_or(false);
            let scale = if log { Scale::Log } else { Scale::Linear };
            let d = match p["type"].as_str() {
                Some("float") => Distribution::float(
                    p["low"].as_f64().ok_or("float `low` missing")?,
                    p["high"].as_f64().ok_or("float `high` missing")?,
                    scale,
                ),
                Some("int") => Distribution::int(
                    p["low"].as_i64().ok_or("int `low` missing")?,
                    p["high"].as_i64().ok_or("int `high` missing")?,
                    scale,
                ),
                Some("cat") => {
                    let choices = p["choices"].as_array().ok_or("`choices` missing")?;
                    Distribution::categorical(
                        choices
                            .iter()
                            .map(|c| serde_json::from_value::<lepton::core::ParamValue>(c.clone()))
                            .collect::<std::result::Result<Vec<_>, _>>()
                            .map_err(|e| format!("bad choice: {e}"))?,
                    )
                }
                other => return Err(format!("unknown parameter type {other:?}")),
            };
            d.validate(name).map_err(|e| e.to_string())?;
            Ok((name.to_owned(), d))
        })
        .collect()
}

fn ask(session: &mut Session) -> Result<Value> {
    let mut trial = session.study.ask()?;
    for (name, d) in &session.space {
        trial.suggest(name, d)?;
    }
    let id = trial.number();
    let params = serde_json::to_value(trial.params()).map_err(|e| {
        lepton::core::Error::InvalidInput(format!("parameters do not serialize: {e}"))
    })?;
    session.pending.insert(id, trial);
    Ok(json!({ "id": id, "params": params }))
}

fn handle(
    line: &str,
    sampler_name: &str,
    session: &mut Option<Session>,
) -> std::result::Result<(Value, bool), String> {
    let msg: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    match msg["op"].as_str() {
        Some("init") => {
            let seed = msg["seed"]
                .as_u64()
                .ok_or("`seed` must be a non-negative integer")?;
            let space = parse_space(&msg["space"])?;
            let sampler = samplers::by_name(sampler_name, seed).map_err(|e| e.to_string())?;
            let study = Study::builder("hpo")
                .with_sampler(sampler)
                .build()
                .map_err(|e| e.to_string())?;
            *session = Some(Session {
                study,
                space,
                pending: BTreeMap::new(),
            });
            let name = format!("lepton-{sampler_name}");
            Ok((
                json!({"ok": true, "name": name, "version": env!("CARGO_PKG_VERSION")}),
                false,
            ))
        }
        Some("ask") => {
            let s = session.as_mut().ok_or("`ask` before `init`")?;
            Ok((ask(s).map_err(|e| e.to_string())?, false))
        }
        Some("tell") => {
            let s = session.as_mut().ok_or("`tell` before `init`")?;
            let id = msg["id"].as_u64().ok_or("`id` must be a trial id")?;
            let value = msg["value"].as_f64().ok_or("`value` must be a number")?;
            let trial = s
                .pending
                .remove(&id)
                .ok_or(format!("no pending trial {id}"))?;
            s.study.tell(trial, Ok(value)).map_err(|e| e.to_string())?;
            Ok((json!({"ok": true}), false))
        }
        Some("close") => Ok((json!({"ok": true}), true)),
        other => Err(format!("unknown op {other:?}")),
    }
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut sampler = String::from("tpe");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sampler" => sampler = args.next().ok_or("--sampler needs a name")?,
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    // Refuse an unknown sampler before the first request.
    samplers::by_name(&sampler, 0)?;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    let mut session = None;
    for line in stdin.lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let (reply, done) = match handle(&line, &sampler, &mut session) {
            Ok(r) => r,
            Err(e) => (json!({ "error": e }), false),
        };
        writeln!(out, "{reply}")?;
        out.flush()?;
        if done {
            break;
        }
    }
    Ok(())
}
