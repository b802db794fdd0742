//! Serializing a value without some of its fields, straight to the output.
//!
//! [`Without`] wraps any `Serialize` value and drops, at any depth, every struct field and
//! every map entry whose name the given predicate picks. It does the same as serializing into a
//! `serde_json::Value`, removing the fields, and serializing that again, without building the
//! `Value` (a map and an allocation per field): the audit projection writes one redacted
//! summary per event, and that tree was most of the cost of an audit row.
//!
//! The one visible difference is key order: fields keep their declaration order instead of the
//! alphabetical order of `Value`'s maps. JSON objects are unordered, and every reader parses
//! them.

use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// `value`, serialized without the fields `hide` names.
pub struct Without<'a, T: ?Sized, F> {
    pub value: &'a T,
    pub hide: &'a F,
}

impl<'a, T: ?Sized, F> Without<'a, T, F> {
    pub fn new(value: &'a T, hide: &'a F) -> Self {
        Self { value, hide }
    }
}

impl<T, F> Serialize for Without<'_, T, F>
where
    T: Serialize + ?Sized,
    F: Fn(&str) -> bool,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Hiding {
            inner: serializer,
            hide: self.hide,
        })
    }
}

/// The serializer behind [`Without`]: forwards everything to `inner`, and wraps the elements
/// of every compound value so that the hiding reaches all depths.
struct Hiding<'a, S, F> {
    inner: S,
    hide: &'a F,
}

/// A compound serializer of `inner` whose elements are wrapped in [`Without`].
struct Compound<'a, C, F> {
    inner: C,
    hide: &'a F,
    /// Maps only: the key just written was hidden, so its value is skipped too.
    skip_value: bool,
}

impl<'a, C, F> Compound<'a, C, F> {
    fn new(inner: C, hide: &'a F) -> Self {
        Self {
            inner,
            hide,
            skip_value: false,
        }
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $method(self, $($arg: $ty),*) -> Result<Self::Ok, Self::Error> {
            self.inner.$method($($arg),*)
        })*
    };
}

/// Starts the compound value in `inner` and wraps it, so that its elements are hidden from too.
macro_rules! compound {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $compound:ident;)*) => {
        $(fn $method(self, $($arg: $ty),*) -> Result<Self::$compound, Self::Error> {
            Ok(Compound::new(self.inner.$method($($arg),*)?, self.hide))
        })*
    };
}

