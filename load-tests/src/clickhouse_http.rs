//! ClickHouse's HTTP interface for the store checks: the SQL goes in the body, rows come
//! back as TabSeparated. Plain HTTP rather than the service's own store code, so the check
//! reads the tables the way a BI tool would and shares no code with what it checks.

use anyhow::{Context, bail};

#[derive(Clone)]
pub struct ClickhouseHttp {
    http: reqwest::Client,
    url: String,
    database: String,
    user: String,
    password: String,
}

impl ClickhouseHttp {
    pub fn new(url: &str, database: &str, user: &str, password: &str) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().no_proxy().build()?,
            url: url.trim_end_matches('/').to_owned(),
            database: database.to_owned(),
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The rows of a SELECT, each a list of unescaped fields.
    pub async fn rows(&self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        let response = self
            .http
            .post(format!("{}/", self.url))
            .query(&[
                ("database", self.database.as_str()),
                ("user", self.user.as_str()),
                ("password", self.password.as_str()),
            ])
            .body(format!("{sql} FORMAT TabSeparated"))
            .send()
            .await
            .with_context(|| format!("asking ClickHouse at {}", self.url))?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("ClickHouse answered {status} to {sql:?}: {}", text.trim());
        }
        Ok(text
            .lines()
            .map(|line| line.split('\t').map(unescape).collect())
            .collect())
    }

    /// The single number a `SELECT count() ...` returns.
    pub async fn count(&self, sql: &str) -> anyhow::Result<u64> {
        let rows = self.rows(sql).await?;
        rows.first()
            .and_then(|row| row.first())
            .and_then(|field| field.parse().ok())
            .with_context(|| format!("{sql:?} returned no count"))
    }
}

/// TabSeparated escapes backslash, tab and newline with a backslash.
fn unescape(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_owned();
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('0') => out.push('\0'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_separated_escapes_are_undone() {
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape(r"a\tb\nc\\d"), "a\tb\nc\\d");
    }
}
