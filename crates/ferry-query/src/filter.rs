//! The `$filter` parser: recursive descent over the tokens, with OData precedence
//! (`not` > comparison > `and` > `or`), a nesting limit, and errors that say what was expected
//! where. Chains of `and` / `or` become balanced trees (see [`balanced`]).
//!
//! `not` applies to the whole comparison after it (`not Name eq 'x'` is `not (Name eq 'x')`);
//! for boolean operands this agrees with OData's stricter reading, since `(not a) eq b` and
//! `not (a eq b)` are the same. A boolean function may be compared with `true` or `false`
//! (`contains(Name,'x') eq false`), which folds into the function or its negation.

use crate::ast::{CmpOp, Expr, KNOWN_FUNCTIONS, Literal, MatchKind, Operand, StringFunc};
use crate::lexer::{Cursor, Tok, Token, lex};
use crate::{MAX_DEPTH, QueryError, check_length};

const CLAUSE: &str = "$filter";

/// Operators OData has but ferry does not; named in the error instead of "expected …".
const UNSUPPORTED_OPERATORS: &[&str] = &["in", "has", "add", "sub", "mul", "div", "divby", "mod"];

/// Parses a `$filter` expression (the query option's value, already percent-decoded).
pub fn parse_filter(text: &str) -> Result<Expr, QueryError> {
    check_length(CLAUSE, text)?;
    let mut p = Parser { c: Cursor::new(CLAUSE, lex(CLAUSE, text)?), depth: 0 };
    if p.c.peek().tok == Tok::End {
        return Err(QueryError::new("$filter: is empty; write a condition such as Name eq 'x'"));
    }
    let expr = p.or()?;
    match p.c.peek().tok {
        Tok::End => Ok(expr),
        Tok::RParen => Err(p.c.fail(format!("unmatched ')' at position {}", p.c.peek().pos))),
        _ => Err(p.c.expected("'and', 'or' or the end of the filter")),
    }
}

/// `true`, `false` and `null` are names to the lexer; this makes them literals.
pub(crate) fn keyword_literal(name: &str) -> Option<Literal> {
    match name.to_ascii_lowercase().as_str() {
        "true" => Some(Literal::Bool(true)),
        "false" => Some(Literal::Bool(false)),
        "null" => Some(Literal::Null),
        _ => None,
    }
}

/// Joins a chain `a or b or c …` into a balanced tree, in order. `and` and `or` are
/// associative, so the grouping does not change the meaning, and a balanced tree keeps the
/// depth of long chains (`Id eq 1 or Id eq 2 or …`, hundreds of terms) logarithmic for
/// everything that walks it recursively. Up to three terms it is the usual left-leaning tree.
fn balanced(mut terms: Vec<Expr>, join: fn(Box<Expr>, Box<Expr>) -> Expr) -> Expr {
    if terms.len() == 1 {
        return terms.pop().expect("one term");
    }
    let right = terms.split_off(terms.len().div_ceil(2));
    join(Box::new(balanced(terms, join)), Box::new(balanced(right, join)))
}

struct Parser<'a> {
    c: Cursor<'a>,
    depth: usize,
}

