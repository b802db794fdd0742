//! Serializing a value as it may leave the server, straight to the output.
//!
//! [`Without`] wraps any `Serialize` value and leaves out, at any depth, every struct field and
//! every map entry whose value is secret- or personal-typed ([`crate::sensitive`]: a
//! [`Secret`](crate::sensitive::Secret) or [`Personal`](crate::sensitive::Personal), or `Some`
//! of one), whatever its name, and every one whose name a given predicate picks (the audit
//! summary leaves out public JWKs for size; free-form JSON has no types and is judged by name).
//! A sensitive value met anywhere else (an element of a sequence, say) is written as `null`:
//! such a field is a mistake the leak test reports, and its value must not leave meanwhile.
//!
//! It does the same as serializing into a `serde_json::Value` and removing the fields, without
//! building the `Value` (a map and an allocation per field): the audit projection writes one
//! redacted summary per event, and that tree was most of the cost of an audit row. Whether a
//! field's value is sensitive is found by a [`Probe`] that stops at the value's first call to
//! the serializer, before the field's name is written.
//!
//! The one visible difference from the `Value` route is key order: fields keep their
//! declaration order instead of the alphabetical order of `Value`'s maps. JSON objects are
//! unordered, and every reader parses them.

use std::fmt;

use serde::ser::{
    Impossible, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant,
    SerializeTuple, SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

use crate::sensitive::sensitivity;

/// `value`, serialized without its sensitive values and without the fields `omit` names.
pub struct Without<'a, T: ?Sized, F> {
    pub value: &'a T,
    pub omit: &'a F,
}

impl<'a, T: ?Sized, F> Without<'a, T, F> {
    pub fn new(value: &'a T, omit: &'a F) -> Self {
        Self { value, omit }
    }
}

/// A name predicate that picks no field: the public form leaves out sensitive values only.
pub fn no_field(_: &str) -> bool {
    false
}

impl<T, F> Serialize for Without<'_, T, F>
where
    T: Serialize + ?Sized,
    F: Fn(&str) -> bool,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Hiding {
            inner: serializer,
            omit: self.omit,
        })
    }
}

/// Whether `value` is secret- or personal-typed: it serializes as a sensitive wrapper, directly
/// or as `Some` of one.
pub fn is_sensitive<T: Serialize + ?Sized>(value: &T) -> bool {
    value.serialize(Probe).unwrap_or(false)
}

/// The serializer behind [`Without`]: forwards everything to `inner`, and wraps the elements
/// of every compound value so that the hiding reaches all depths.
struct Hiding<'a, S, F> {
    inner: S,
    omit: &'a F,
}

/// A compound serializer of `inner` whose elements are wrapped in [`Without`].
struct Compound<'a, C, F> {
    inner: C,
    omit: &'a F,
    /// Maps only: the key just written was hidden, so its value is skipped too.
    skip_value: bool,
}

impl<'a, C, F> Compound<'a, C, F> {
    fn new(inner: C, omit: &'a F) -> Self {
        Self {
            inner,
            omit,
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
            Ok(Compound::new(self.inner.$method($($arg),*)?, self.omit))
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
        self.inner.serialize_some(&Without::new(value, self.omit))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        if sensitivity(name).is_some() {
            // Not a whole field (those are left out before they get here): see the module doc.
            return self.inner.serialize_unit();
        }
        self.inner
            .serialize_newtype_struct(name, &Without::new(value, self.omit))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.inner
            .serialize_newtype_variant(name, index, variant, &Without::new(value, self.omit))
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
                self.inner.$method(&Without::new(value, self.omit))
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
                if (self.omit)(key) || is_sensitive(value) {
                    return self.inner.skip_field(key);
                }
                self.inner
                    .serialize_field(key, &Without::new(value, self.omit))
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

    // Maps, and structs with a `#[serde(flatten)]` field, write whole entries through here, so
    // the value can be looked at before its key is written.
    fn serialize_entry<K, V>(&mut self, key: &K, value: &V) -> Result<(), C::Error>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        if is_sensitive(value) || key_name(key).is_some_and(|name| (self.omit)(&name)) {
            return Ok(());
        }
        self.inner
            .serialize_entry(key, &Without::new(value, self.omit))
    }

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        self.skip_value = key_name(key).is_some_and(|name| (self.omit)(&name));
        if self.skip_value {
            return Ok(());
        }
        self.inner.serialize_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        if std::mem::take(&mut self.skip_value) {
            return Ok(());
        }
        self.inner.serialize_value(&Without::new(value, self.omit))
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

/// A serializer that only answers whether a value is a sensitive wrapper (see
/// [`is_sensitive`]). It returns at the value's first call: at once for anything but `Some`,
/// and through an error for compound values, so that probing a field costs next to nothing.
struct Probe;

/// Ends a probe early: the value is a compound one, so not a sensitive wrapper.
#[derive(Debug)]
struct NotAWrapper;

impl fmt::Display for NotAWrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a sensitive value")
    }
}

