use std::sync::atomic::{AtomicU64, Ordering};

use attributor::domain::{EmailHash, Source};
use attributor::fixtures::SampleNetwork;
use attributor::{Conversion, NewConversion};
use ingest::request::ConversionInput;

/// The sample network (one brand, one USD campaign paying 10% of sales, one affiliate,
/// one link, a click made just now), with reports made as the track endpoint makes them.
pub struct Network(SampleNetwork);

impl Network {
    pub fn new() -> Self {
        Self(SampleNetwork::new())
    }

    /// A 99.99 USD sale credited to this network's click, checked as the track endpoint
    /// checks it.
    pub fn report(&self, order_id: &str) -> NewConversion {
        let input = ConversionInput {
            click_id: Some(self.0.click.as_str().to_owned()),
            order_id: Some(order_id.to_owned()),
            amount: Some("99.99".into()),
            currency: Some("USD".into()),
            event_type: Some("sale".into()),
            ..ConversionInput::default()
        };
        input
            .into_conversion(&self.0.brand.id, &self.0.signer, Source::Api)
            .expect("the bench report is valid")
    }

    /// A sale as a typical report makes it, attributed as a worker stores it: a customer
    /// e-mail and four metadata pairs beside the attributed fields, so that encoding and
    /// journaling benches handle rows of a realistic size.
    pub fn typical_conversion(&self) -> Conversion {
        let mut report = self.report(&unique_order_id());
        report.email = EmailHash::of_address("jane.doe@example.com");
        let metadata = [
            ("sku", "TSHIRT-RED-M"),
            ("coupon", "SPRING10"),
            ("channel", "web"),
            ("quantity", "2"),
        ];
        report.metadata = metadata
            .into_iter()
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        self.attributed(&report)
    }
}

impl std::ops::Deref for Network {
    type Target = SampleNetwork;

    fn deref(&self) -> &SampleNetwork {
        &self.0
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

/// An order id no other call in this process returns, so the dedup front sees it as new.
pub fn unique_order_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("bench-order-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}
