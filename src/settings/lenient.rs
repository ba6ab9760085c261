//! Reading the settings leniently, as CloudFormation and YAML hand them over: a deserializer
//! over a JSON value that gives each field what its type asks for. The schema's types stay
//! plain (`String`, `bool`, `u32`, `Vec<String>`, sections) and carry no per-field rules:
//!
//! - text: any scalar, as its text (`8`, `true`, `"x"`); null is an error naming the fix;
//! - a flag: `true`/`false`/`yes`/`no` in any case, as text or a boolean;
//! - a count: a whole number, as text or a number;
//! - a list: a list of scalars; one scalar is a list of one, null an empty list;
//! - a section or a mapping: a mapping only (never a list read field by field, which would
//!   set fields without naming them past the unknown-key check); null is the defaults;
//! - a mapping's value of text: null is an error that names the key.

use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    Visitor,
};
use serde_json::{Map, Value};

/// What a section's value must be.
const MAPPING: &str = "a mapping (`key: value` entries)";
/// What a text value must be.
const SCALAR: &str = "a single value (text, number or boolean)";
/// The end of the message for a mapping's entry without a value (after the key).
const NO_VALUE: &str = "` has no value; write \"\" for an empty one";

/// Where a problem is reported: at `path`, except that an entry without a value, named by its
/// key in `message`, is reported at the mapping that holds it (`build.variables`).
pub(super) fn problem_path(path: String, message: &str) -> String {
    let Some((key, _)) = message
        .strip_prefix('`')
        .and_then(|m| m.split_once(NO_VALUE))
    else {
        return path;
    };
    match path.strip_suffix(key).and_then(|p| p.strip_suffix('.')) {
        Some(mapping) => mapping.to_owned(),
        None => path,
    }
}

/// Where a value stands, for the message when it is missing.
#[derive(Debug, Clone)]
enum Place {
    /// A field of a section (or the root).
    Field,
    /// The value of `key` in a mapping.
    Entry(String),
    /// An item of a list.
    Item,
}

/// A JSON value read leniently.
#[derive(Debug)]
pub(super) struct Lenient {
    value: Value,
    place: Place,
}

impl Lenient {
    /// The settings' root.
    pub(super) fn root(value: Value) -> Self {
        Self {
            value,
            place: Place::Field,
        }
    }
}

/// What a JSON value is, for type errors.
fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), ..) => Unexpected::Unsigned(u),
            (_, Some(i), _) => Unexpected::Signed(i),
            (.., Some(f)) => Unexpected::Float(f),
            _ => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// A scalar's text: strings as they are, numbers and booleans as they print.
fn scalar_text(value: Value) -> Result<String, Value> {
    match value {
        Value::String(s) => Ok(s),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), ..) => u.to_string(),
            (_, Some(i), _) => i.to_string(),
            (.., Some(f)) => f.to_string(),
            _ => n.to_string(),
        }),
        other => Err(other),
    }
}

fn parse_flag<E: de::Error>(text: &str) -> Result<bool, E> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(E::custom(format!("expected true or false, found `{text}`"))),
    }
}

impl Lenient {
    /// The value as text, or why it is none.
    fn text(self) -> Result<String, serde_json::Error> {
        use de::Error as _;
        match (self.value, self.place) {
            (Value::Null, Place::Field) => Err(serde_json::Error::custom(
                "needs a value; remove the key to use the default",
            )),
            (Value::Null, Place::Entry(key)) => {
                Err(serde_json::Error::custom(format!("`{key}{NO_VALUE}")))
            }
            (value, _) => scalar_text(value)
                .map_err(|other| serde_json::Error::invalid_type(unexpected(&other), &SCALAR)),
        }
    }

    fn map<'de, V: Visitor<'de>>(
        self,
        visitor: V,
        entries: bool,
    ) -> Result<V::Value, serde_json::Error> {
        use de::Error as _;
        match self.value {
            Value::Null => visitor.visit_map(Entries::new(Map::new(), entries)),
            Value::Object(map) => visitor.visit_map(Entries::new(map, entries)),
            other => Err(serde_json::Error::invalid_type(
                unexpected(&other),
                &MAPPING,
            )),
        }
    }
}

impl<'de> Deserializer<'de> for Lenient {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.value.deserialize_any(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_bool(parse_flag(&self.text()?)?)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        use de::Error as _;
        let t = self.text()?;
        let n = t.trim().parse::<u32>().map_err(|_| {
            serde_json::Error::custom(format!("expected a whole number, found `{t}`"))
        })?;
        visitor.visit_u32(n)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_string(self.text()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_string(self.text()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        use de::Error as _;
        match self.value {
            Value::Null => visitor.visit_seq(Items(Vec::new().into_iter())),
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Object(_) => Err(serde_json::Error::invalid_type(
                Unexpected::Map,
                &"a list of values",
            )),
            scalar => visitor.visit_seq(Items(vec![scalar].into_iter())),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.map(visitor, true)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.map(visitor, false)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.value.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u64 u128 f32 f64 char bytes byte_buf unit unit_struct
        newtype_struct tuple tuple_struct identifier ignored_any
    }
}

/// A mapping's entries, each value read leniently.
struct Entries {
    iter: serde_json::map::IntoIter,
    /// The entries of a mapping (whose missing text values are named by key), not a section's
    /// fields.
    entries: bool,
    value: Option<(String, Value)>,
}

impl Entries {
    fn new(map: Map<String, Value>, entries: bool) -> Self {
        Self {
            iter: map.into_iter(),
            entries,
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Entries {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        let read = seed.deserialize(key.as_str().into_deserializer())?;
        self.value = Some((key, value));
        Ok(Some(read))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        use de::Error as _;
        let (key, value) = self
            .value
            .take()
            .ok_or_else(|| serde_json::Error::custom("a value without its key"))?;
        let place = if self.entries {
            Place::Entry(key)
        } else {
            Place::Field
        };
        seed.deserialize(Lenient { value, place })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// A list's items, each read leniently.
struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|value| {
                seed.deserialize(Lenient {
                    value,
                    place: Place::Item,
                })
            })
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}