impl<'a, S, F> Serializer for Hiding<'a, S, F>
where
    S: Serializer,
    F: Fn(&str) -> bool,
{
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<'a, S::SerializeSeq, F>;
    type SerializeTuple = Compound<'a, S::SerializeTuple, F>;
    type SerializeTupleStruct = Compound<'a, S::SerializeTupleStruct, F>;
    type SerializeTupleVariant = Compound<'a, S::SerializeTupleVariant, F>;
    type SerializeMap = Compound<'a, S::SerializeMap, F>;
    type SerializeStruct = Compound<'a, S::SerializeStruct, F>;
    type SerializeStructVariant = Compound<'a, S::SerializeStructVariant, F>;

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.serialize_some(&Without::new(value, self.hide))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner
            .serialize_newtype_struct(name, &Without::new(value, self.hide))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner
            .serialize_newtype_variant(name, index, variant, &Without::new(value, self.hide))
    }

    compound! {
        serialize_seq(len: Option<usize>) -> SerializeSeq;
        serialize_tuple(len: usize) -> SerializeTuple;
        serialize_tuple_struct(name: &'static str, len: usize) -> SerializeTupleStruct;
        serialize_tuple_variant(name: &'static str, index: u32, variant: &'static str, len: usize)
            -> SerializeTupleVariant;
        serialize_map(len: Option<usize>) -> SerializeMap;
        serialize_struct(name: &'static str, len: usize) -> SerializeStruct;
        serialize_struct_variant(name: &'static str, index: u32, variant: &'static str, len: usize)
            -> SerializeStructVariant;
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! elements {
    ($trait:ident, $method:ident) => {
        impl<C, F> $trait for Compound<'_, C, F>
        where
            C: $trait,
            F: Fn(&str) -> bool,
        {
            type Ok = C::Ok;
            type Error = C::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                self.inner.$method(&Without::new(value, self.hide))
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    };
}

elements!(SerializeSeq, serialize_element);
elements!(SerializeTuple, serialize_element);
elements!(SerializeTupleStruct, serialize_field);
elements!(SerializeTupleVariant, serialize_field);

macro_rules! fields {
    ($trait:ident) => {
        impl<C, F> $trait for Compound<'_, C, F>
        where
            C: $trait,
            F: Fn(&str) -> bool,
        {
            type Ok = C::Ok;
            type Error = C::Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), C::Error> {
                if (self.hide)(key) {
                    return self.inner.skip_field(key);
                }
                self.inner
                    .serialize_field(key, &Without::new(value, self.hide))
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    };
}

fields!(SerializeStruct);
fields!(SerializeStructVariant);

impl<C, F> SerializeMap for Compound<'_, C, F>
where
    C: SerializeMap,
    F: Fn(&str) -> bool,
{
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.skip_value = key_name(key).is_some_and(|name| (self.hide)(&name));
        if self.skip_value {
            return Ok(());
        }
        self.inner.serialize_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        if std::mem::take(&mut self.skip_value) {
            return Ok(());
        }
        self.inner.serialize_value(&Without::new(value, self.hide))
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

/// A map key as the name a JSON object would give it, when it is a string (JSON turns other
/// keys into strings too, but no such key can name a field).
fn key_name<T: Serialize + ?Sized>(key: &T) -> Option<String> {
    match serde_json::to_value(key) {
        Ok(serde_json::Value::String(name)) => Some(name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::{Value, json};

    use super::Without;
    use crate::events::samples;
    use crate::json::{is_secret_field, strip_secrets};

    fn hidden(value: &impl Serialize) -> Value {
        let text = serde_json::to_string(&Without::new(value, &is_secret_field)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    #[derive(Serialize)]
    struct Inner {
        name: String,
        secret_hash: String,
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(Inner),
        Tuple(u8, Inner),
        Struct { private_key: String, kept: u8 },
    }

    #[derive(Serialize)]
    struct Outer {
        id: u32,
        sealed_key: Vec<u8>,
        inner: Inner,
        maybe: Option<Inner>,
        list: Vec<Inner>,
        map: BTreeMap<String, Inner>,
        shapes: Vec<Shape>,
        #[serde(flatten)]
        extra: BTreeMap<String, String>,
        free: Value,
    }

    #[test]
    fn hides_named_fields_at_every_depth_and_keeps_everything_else() {
        let inner = || Inner {
            name: "n".into(),
            secret_hash: "s".into(),
        };
        let outer = Outer {
            id: 7,
            sealed_key: vec![1, 2],
            inner: inner(),
            maybe: Some(inner()),
            list: vec![inner(), inner()],
            map: BTreeMap::from([
                ("client_secret".to_owned(), inner()),
                ("other".to_owned(), inner()),
            ]),
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(inner()),
                Shape::Tuple(1, inner()),
                Shape::Struct {
                    private_key: "p".into(),
                    kept: 2,
                },
            ],
            extra: BTreeMap::from([
                ("password".to_owned(), "x".to_owned()),
                ("colour".to_owned(), "red".to_owned()),
            ]),
            free: json!({"token_hash": "t", "nested": [{"secret": 1, "ok": true}]}),
        };
        let mut expected = serde_json::to_value(&outer).unwrap();
        strip_secrets(&mut expected);
        let got = hidden(&outer);
        assert_eq!(got, expected);
        // The comparison above is only as good as its input: secrets were there to hide.
        let text = serde_json::to_string(&outer).unwrap();
        for secret in [
            "secret_hash",
            "sealed_key",
            "client_secret",
            "private_key",
            "password",
        ] {
            assert!(text.contains(secret), "{secret} missing from the input");
            assert!(!got.to_string().contains(secret), "{secret} not hidden");
        }
        assert_eq!(got["map"]["other"], json!({"name": "n"}));
        assert_eq!(got["colour"], json!("red"));
    }

    #[test]
    fn every_event_redacts_exactly_like_the_value_route() {
        for event in samples::current() {
            let text = event.data_json_without(&is_secret_field);
            let got: Value = serde_json::from_str(&text).unwrap();
            let mut expected = event.data_json();
            strip_secrets(&mut expected);
            assert_eq!(got, expected, "{}", event.event_type());
        }
    }
}
