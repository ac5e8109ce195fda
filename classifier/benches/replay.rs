//! Replay throughput (events per second on one core), parsing included:
//! the `gateway replay` path from trace bytes to per-sender verdicts.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use classifier::{Config, Model, replay};
use trafficgen::{Params, generate_to_vecs};

fn bench(c: &mut Criterion) {
    let model = Model::default_model().unwrap();
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    for (name, params) in [
        ("default_seed101", Params::with_seed(101)),
        ("shifted_seed202", Params::shifted(202)),
    ] {
        let (trace, _, summary) = generate_to_vecs(&Params {
            days: 1.0,
            ..params
        })
        .unwrap();
        g.throughput(Throughput::Elements(summary.events as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                replay::run(std::hint::black_box(&trace[..]), &model, &Config::default()).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
