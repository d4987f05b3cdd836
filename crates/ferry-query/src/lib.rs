//! ferry-query: the OData v4 query language as ferry speaks it — `$filter`, `$orderby`,
//! `$select` and key predicates — parsed into an unbound syntax tree ([`Expr`]), bound against
//! an entity of the catalog ([`bind_filter`]) and, for small in-memory lists, evaluated
//! directly ([`evaluate`]).
//!
//! This crate is pure: no I/O, no async, no SQL. Every error is a [`QueryError`] whose message
//! names the query option, the problem and, where the text is at fault, the position
//! (counted in characters from 1).

mod ast;
mod bind;
mod clauses;
mod eval;
mod filter;
mod lexer;

pub use ast::{CmpOp, Expr, KeyPredicate, Literal, MatchKind, Operand, OrderBy, StringFunc};
pub use bind::{BoundExpr, BoundOperand, Column, bind_filter, bind_orderby, bind_select};
pub use clauses::{parse_key_predicate, parse_orderby, parse_select};
pub use eval::{PlainValue, evaluate};
pub use filter::parse_filter;

/// The longest query option text accepted, in bytes.
pub const MAX_QUERY_LENGTH: usize = 8 * 1024;

/// The deepest nesting of parentheses, `not` and function calls accepted in a `$filter`.
pub const MAX_DEPTH: usize = 64;

/// A query that cannot be parsed or bound. The message is meant for the client as is, e.g.
/// `$filter: expected ')' at position 17 (found 'and')`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub message: String,
}

impl QueryError {
    pub fn new(message: impl Into<String>) -> QueryError {
        QueryError { message: message.into() }
    }
}

/// Rejects query text longer than [`MAX_QUERY_LENGTH`] before any parsing.
pub(crate) fn check_length(clause: &str, text: &str) -> Result<(), QueryError> {
    if text.len() > MAX_QUERY_LENGTH {
        return Err(QueryError::new(format!(
            "{clause}: is {} bytes long; the maximum is {MAX_QUERY_LENGTH}",
            text.len()
        )));
    }
    Ok(())
}
