//! Loading and default preprocessing of a large mixed-type CSV: `CsvLoader::read_table`, then
//! `Preprocessor::default()` fitted and applied to every row. The data file comes from
//! `benches/gen_mixed_csv.py`; `benches/compare_preprocess.sh` runs this bench and the pandas +
//! scikit-learn equivalent side by side.
//!
//! ```text
//! LEPTON_BENCH_CSV=/tmp/mixed_1m.csv cargo bench --bench preprocess
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use lepton::data::{CsvLoader, Preprocessor, TargetKind};

fn preprocess(c: &mut Criterion) {
    let Ok(path) = std::env::var("LEPTON_BENCH_CSV") else {
        eprintln!(
            "LEPTON_BENCH_CSV is unset: create the data with \
             `python3 benches/gen_mixed_csv.py /tmp/mixed_1m.csv` and point it there"
        );
        return;
    };
    let mut group = c.benchmark_group("mixed_csv");
    group.sample_size(10);
    group.bench_function("read_table", |b| {
        b.iter(|| CsvLoader::new(&path).read_table())
    });
    let table = match CsvLoader::new(&path).read_table() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            return;
        }
    };
    group.bench_function("default_pipeline_fit_transform", |b| {
        b.iter(|| {
            let p = Preprocessor::default().fit(&table, "target", TargetKind::Classification)?;
            p.transform(&table)
        })
    });
    group.bench_function("read_and_preprocess", |b| {
        b.iter(|| {
            let table = CsvLoader::new(&path).read_table()?;
            let p = Preprocessor::default().fit(&table, "target", TargetKind::Classification)?;
            p.transform(&table)
        })
    });
    group.finish();
}

criterion_group!(benches, preprocess);
criterion_main!(benches);
