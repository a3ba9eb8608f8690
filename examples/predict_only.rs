//! Inference only: load a saved model and predict the rows of a CSV file, in the smallest
//! build of Lepton, `lepton = { version = "0.1", default-features = false }` (no command
//! line, server, storage or download; see the README's "Use Lepton in your program").
//!
//!     lepton fit data.csv --target label --artifact model
//!     cargo run --release --example predict_only -- model data.csv
//!
//! Prints one prediction per row: the class label of a classifier, the value of a regressor.
//! The CSV has the columns the model was trained on (the target may be there too); the
//! artifact turns raw cells into features itself (categories, missing cells, scaling).

use lepton::Predictor;
use lepton::core::Prediction;
use lepton::data::CsvLoader;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(model), Some(data)) = (args.next(), args.next()) else {
        return Err("usage: predict_only MODEL_DIR DATA.csv".into());
    };
    let predictor = Predictor::load(&model)?;
    let table = CsvLoader::new(&data).read_table()?;
    let predictions = predictor.predict_table(&table)?;
    match predictions.first() {
        Some(Prediction::Class { .. }) => {
            for label in predictor.labels(&predictions)? {
                println!("{label}");
            }
        }
        _ => {
            for p in &predictions {
                if let Prediction::Value(v) = p {
                    println!("{v}");
                }
            }
        }
    }
    Ok(())
}
