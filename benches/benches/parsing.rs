//! Reading a reported conversion, per request. Compares the shapes a conversion arrives
//! in: a track body with the amount as a JSON string, the same with a JSON number, a body
//! with a customer e-mail and eight metadata pairs, and a postback query string. Each is
//! measured reading the fields only (`fields`) and read and checked into a
//! `NewConversion` (`checked`), as the handlers do; the difference is the checks, mostly
//! the click id's HMAC and, with an e-mail, its SHA-256.

use std::hint::black_box;

use affilync_benches::Network;
use attributor::domain::Source;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ingest::request::{ConversionInput, QueryPairs, repair_postback_query};

enum Report {
    Track(Vec<u8>),
    Postback(String),
}

impl Report {
    /// The fields, read as the track and postback handlers read them.
    fn fields(&self) -> ConversionInput {
        match self {
            Report::Track(body) => ConversionInput::from_json(body).expect("a valid body"),
            Report::Postback(query) => {
                let query = repair_postback_query(query);
                let pairs = QueryPairs::parse(query.as_bytes()).expect("a valid query");
                ConversionInput::from_pairs(&pairs)
            }
        }
    }

    fn source(&self) -> Source {
        match self {
            Report::Track(_) => Source::Api,
            Report::Postback(_) => Source::Postback,
        }
    }
}

fn reports(network: &Network) -> Vec<(&'static str, Report)> {
    let click = network.click.as_str();
    let track = |amount: &str, extra: &str| {
        Report::Track(
            format!(
                r#"{{"click_id": "{click}", "order_id": "order-48151623", "amount": {amount}, "currency": "USD", "event_type": "sale"{extra}}}"#
            )
            .into_bytes(),
        )
    };
    let metadata = r#", "customer_email": "Jane.Doe@Example.com", "metadata": {"sku": "TSHIRT-RED-M", "quantity": 2, "coupon": "SPRING10", "first_order": true, "channel": "web", "landing_page": "/spring", "basket_items": 3, "utm_campaign": "spring_sale"}"#;
    vec![
        ("json_string_amount", track(r#""99.99""#, "")),
        ("json_number_amount", track("99.99", "")),
        ("json_email_and_metadata", track(r#""99.99""#, metadata)),
        (
            "postback_query",
            Report::Postback(format!(
                "click_id={click}&order_id=order-48151623&amount=99.99&currency=USD&event_type=sale&sub_id=abc"
            )),
        ),
    ]
}

fn parsing(c: &mut Criterion) {
    let network = Network::new();
    let brand = &network.brand.id;
    let mut group = c.benchmark_group("parse_request");
    group.throughput(Throughput::Elements(1));
    for (name, report) in reports(&network) {
        report
            .fields()
            .into_conversion(brand, &network.signer, report.source())
            .expect("every bench report is valid");
        group.bench_with_input(BenchmarkId::new("fields", name), &report, |b, report| {
            b.iter(|| black_box(report).fields());
        });
        group.bench_with_input(BenchmarkId::new("checked", name), &report, |b, report| {
            b.iter(|| {
                black_box(report)
                    .fields()
                    .into_conversion(brand, &network.signer, report.source())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, parsing);
criterion_main!(benches);
