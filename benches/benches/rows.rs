//! Encoding conversions for ClickHouse, per row, at batch sizes 1, 100, 500 and 1000.
//! `map` is `ConversionRow::from(&Conversion)` plus `approximate_bytes`: what a worker
//! does to a batch before its INSERT. `insert` sends rows already mapped through
//! `Store::insert_conversions` (the clickhouse crate's RowBinary serializer, LZ4, one
//! HTTP request per batch) to a local server that reads the body and drops it. The
//! serializer is private to the clickhouse crate, so it cannot be timed on its own; the
//! batch sizes tell its per-row cost from the cost of a request. 500 rows still fit the
//! client's 256 KiB send buffer; 1000 rows do not, so their body leaves in two writes,
//! and the bench shows what that costs.

use std::hint::black_box;

use affilync_benches::{DiscardingClickHouse, Network};
use attributor::Conversion;
use attributor::store::ConversionRow;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const BATCH_SIZES: [usize; 4] = [1, 100, 500, 1_000];

fn conversions(network: &Network, count: usize) -> Vec<Conversion> {
    (0..count).map(|_| network.typical_conversion()).collect()
}

fn map(conversions: &[Conversion]) -> (Vec<ConversionRow>, usize) {
    let rows: Vec<ConversionRow> = conversions.iter().map(ConversionRow::from).collect();
    let bytes = rows.iter().map(ConversionRow::approximate_bytes).sum();
    (rows, bytes)
}

fn conversion_rows(c: &mut Criterion) {
    let network = Network::new();
    let clickhouse = DiscardingClickHouse::start();
    let store = clickhouse.store();
    let runtime = attributor::runtime::current_thread_runtime();
    let mut group = c.benchmark_group("conversion_rows");
    for size in BATCH_SIZES {
        let batch = conversions(&network, size);
        let (rows, _) = map(&batch);
        runtime
            .block_on(store.insert_conversions(&rows))
            .expect("the discarding server takes the insert");
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("map", size), &batch, |b, batch| {
            b.iter(|| map(black_box(batch)));
        });
        group.bench_with_input(BenchmarkId::new("insert", size), &rows, |b, rows| {
            b.iter(|| runtime.block_on(store.insert_conversions(black_box(rows))));
        });
    }
    group.finish();
}

criterion_group!(benches, conversion_rows);
criterion_main!(benches);
