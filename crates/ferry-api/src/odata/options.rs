//! OData system query options of a collection request, and the opaque `$skiptoken` that
//! carries paging state between pages.

use crate::error::{ApiError, ApiResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Splits a query string into decoded pairs (`+` means space, as browsers and most clients
/// send it).
pub(crate) fn split_query(query: &str) -> ApiResult<Vec<(String, String)>> {
    let decode = |s: &str| -> ApiResult<String> {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| ApiError::bad_request("the query string is not valid UTF-8"))
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// The query options ferry understands, as given (not yet bound to an entity).
#[derive(Debug, Default)]
pub(crate) struct Options {
    pub filter: Option<String>,
    pub select: Option<String>,
    pub orderby: Option<String>,
    pub top: Option<u64>,
    pub skip: Option<u64>,
    pub count: bool,
    pub cross_company: bool,
    pub skiptoken: Option<SkipToken>,
    pub deltatoken: Option<i64>,
}

fn parse_number(name: &str, value: &str) -> ApiResult<u64> {
    value.trim().parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!("{name}: '{value}' is not a non-negative whole number")).with_target(name)
    })
}

impl Options {
    pub(crate) fn parse(query: &[(String, String)]) -> ApiResult<Options> {
        let mut o = Options::default();
        for (key, value) in query {
            let lower = key.to_ascii_lowercase();
            match lower.as_str() {
                "$filter" => o.filter = Some(value.clone()),
                "$select" => o.select = Some(value.clone()),
                "$orderby" => o.orderby = Some(value.clone()),
                "$top" => o.top = Some(parse_number("$top", value)?),
                "$skip" => o.skip = Some(parse_number("$skip", value)?),
                "$count" => {
                    o.count = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(ApiError::bad_request(format!("$count: '{value}' is not true or false"))),
                    }
                }
                "$skiptoken" => o.skiptoken = Some(SkipToken::decode(value)?),
                "$deltatoken" => {
                    o.deltatoken = Some(value.trim().parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                        ApiError::bad_request(format!("$deltatoken '{value}' is not a delta token issued by ferry"))
                            .with_target("$deltatoken")
                    })?)
                }
                "cross-company" => {
                    o.cross_company = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "cross-company: '{value}' is not true or false"
                            )));
                        }
                    }
                }
                "$format" if value.to_ascii_lowercase().starts_with("json") || value.contains("application/json") => {}
                "$expand" | "$search" | "$apply" | "$compute" | "$levels" | "$format" => {
                    return Err(ApiError::bad_request(format!("the query option {key} is not supported by ferry"))
                        .with_target(key.clone()));
                }
                other if other.starts_with('$') => {
                    return Err(ApiError::bad_request(format!("unknown query option {key}")).with_target(key.clone()));
                }
                // Custom options (e.g. cache busters) are ignored, as OData allows.
                _ => {}
            }
        }
        Ok(o)
    }
}

/// Paging state between pages of one result.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct SkipToken {
    /// Keyset: the company and key values (as text) of the last row served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<Vec<String>>,
    /// Offset paging (with `$orderby`): rows to skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o: Option<u64>,
    /// Rows still to serve under `$top`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<u64>,
    /// Change tracking: the version the result is consistent with (base of the delta link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<i64>,
}

impl SkipToken {
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("token serializes"))
    }

    fn decode(text: &str) -> ApiResult<SkipToken> {
        URL_SAFE_NO_PAD.decode(text.trim()).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).ok_or_else(
            || {
                ApiError::bad_request("$skiptoken is not one ferry issued; follow @odata.nextLink as given")
                    .with_target("$skiptoken")
            },
        )
    }
}

/// Percent-encodes a query option value for a link.
pub(crate) fn encode_value(value: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'$')
        .remove(b',')
        .remove(b'(')
        .remove(b')')
        .remove(b'\'');
    percent_encoding::utf8_percent_encode(value, SET).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options_and_rejects_unknown_ones() {
        let q = split_query("$filter=Name%20eq%20'a+b'&$top=5&cross-company=TRUE&foo=bar").unwrap();
        let o = Options::parse(&q).unwrap();
        assert_eq!(o.filter.as_deref(), Some("Name eq 'a b'"));
        assert_eq!(o.top, Some(5));
        assert!(o.cross_company);
        assert!(Options::parse(&split_query("$expand=x").unwrap()).unwrap_err().message.contains("not supported"));
        assert!(Options::parse(&split_query("$top=-1").unwrap()).unwrap_err().message.contains("$top"));
        assert!(Options::parse(&split_query("$frobnicate=1").unwrap()).is_err());
        assert!(Options::parse(&split_query("$skiptoken=garbage").unwrap()).is_err());
    }

    #[test]
    fn skiptokens_round_trip() {
        let t = SkipToken { c: Some("usmf".into()), k: Some(vec!["10".into()]), r: Some(3), ..Default::default() };
        let q = split_query(&format!("$skiptoken={}", t.encode())).unwrap();
        assert_eq!(Options::parse(&q).unwrap().skiptoken, Some(t));
    }
}
