//! Per-message cost of the live path: rate limit + feature update + score
//! (+ explanations, as the gateway gets them), through [`Engine::observe`],
//! and the model's scoring alone.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use classifier::replay::Replay;
use classifier::trace::TraceReader;
use classifier::{Config, Engine, MetadataEvent, Model};
use trafficgen::{Params, generate_to_vecs};

fn events() -> Vec<MetadataEvent> {
    let (trace, _, _) = generate_to_vecs(&Params::with_seed(77)).unwrap();
    TraceReader::new(&trace[..])
        .collect::<Result<_, _>>()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let events = events();
    let messages: Vec<&MetadataEvent> = events
        .iter()
        .filter(|e| matches!(e, MetadataEvent::Message(_)))
        .collect();
    let model = Model::default_model().unwrap();

    // Steady state, as in a running gateway: a warm engine (its fixed
    // tables already touched by half the traffic) observing the rest, one
    // message per iteration.
    let engine = Engine::new(model.clone(), &Config::default()).unwrap();
    let half = messages.len() / 2;
    for ev in &messages[..half] {
        engine.observe(ev, ev.at());
    }
    let rest = &messages[half..];
    let mut g = c.benchmark_group("per_message");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("engine_observe_with_reasons", |b| {
        b.iter(|| {
            let ev = rest[i % rest.len()];
            i += 1;
            std::hint::black_box(engine.observe(ev, ev.at()))
        })
    });
    g.finish();

    // scoring alone, on realistic feature vectors taken along a replay
    let mut replay = Replay::new(&model, &Config::default()).unwrap();
    let mut xs = Vec::new();
    for ev in events.iter().take(40_000) {
        replay.feed(ev.view());
        if let MetadataEvent::Message(m) = ev {
            xs.extend(replay.detector().sender_features(&m.from, m.at));
        }
    }
    let mut g = c.benchmark_group("model");
    g.throughput(Throughput::Elements(xs.len() as u64));
    g.bench_function("score", |b| {
        b.iter(|| xs.iter().map(|x| model.score(x)).sum::<f32>())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
