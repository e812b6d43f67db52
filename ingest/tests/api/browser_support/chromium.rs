//! Headless Chromium driven through chromedriver (Debian's `chromium` and
//! `chromium-driver`), one fresh profile per browser.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const INSTALL: &str = "apt-get install -y chromium chromium-driver";

/// How long the browser may take to do what a step expects.
const STEP_DEADLINE: Duration = Duration::from_secs(20);

/// Whether the browser sends cookies to other sites than the page's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThirdPartyCookies {
    /// "Allow third-party cookies" in the settings.
    Allowed,
    /// "Block third-party cookies": Chromium's default now, and Safari's and Firefox's in effect.
    Blocked,
}

/// A chromedriver on a free port. Dropping it, also while a failed test unwinds, ends it and
/// every browser it started.
pub struct Chromedriver {
    process: Child,
    url: String,
}

impl Chromedriver {
    pub async fn start() -> Chromedriver {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "the pixel's browser test drives headless Chromium and needs {binary}; \
                 install it with `{INSTALL}` (CI does)"
            );
        }
        let port = free_port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Its own process group, so that Drop can end the browsers along with it.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {CHROMEDRIVER} ({INSTALL}): {error}"));
        let mut driver = Chromedriver {
            process,
            url: format!("http://127.0.0.1:{port}"),
        };
        driver.wait_until_ready().await;
        driver
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STEP_DEADLINE;
        let http = reqwest::Client::new();
        loop {
            if let Some(status) = self.process.try_wait().unwrap() {
                panic!("{CHROMEDRIVER} exited at start with {status}");
            }
            if let Ok(response) = http.get(format!("{}/status", self.url)).send().await
                && let Ok(status) = response.json::<Value>().await
                && status["value"]["ready"] == true
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{CHROMEDRIVER} did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new headless Chromium with a profile of its own: a device nobody has used yet.
    pub async fn open(&self, third_party_cookies: ThirdPartyCookies) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut chrome_options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        // Settings > Privacy > Third-party cookies. This Chromium's default is to block them
        // (`profile.cookie_controls_mode` 1), so both choices are set explicitly.
        let cookie_controls_mode = match third_party_cookies {
            ThirdPartyCookies::Allowed => 0,
            ThirdPartyCookies::Blocked => 1,
        };
        chrome_options["prefs"] = json!({"profile.cookie_controls_mode": cookie_controls_mode});
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), chrome_options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .unwrap_or_else(|error| panic!("chromedriver could not start {CHROMIUM}: {error}"));
        Browser {
            client,
            _profile: profile,
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .status();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// One browser session; its profile directory goes when it is dropped.
pub struct Browser {
    client: Client,
    _profile: TempDir,
}

impl Browser {
    /// Opens `url` and waits for its load event (so for its `async` scripts too).
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"));
    }

    pub async fn reload(&self) {
        self.client.refresh().await.unwrap();
    }

    /// Clicks the element `css` selects, as a person would.
    pub async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.click().await.unwrap();
    }

    /// Waits until the page is one whose URL starts with `prefix` and has loaded; returns its URL.
    pub async fn wait_for_page(&self, prefix: &str) -> url::Url {
        let deadline = Instant::now() + STEP_DEADLINE;
        loop {
            let url = self.client.current_url().await.unwrap();
            if url.as_str().starts_with(prefix)
                && self.script("return document.readyState").await == "complete"
            {
                return url;
            }
            assert!(
                Instant::now() < deadline,
                "still on {url}, waiting for {prefix}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `body` as a function in the page and returns what it returns.
    pub async fn script(&self, body: &str) -> Value {
        self.client.execute(body, Vec::new()).await.unwrap()
    }

    /// `document.cookie` of the page: the cookies its scripts can see.
    pub async fn document_cookie(&self) -> String {
        self.script("return document.cookie")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The browser's cookie `name` for the current page's site, HttpOnly ones included.
    pub async fn cookie(&self, name: &str) -> Option<fantoccini::cookies::Cookie<'static>> {
        let cookies = self.client.get_all_cookies().await.unwrap();
        cookies.into_iter().find(|cookie| cookie.name() == name)
    }

    /// Ends the session and its Chromium.
    pub async fn close(self) {
        self.client.close().await.unwrap();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
