use std::sync::Arc;

use attributor::catalog::Catalog;
use attributor::clicks::ClickRecorder;
use attributor::domain::ClickSigner;
use attributor::hold::CampaignHolds;
use attributor::metrics::PipelineMetrics;
use attributor::{Clock, Journal, Pipeline, Store};
use prometheus::Registry;
use url::Url;

use crate::dedup::DedupFront;
use crate::list_totals::ListTotals;
use crate::metrics::{HttpMetrics, PixelMetrics};
use crate::pixel_script::PixelScript;
use crate::rate_limit::RateLimiter;
use crate::secret::Secret;

/// What every handler can reach.
pub struct AppState {
    pub store: Store,
    pub catalog: Arc<Catalog>,
    pub holds: Arc<CampaignHolds>,
    pub dedup: Arc<DedupFront>,
    pub list_totals: ListTotals,
    pub report_max_days: u32,
    /// Whether reports may read the hourly rollups.
    pub report_rollups: bool,
    pub pipeline: Pipeline,
    pub journal: Arc<Journal>,
    pub clicks: ClickRecorder,
    pub signer: ClickSigner,
    pub clock: Clock,
    pub admin_token: Option<Secret>,
    pub public_url: Url,
    pub pixel_script: PixelScript,
    pub rate_limiter: RateLimiter,
    pub registry: Registry,
    pub metrics: HttpMetrics,
    pub pixel_metrics: PixelMetrics,
    pub pipeline_metrics: PipelineMetrics,
}