impl std::error::Error for NotAWrapper {}

impl serde::ser::Error for NotAWrapper {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotAWrapper
    }
}

/// Calls `$each!` with the `Serializer` methods that write a leaf value (no element inside),
/// as `method(argument types);`: the serializers that look for sensitive values treat them all
/// alike.
macro_rules! leaf_methods {
    ($each:ident) => {
        $each! {
            serialize_bool(bool);
            serialize_i8(i8);
            serialize_i16(i16);
            serialize_i32(i32);
            serialize_i64(i64);
            serialize_i128(i128);
            serialize_u8(u8);
            serialize_u16(u16);
            serialize_u32(u32);
            serialize_u64(u64);
            serialize_u128(u128);
            serialize_f32(f32);
            serialize_f64(f64);
            serialize_char(char);
            serialize_str(&str);
            serialize_bytes(&[u8]);
            serialize_none();
            serialize_unit();
            serialize_unit_struct(&'static str);
            serialize_unit_variant(&'static str, u32, &'static str);
        }
    };
}

// The finder of sensitive values in `testing` walks values the same way.
#[cfg(any(test, feature = "testing"))]
pub(crate) use leaf_methods;

macro_rules! plain {
    ($($method:ident($($ty:ty),*);)*) => {
        $(fn $method(self, $(_: $ty),*) -> Result<bool, NotAWrapper> {
            Ok(false)
        })*
    };
}

macro_rules! not_a_wrapper {
    ($($method:ident($($ty:ty),*) -> $compound:ident;)*) => {
        $(fn $method(self, $(_: $ty),*) -> Result<Self::$compound, NotAWrapper> {
            Err(NotAWrapper)
        })*
    };
}

impl Serializer for Probe {
    type Ok = bool;
    type Error = NotAWrapper;
    type SerializeSeq = Impossible<bool, NotAWrapper>;
    type SerializeTuple = Impossible<bool, NotAWrapper>;
    type SerializeTupleStruct = Impossible<bool, NotAWrapper>;
    type SerializeTupleVariant = Impossible<bool, NotAWrapper>;
    type SerializeMap = Impossible<bool, NotAWrapper>;
    type SerializeStruct = Impossible<bool, NotAWrapper>;
    type SerializeStructVariant = Impossible<bool, NotAWrapper>;

    leaf_methods!(plain);

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<bool, NotAWrapper> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _: &T,
    ) -> Result<bool, NotAWrapper> {
        Ok(sensitivity(name).is_some())
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<bool, NotAWrapper> {
        Ok(false)
    }

    not_a_wrapper! {
        serialize_seq(Option<usize>) -> SerializeSeq;
        serialize_tuple(usize) -> SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> SerializeTupleVariant;
        serialize_map(Option<usize>) -> SerializeMap;
        serialize_struct(&'static str, usize) -> SerializeStruct;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> SerializeStructVariant;
    }

    // The compact forms are the cheap ones (a hash as bytes rather than hex, a time as an
    // integer); a wrapper serializes the same either way.
    fn is_human_readable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::{Value, json};

    use super::{Without, no_field};
    use crate::events::{Event, samples};
    use crate::json::{is_secret_field, public_data, strip_secrets};
    use crate::testing::{remove_sensitive, sensitive_values};

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

    /// `event`'s JSON without its sensitive-typed values, built as a `Value`.
    fn value_route(event: &Event) -> Value {
        let mut expected = event.data_json();
        remove_sensitive(&mut expected, &sensitive_values(&event.payload()));
        expected
    }

    #[test]
    fn every_event_redacts_exactly_like_the_value_route() {
        for event in samples::current() {
            let text = event.public_json_without(&is_secret_field);
            let got: Value = serde_json::from_str(&text).unwrap();
            let mut expected = value_route(&event);
            strip_secrets(&mut expected);
            assert_eq!(got, expected, "{}", event.event_type());
        }
    }

    #[test]
    fn the_public_form_leaves_out_exactly_the_sensitive_typed_fields() {
        for event in samples::current() {
            let got: Value = serde_json::from_str(&event.public_json_without(&no_field)).unwrap();
            let expected = value_route(&event);
            assert_eq!(got, expected, "{}", event.event_type());
            assert_eq!(public_data(&event), expected, "{}", event.event_type());
            // Every field the name rule caught is typed, so the public forms did not change
            // when payloads stopped being redacted by name.
            let mut by_name = got.clone();
            strip_secrets(&mut by_name);
            assert_eq!(by_name, got, "{}", event.event_type());
        }
    }
}
