//! What the pixel's browser test needs besides the service: headless Chromium driven
//! through chromedriver, and a shop on another site that puts the pixel on its pages.

pub mod chromium;
pub mod shop;
