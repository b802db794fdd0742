//! Finding the secret- and personal-typed values of a payload by their type: a serializer that
//! walks the whole value and notes what it finds under the reserved newtype names of
//! [`crate::sensitive`], where and with which value.

use std::fmt;

use serde::ser::{
    self, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant,
    SerializeTuple, SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

use crate::redact::leaf_methods;
use crate::sensitive::{Sensitivity, sensitivity};

/// A secret- or personal-typed value found in a value by its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SensitiveValue {
    pub kind: Sensitivity,
    /// Where it is: field names from the top down, `[i]` for elements, e.g.
    /// `signing_key.sealed_private_key`.
    pub path: String,
    /// The struct field or map key that holds it; empty for an element of a sequence.
    pub field: String,
    /// Whether it is the whole value of a struct field or map entry: the only place where the
    /// public forms can leave it out and the schemas can say so (see [`crate::sensitive`]).
    pub whole_field: bool,
    /// Its JSON text.
    pub json: String,
}

impl SensitiveValue {
    /// What of this value `text` (JSON) gives away, if anything: its field name as a key, or
    /// its value (a string's content, anything else's JSON text).
    pub fn leaked_in(&self, text: &str) -> Option<String> {
        if !self.field.is_empty() && text.contains(&format!("\"{}\"", self.field)) {
            return Some(format!("the name {:?}", self.field));
        }
        let value = self.value_text();
        (!value.is_empty() && text.contains(value)).then(|| format!("the value {value}"))
    }

    /// The text to look for: a string's content without its quotes, else the JSON text.
    pub fn value_text(&self) -> &str {
        self.json
            .strip_prefix('"')
            .and_then(|rest| rest.strip_suffix('"'))
            .unwrap_or(&self.json)
    }

    /// Whether the value is distinctive enough that not finding it means something: not
    /// `null`, and at least 8 characters long.
    pub fn is_distinctive(&self) -> bool {
        self.json != "null" && self.value_text().len() >= 8
    }
}

/// Removes the values `found` in it (by their paths) from `json`, the JSON form of the value
/// they were found in: what the public forms do without the `Value`.
pub fn remove_sensitive(json: &mut serde_json::Value, found: &[SensitiveValue]) {
    for value in found {
        remove_path(json, &value.path);
    }
}

fn remove_path(json: &mut serde_json::Value, path: &str) {
    // `a.b[2].c`: keys between dots, indexes in brackets.
    let steps: Vec<&str> = path
        .split(['.', '['])
        .filter(|step| !step.is_empty())
        .collect();
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut at = json;
    for step in parents {
        let next = match step.strip_suffix(']') {
            Some(index) => index.parse().ok().and_then(|i: usize| at.get_mut(i)),
            None => at.get_mut(*step),
        };
        match next {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(map) = at.as_object_mut() {
        map.remove(*last);
    }
}

/// Every secret- and personal-typed value inside `value`, in serialization order.
pub fn sensitive_values(value: &impl Serialize) -> Vec<SensitiveValue> {
    let mut found = Vec::new();
    // A value that cannot be serialized has nothing to leak either; the tests that use this
    // serialize the same values successfully elsewhere.
    let _ = value.serialize(Recorder {
        found: &mut found,
        path: String::new(),
        field: String::new(),
        whole_field: false,
    });
    found
}

/// The serializer that walks a value: `path` and `field` say where the value being serialized
/// sits, `whole_field` whether it is a struct field's or map entry's whole value.
struct Recorder<'a> {
    found: &'a mut Vec<SensitiveValue>,
    path: String,
    field: String,
    whole_field: bool,
}

impl<'a> Recorder<'a> {
    fn nested(&mut self, step: &str, field: &str, whole_field: bool) -> Recorder<'_> {
        let path = if self.path.is_empty() || step.is_empty() || step.starts_with('[') {
            format!("{}{step}", self.path)
        } else {
            format!("{}.{step}", self.path)
        };
        Recorder {
            found: self.found,
            path,
            field: field.to_owned(),
            whole_field,
        }
    }

    fn compound(self) -> Walk<'a> {
        Walk {
            recorder: self,
            index: 0,
            key: String::new(),
        }
    }
}

#[derive(Debug)]
struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error(message.to_string())
    }
}

macro_rules! leaf {
    ($($method:ident($($ty:ty),*);)*) => {
        $(fn $method(self, $(_: $ty),*) -> Result<(), Error> {
            Ok(())
        })*
    };
}

impl<'a> Serializer for Recorder<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Walk<'a>;
    type SerializeTuple = Walk<'a>;
    type SerializeTupleStruct = Walk<'a>;
    type SerializeTupleVariant = Walk<'a>;
    type SerializeMap = Walk<'a>;
    type SerializeStruct = Walk<'a>;
    type SerializeStructVariant = Walk<'a>;

    leaf_methods!(leaf);

    // `Some` of a wrapper is not a whole field: its `None` would show.
    fn serialize_some<T: Serialize + ?Sized>(mut self, value: &T) -> Result<(), Error> {
        value.serialize(self.nested("", &self.field.clone(), false))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        match sensitivity(name) {
            Some(kind) => {
                let json = serde_json::to_string(value).map_err(ser::Error::custom)?;
                self.found.push(SensitiveValue {
                    kind,
                    path: self.path,
                    field: self.field,
                    whole_field: self.whole_field,
                    json,
                });
                Ok(())
            }
            None => value.serialize(self.nested("", "", false)),
        }
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self.nested(variant, "", false))
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Walk<'a>, Error> {
        Ok(self.compound())
    }

    fn serialize_tuple(self, _: usize) -> Result<Walk<'a>, Error> {
        Ok(self.compound())
    }

    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Walk<'a>, Error> {
        Ok(self.compound())
    }

    fn serialize_tuple_variant(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Walk<'a>, Error> {
        let path = self.nested(variant, "", false).path;
        self.path = path;
        Ok(self.compound())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Walk<'a>, Error> {
        Ok(self.compound())
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Walk<'a>, Error> {
        Ok(self.compound())
    }

    fn serialize_struct_variant(
        mut self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Walk<'a>, Error> {
        let path = self.nested(variant, "", false).path;
        self.path = path;
        Ok(self.compound())
    }
}

/// The elements, fields or entries of a compound value, each walked in turn.
struct Walk<'a> {
    recorder: Recorder<'a>,
    index: usize,
    /// Maps: the key just written, as a JSON object would name it.
    key: String,
}

impl Walk<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let step = format!("[{}]", self.index);
        self.index += 1;
        value.serialize(self.recorder.nested(&step, "", false))
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        value.serialize(self.recorder.nested(key, key, true))
    }
}

macro_rules! elements {
    ($($trait:ident::$method:ident),*) => {
        $(impl $trait for Walk<'_> {
            type Ok = ();
            type Error = Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }

            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        })*
    };
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

macro_rules! fields {
    ($($trait:ident),*) => {
        $(impl $trait for Walk<'_> {
            type Ok = ();
            type Error = Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.field(key, value)
            }

            fn end(self) -> Result<(), Error> {
                Ok(())
            }
        })*
    };
}

fields!(SerializeStruct, SerializeStructVariant);

impl SerializeMap for Walk<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = match serde_json::to_value(key) {
            Ok(serde_json::Value::String(name)) => name,
            Ok(other) => other.to_string(),
            Err(error) => return Err(ser::Error::custom(error)),
        };
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = std::mem::take(&mut self.key);
        self.field(&key, value)
    }

    fn end(self) -> Result<(), Error> {
        Ok(())
    }
}
