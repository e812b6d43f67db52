/// What went wrong talking to ClickHouse, split by what the caller should do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The server could not be reached or could not take the work now; trying again later
    /// may succeed. Surfaces as 503 with Retry-After.
    #[error("clickhouse is unavailable: {0}")]
    Unavailable(String),
    /// The server refused the statement itself; retrying the same statement cannot help.
    #[error("clickhouse refused the statement: {0}")]
    Refused(String),
    /// A stored row does not read back as a valid domain value.
    #[error("{0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// Whether a quorum INSERT was refused because another one into the same table and
    /// shard has not reached its quorum yet.
    pub(crate) fn is_quorum_busy(&self) -> bool {
        matches!(self, StoreError::Unavailable(text) if exception_code(text) == Some(286))
    }

    /// Whether the node asked is to blame (it did not answer, or said it cannot serve),
    /// rather than the statement or the rest of the cluster; another node may do better.
    pub(crate) fn is_node_failure(&self) -> bool {
        let StoreError::Unavailable(text) = self else {
            return false;
        };
        // A shard or quorum the whole cluster lacks is not this node's fault.
        !matches!(exception_code(text), Some(279 | 285 | 286 | 319))
    }
}

impl From<clickhouse::error::Error> for StoreError {
    fn from(error: clickhouse::error::Error) -> Self {
        use clickhouse::error::Error;
        match &error {
            // The exchange broke off: the connection, a timeout, the client's background
            // task ending (Custom), a response stream that could not be read to its end
            // (Decompression, Other). Nothing says the statement was wrong.
            Error::Network(_)
            | Error::TimedOut
            | Error::Custom(_)
            | Error::Decompression(_)
            | Error::Other(_) => StoreError::Unavailable(error.to_string()),
            Error::BadResponse(text) => match exception_code(text) {
                Some(code) if is_retryable_code(code) => StoreError::Unavailable(text.clone()),
                _ => StoreError::Refused(text.clone()),
            },
            // The rest describe rows or parameters that do not fit the schema: a bug here,
            // which the same statement would repeat.
            _ => StoreError::Refused(error.to_string()),
        }
    }
}

/// The `Code: N` ClickHouse puts at the start of every exception text.
fn exception_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + "Code: ".len()..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

/// Exception codes that describe the server's state rather than the statement. Every code
/// not listed is treated as a refusal and not retried: syntax errors (62), unknown tables
/// or columns (60, 16, 47), type mismatches and unreadable row data (53, 33, 27) and
/// authentication failures (192, 193, 516, 497) mean the statement or the configuration
/// is wrong, and sending it again only repeats the error.
fn is_retryable_code(code: u32) -> bool {
    matches!(
        code,
        159 // TIMEOUT_EXCEEDED
            | 164 // READONLY: a replica switching roles
            | 202 // TOO_MANY_SIMULTANEOUS_QUERIES
            | 203 // NO_FREE_CONNECTION
            | 209 // SOCKET_TIMEOUT
            | 210 // NETWORK_ERROR
            | 241 // MEMORY_LIMIT_EXCEEDED: usually transient pressure from other queries
            | 242 // TABLE_IS_READ_ONLY
            | 252 // TOO_MANY_PARTS: merges will catch up
            | 254 // NO_ACTIVE_REPLICAS / a replica became inactive during a quorum INSERT
            | 279 // ALL_CONNECTION_TRIES_FAILED: a whole shard is away
            | 285 // TOO_FEW_LIVE_REPLICAS: the INSERT's quorum cannot be met now
            | 286 // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE: another quorum INSERT in flight
            | 319 // UNKNOWN_STATUS_OF_INSERT
            | 425 // SYSTEM_ERROR
            | 999 // KEEPER_EXCEPTION: ZooKeeper unreachable or its session being renewed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_codes_are_read_from_server_text() {
        let text = "Code: 252, e.displayText() = DB::Exception: Too many parts (300)";
        assert_eq!(exception_code(text), Some(252));
        assert_eq!(exception_code("no code here"), None);
    }

    #[test]
    fn server_pressure_is_retried_and_bad_statements_are_not() {
        let too_many_parts = clickhouse::error::Error::BadResponse(
            "Code: 252, e.displayText() = DB::Exception: Too many parts".into(),
        );
        assert!(StoreError::from(too_many_parts).is_retryable());
        let syntax = clickhouse::error::Error::BadResponse(
            "Code: 62, e.displayText() = DB::Exception: Syntax error".into(),
        );
        assert!(!StoreError::from(syntax).is_retryable());
        assert!(StoreError::from(clickhouse::error::Error::TimedOut).is_retryable());
    }

    #[test]
    fn cluster_states_are_retried_and_told_apart() {
        let busy = StoreError::from(clickhouse::error::Error::BadResponse(
            "Code: 286, e.displayText() = DB::Exception: Quorum for previous write has not been \
             satisfied yet"
                .into(),
        ));
        assert!(busy.is_retryable() && busy.is_quorum_busy() && !busy.is_node_failure());
        let shard_away = StoreError::from(clickhouse::error::Error::BadResponse(
            "Code: 279, e.displayText() = DB::Exception: All connection tries failed".into(),
        ));
        assert!(shard_away.is_retryable() && !shard_away.is_node_failure());
        let refused = StoreError::from(clickhouse::error::Error::Network("refused".into()));
        assert!(refused.is_node_failure() && !refused.is_quorum_busy());
    }
}
