//! A serde `Deserializer` over the layered [`Node`] tree.
//!
//! Two things make it worth having instead of `toml::Value`'s deserializer:
//! errors come back as [`Problem`]s carrying the exact key path (so the loader
//! can name the layer that supplied the value), and untyped text from the
//! environment or a flag is read as whatever the target field wants — a
//! number for `token_lifetime_secs`, a string for `listen`.

use std::slice;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::{Problem, Seg};
use crate::tree::{Node, Value};

/// Deserialize `T` from `node`.
pub(crate) fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, Problem> {
    T::deserialize(NodeDe(node))
}

struct NodeDe<'a>(&'a Node);

fn parse_problem(message: String) -> Problem {
    <Problem as de::Error>::custom(message)
}

/// Integer targets: TOML integers pass through; text must parse.
macro_rules! integer_methods {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
            match &self.0.value {
                Value::Text(text) => match text.trim().parse::<i128>() {
                    Ok(n) => visit_integer(n, visitor),
                    Err(_) => Err(parse_problem(format!("'{text}' is not a whole number"))),
                },
                _ => self.deserialize_any(visitor),
            }
        }
    )*};
}

fn visit_integer<'de, V: Visitor<'de>>(n: i128, visitor: V) -> Result<V::Value, Problem> {
    match i64::try_from(n) {
        Ok(small) => visitor.visit_i64(small),
        Err(_) => visitor.visit_i128(n),
    }
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = Problem;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match &self.0.value {
            Value::Str(s) | Value::Text(s) | Value::Datetime(s) => visitor.visit_str(s),
            Value::Int(n) => visit_integer(*n, visitor),
            Value::Float(x) => visitor.visit_f64(*x),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Array(items) => visitor.visit_seq(Seq { items: items.iter(), index: 0 }),
            Value::Table(entries) => visitor.visit_map(Map { entries: entries.iter(), current: None }),
        }
    }

    integer_methods!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    );

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match &self.0.value {
            Value::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" => visitor.visit_bool(true),
                "false" => visitor.visit_bool(false),
                _ => Err(parse_problem(format!("'{text}' is not true or false"))),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match &self.0.value {
            Value::Text(text) => match text.trim().parse::<f64>() {
                Ok(x) => visitor.visit_f64(x),
                Err(_) => Err(parse_problem(format!("'{text}' is not a number"))),
            },
            Value::Int(n) => visitor.visit_f64(*n as f64),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match &self.0.value {
            // `FERRY_DATABASE=` (empty) means "not set": fall back to the default.
            Value::Text(text) if text.is_empty() => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match &self.0.value {
            // `FERRY_AUTH__AUDIENCES=https://a,https://b`
            Value::Text(text) => {
                let items: Vec<Node> = text
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| Node::new(Value::Text(item.to_owned()), self.0.origin.clone()))
                    .collect();
                visitor.visit_seq(Seq { items: items.iter(), index: 0 })
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Problem> {
        match &self.0.value {
            Value::Str(s) | Value::Text(s) => visitor.visit_enum(StrDeserializer::<Problem>::new(s)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Problem> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct tuple tuple_struct map struct
        identifier ignored_any
    }
}

struct Seq<'a> {
    items: slice::Iter<'a, Node>,
    index: usize,
}

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = Problem;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Problem> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(NodeDe(item)).map(Some).map_err(|e| e.within(Seg::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'a> {
    entries: slice::Iter<'a, (String, Node)>,
    current: Option<&'a (String, Node)>,
}

impl<'de> MapAccess<'de> for Map<'_> {
    type Error = Problem;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Problem> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.current = Some(entry);
        seed.deserialize(StrDeserializer::<Problem>::new(&entry.0))
            .map(Some)
            .map_err(|e| e.within(Seg::Key(entry.0.clone())))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Problem> {
        let Some((key, node)) = self.current.take() else {
            return Err(parse_problem("value requested before key".to_owned()));
        };
        seed.deserialize(NodeDe(node)).map_err(|e| e.within(Seg::Key(key.clone())))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}