impl Parser<'_> {
    /// Counts one level of nesting at `token`; fails beyond [`MAX_DEPTH`].
    fn enter(&mut self, token: &Token) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.c.fail(format!("nested deeper than {MAX_DEPTH} levels at position {}", token.pos)));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut terms = vec![self.and()?];
        while self.c.peek().is_word("or") {
            self.c.next();
            terms.push(self.and()?);
        }
        Ok(balanced(terms, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut terms = vec![self.unary()?];
        while self.c.peek().is_word("and") {
            self.c.next();
            terms.push(self.unary()?);
        }
        Ok(balanced(terms, Expr::And))
    }

    fn unary(&mut self) -> Result<Expr, QueryError> {
        if self.c.peek().is_word("not") {
            let token = self.c.next();
            self.enter(&token)?;
            let inner = self.unary()?;
            self.leave();
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.condition()
    }

    /// A parenthesised expression, a boolean function, or `operand op operand`.
    fn condition(&mut self) -> Result<Expr, QueryError> {
        let first = self.c.peek().clone();
        if first.tok == Tok::LParen {
            self.c.next();
            self.enter(&first)?;
            let inner = self.or()?;
            self.c.expect(Tok::RParen, "'and', 'or' or ')'")?;
            self.leave();
            return self.compared_with_bool(inner);
        }
        if let Tok::Ident(name) = &first.tok
            && self.c.peek2().tok == Tok::LParen
            && let Some(kind) = MatchKind::from_name(name)
        {
            let name = kind.name();
            self.c.next();
            self.c.next();
            self.enter(&first)?;
            let subject = self.operand()?;
            self.c.expect(Tok::Comma, &format!("',' ({name}() takes two arguments)"))?;
            let pattern = self.operand()?;
            self.c.expect(Tok::RParen, &format!("')' ({name}() takes two arguments)"))?;
            self.leave();
            return self.compared_with_bool(Expr::Match { kind, subject, pattern });
        }

        let left = self.operand()?;
        let Some(op) = self.comparison_operator()? else {
            let next = self.c.peek();
            let ends = matches!(next.tok, Tok::End | Tok::RParen) || next.is_word("and") || next.is_word("or");
            return Err(if ends {
                self.not_a_condition(&left, &first)
            } else {
                self.c.expected("a comparison operator (eq, ne, gt, ge, lt, le)")
            });
        };
        let right = self.operand()?;
        Ok(Expr::Compare { op, left, right })
    }

    /// Consumes a comparison operator if one is next; names unsupported operators.
    fn comparison_operator(&mut self) -> Result<Option<CmpOp>, QueryError> {
        let next = self.c.peek();
        if let Tok::Ident(word) = &next.tok {
            if let Some(op) = CmpOp::from_keyword(word) {
                self.c.next();
                return Ok(Some(op));
            }
            if UNSUPPORTED_OPERATORS.iter().any(|u| u.eq_ignore_ascii_case(word)) {
                return Err(self.c.fail(format!(
                    "operator '{}' at position {} is not supported (supported: eq, ne, gt, ge, lt, le, and, or, not)",
                    word.to_ascii_lowercase(),
                    next.pos
                )));
            }
        }
        if next.tok == Tok::Equals {
            return Err(self.c.fail(format!("'=' at position {} is not an OData operator; write eq", next.pos)));
        }
        Ok(None)
    }

    /// `<condition> eq true` and friends: fold the comparison away.
    fn compared_with_bool(&mut self, expr: Expr) -> Result<Expr, QueryError> {
        let op_token = self.c.peek().clone();
        let Some(op) = self.comparison_operator()? else { return Ok(expr) };
        let value = self.c.next();
        let value = match &value.tok {
            Tok::Ident(name) => match keyword_literal(name) {
                Some(Literal::Bool(b)) => Some(b),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            QueryError::new(format!(
                "$filter: a condition can only be compared with true or false (at position {}, found {})",
                value.pos,
                value.describe()
            ))
        })?;
        match op {
            CmpOp::Eq | CmpOp::Ne if (op == CmpOp::Eq) == value => Ok(expr),
            CmpOp::Eq | CmpOp::Ne => Ok(Expr::Not(Box::new(expr))),
            _ => Err(self.c.fail(format!(
                "'{}' at position {} cannot compare a condition; use eq or ne with true or false",
                op.keyword(),
                op_token.pos
            ))),
        }
    }

    fn not_a_condition(&self, left: &Operand, first: &Token) -> QueryError {
        let message = match left {
            Operand::Property(name) => format!(
                "property '{name}' at position {} is not a condition; compare it with a value, e.g. {name} eq true",
                first.pos
            ),
            Operand::Literal(lit) => format!(
                "the value {lit} at position {} is not a condition; compare a property with it, e.g. Name eq 'x'",
                first.pos
            ),
            Operand::Function { func, .. } => format!(
                "{}(...) at position {} is not a condition; compare it with a value, e.g. {}(Name) eq 'x'",
                func.name(),
                first.pos,
                func.name()
            ),
        };
        QueryError::new(format!("{CLAUSE}: {message}"))
    }

    /// A property, a literal or a string function of an operand.
    fn operand(&mut self) -> Result<Operand, QueryError> {
        let token = self.c.peek().clone();
        let name = match &token.tok {
            Tok::Literal(lit) => {
                self.c.next();
                return Ok(Operand::Literal(lit.clone()));
            }
            Tok::Ident(name) => name.clone(),
            _ => return Err(self.c.expected("a property or a value")),
        };
        if self.c.peek2().tok == Tok::LParen {
            let Some(func) = StringFunc::from_name(&name) else {
                let message = if MatchKind::from_name(&name).is_some() {
                    format!(
                        "{}() at position {} yields true or false and cannot be used as a value",
                        name.to_ascii_lowercase(),
                        token.pos
                    )
                } else {
                    format!("unknown function '{name}' at position {} (known: {KNOWN_FUNCTIONS})", token.pos)
                };
                return Err(self.c.fail(message));
            };
            self.c.next();
            self.c.next();
            self.enter(&token)?;
            let arg = self.operand()?;
            self.c.expect(Tok::RParen, &format!("')' ({}() takes one argument)", func.name()))?;
            self.leave();
            return Ok(Operand::Function { func, arg: Box::new(arg) });
        }
        if let Some(lit) = keyword_literal(&name) {
            self.c.next();
            return Ok(Operand::Literal(lit));
        }
        let is_keyword =
            CmpOp::from_keyword(&name).is_some() || ["and", "or", "not"].iter().any(|k| k.eq_ignore_ascii_case(&name));
        if is_keyword {
            return Err(self.c.expected("a property or a value"));
        }
        if name.contains('.') {
            return Err(self.c.fail(format!(
                "'{name}' at position {} is not a property name (names cannot contain '.')",
                token.pos
            )));
        }
        self.c.next();
        Ok(Operand::Property(name))
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
