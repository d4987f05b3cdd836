//! The client's one error type, sorted by what a caller does about it: the server could not be
//! reached (or kept answering 429 and 5xx until the retries ran out) — try again later; the
//! server or the token endpoint answered and refused — fix the request; the client's own
//! configuration is wrong; a local file could not be read or written.

use std::fmt;

/// What kind of failure an error is; the command line maps these to exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No answer, or only 429 / 5xx answers until the retries ran out.
    Unreachable,
    /// The server answered and refused, or answered something the client cannot read, or a
    /// local file failed.
    Failed,
    /// The client configuration (profile, flags) is wrong.
    Config,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or kept answering 429 / 5xx.
    #[error("{what}: cannot reach {url}: {detail}")]
    Unreachable { what: String, url: String, detail: String },
    /// The server answered and refused.
    #[error("{what}: {url} answered {status}: {message}")]
    Refused { what: String, url: String, status: u16, message: String },
    /// The server answered something this client cannot read.
    #[error("{what}: unexpected answer from {url}: {detail}")]
    Protocol { what: String, url: String, detail: String },
    /// The client configuration is wrong.
    #[error("{0}")]
    Config(String),
    /// A local file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    pub fn failure(&self) -> Failure {
        match self {
            ClientError::Unreachable { .. } => Failure::Unreachable,
            ClientError::Config(_) => Failure::Config,
            _ => Failure::Failed,
        }
    }

    /// The HTTP status the server refused with, if it did.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn io(what: impl fmt::Display, source: std::io::Error) -> ClientError {
        ClientError::Io { what: what.to_string(), source }
    }

    pub(crate) fn protocol(what: &str, url: &str, detail: impl fmt::Display) -> ClientError {
        ClientError::Protocol { what: what.to_owned(), url: url.to_owned(), detail: detail.to_string() }
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// The message of an error answer: the OData envelope's `error.message`, OAuth's
/// `error_description`, Azure's `<Message>`, else the body's first 300 characters.
pub(crate) fn error_message(body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(m) = value.pointer("/error/message").and_then(|m| m.as_str()) {
            return m.to_owned();
        }
        if let Some(m) = value.get("error_description").and_then(|m| m.as_str()) {
            return m.to_owned();
        }
    }
    if let (Some(start), Some(end)) = (body.find("<Message>"), body.find("</Message>"))
        && start < end
    {
        return body[start + "<Message>".len()..end].to_owned();
    }
    let text = body.trim();
    if text.is_empty() { "(no body)".to_owned() } else { text.chars().take(300).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_out_of_each_envelope() {
        assert_eq!(error_message(r#"{"error":{"code":"x","message":"no job"}}"#), "no job");
        assert_eq!(error_message(r#"{"error":"invalid_client","error_description":"bad secret"}"#), "bad secret");
        assert_eq!(error_message("<Error><Code>A</Code><Message>gone</Message></Error>"), "gone");
        assert_eq!(error_message(""), "(no body)");
    }
}
