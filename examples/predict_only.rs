//! Inference only: load a saved model and predict the rows of a CSV file, in the smallest
//! build of Lepton, `lepton = { version = "0.1", default-features = false }` (no command
//! line, server, storage or download; see the README's "Use Lepton in your program"). It
//! builds for WebAssembly too (`--target wasm32-wasip1`; the README's "Platforms").
//!
//!     lepton fit data.csv --target label --artifact model
//!     cargo run --release --example predict_only -- model data.csv [--probabilities]
//!
//! Prints one prediction per row: the class label of a classifier (with `--probabilities`,
//! followed by each class's probability), the value of a regressor. Numbers are printed in
//! full: the shortest decimals that read back as the same bits. The CSV has the columns the
//! model was trained on (the target may be there too); the artifact turns raw cells into
//! features itself (categories, missing cells, scaling).

use lepton::Predictor;
use lepton::core::Prediction;
use lepton::data::CsvLoader;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let probabilities = args.iter().any(|a| a == "--probabilities");
    let paths: Vec<&String> = args.iter().filter(|a| *a != "--probabilities").collect();
    let [model, data] = paths[..] else {
        return Err("usage: predict_only MODEL_DIR DATA.csv [--probabilities]".into());
    };
    let predictor = Predictor::load(model)?;
    let table = CsvLoader::new(data).read_table()?;
    let predictions = predictor.predict_table(&table)?;
    match predictions.first() {
        Some(Prediction::Class { .. }) => {
            let labels = predictor.labels(&predictions)?;
            for (label, p) in labels.iter().zip(&predictions) {
                match p {
                    Prediction::Class {
                        probabilities: ps, ..
                    } if probabilities => {
                        let ps: Vec<String> = ps.iter().map(f32::to_string).collect();
                        println!("{label},{}", ps.join(","));
                    }
                    _ => println!("{label}"),
                }
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
