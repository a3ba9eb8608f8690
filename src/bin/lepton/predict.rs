//! `lepton predict`: a saved model's predictions for the rows of a CSV file.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use lepton::core::{Prediction, Task};
use lepton::data::{CsvLoader, Table};
use lepton::deploy::ModelArtifact;
use lepton::{Predictor, TEXT_COLUMN, TextPredictor};

use crate::Result;

#[derive(Args)]
pub struct PredictArgs {
    /// The model artifact's directory (`lepton fit --artifact`, or a registry version).
    #[arg(long)]
    model: PathBuf,
    /// The CSV file: the columns the model was trained on (the target, if there, and other
    /// columns are ignored, and said so); for a text model, a `text` column.
    data: PathBuf,
    /// Where to write the predictions as CSV (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
}

pub fn run(args: PredictArgs) -> Result<()> {
    let artifact = ModelArtifact::load(&args.model)?;
    let (predictions, task) = if TextPredictor::is_text_artifact(artifact.manifest()) {
        let predictor = TextPredictor::from_artifact(&artifact)?;
        let predictions = predictor.predict(&texts_of(&args.data)?)?;
        (predictions, predictor.input_schema().task.clone())
    } else {
        let predictor = Predictor::from_artifact(&artifact)?;
        let table = CsvLoader::new(&args.data).read_table()?;
        let predictions = predictor.predict_table(&inputs_of(&predictor, &table)?)?;
        (predictions, predictor.input_schema().task.clone())
    };
    let mut writer = csv::Writer::from_writer(match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        ) as Box<dyn Write>,
        None => Box::new(std::io::stdout().lock()),
    });
    match &task {
        Task::Classification { classes } => {
            let mut header = vec!["prediction".to_owned()];
            header.extend(classes.iter().map(|c| format!("probability_{c}")));
            writer.write_record(&header)?;
            for p in &predictions {
                let Prediction::Class {
                    index,
                    probabilities,
                } = p
                else {
                    return Err(format!("a classifier predicted {p:?}").into());
                };
                let mut record = vec![classes.get(*index).cloned().unwrap_or_default()];
                record.extend(probabilities.iter().map(|x| x.to_string()));
                writer.write_record(&record)?;
            }
        }
        Task::Regression => {
            writer.write_record(["prediction"])?;
            for p in &predictions {
                let Prediction::Value(v) = p else {
                    return Err(format!("a regressor predicted {p:?}").into());
                };
                writer.write_record([v.to_string()])?;
            }
        }
    }
    writer.flush()?;
    if let Some(path) = &args.output {
        eprintln!(
            "wrote {} predictions to {}",
            predictions.len(),
            path.display()
        );
    }
    Ok(())
}

/// The texts of a CSV file's `text` column (other columns are ignored).
fn texts_of(path: &std::path::Path) -> Result<Vec<String>> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let column = reader
        .headers()?
        .iter()
        .position(|h| h == TEXT_COLUMN)
        .ok_or_else(|| format!("{}: no `{TEXT_COLUMN}` column of texts", path.display()))?;
    reader
        .records()
        .enumerate()
        .map(|(i, record)| {
            let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(record
                .get(column)
                .ok_or_else(|| format!("{}, row {}: no text", path.display(), i + 1))?
                .to_owned())
        })
        .collect()
}

/// The model's input columns of `table`: a missing one is an error naming it; the target
/// and any other column are left out, and said so on stderr.
fn inputs_of(predictor: &Predictor, table: &Table) -> Result<Table> {
    let schema = predictor.input_schema();
    let missing: Vec<&str> = schema
        .features
        .iter()
        .filter(|n| table.column(n).is_none())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{}: the model needs column(s) {} (it was trained on {})",
            table.source(),
            missing.join(", "),
            schema.features.join(", ")
        )
        .into());
    }
    let ignored: Vec<&str> = table
        .names()
        .iter()
        .filter(|n| !schema.features.contains(n))
        .map(String::as_str)
        .collect();
    if !ignored.is_empty() {
        eprintln!(
            "ignoring column(s) the model does not take: {}",
            ignored.join(", ")
        );
    }
    let columns = schema
        .features
        .iter()
        .filter_map(|n| Some((n.clone(), table.column(n)?.clone())))
        .collect();
    Ok(Table::new(table.source(), columns)?)
}
