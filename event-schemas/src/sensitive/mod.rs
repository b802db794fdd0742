//! [`Secret<T>`] and [`Personal<T>`]: payload fields marked *by type* as secret (keyed hashes,
//! sealed keys) or as personal data, so that no public form of an event carries them, whatever
//! the field is called.
//!
//! The public forms are the public JSON ([`crate::json::public_data`]), the CloudEvent `data`,
//! the JSON Schemas ([`crate::Event::json_schemas`]) and the audit summary (built in
//! `projections` through [`crate::Event::public_json_without`]). Each leaves out every struct
//! field and map entry whose value is secret- or personal-typed (also as `Some` of one), at any
//! depth. The internal JSON form ([`crate::Event::data_json`], used by exports) keeps them.
//!
//! How a wrapper is recognised: it serializes as a newtype struct with a reserved name
//! ([`SECRET`], [`PERSONAL`]), which postcard and serde_json both treat as the inner value alone
//! (so the postcard bytes of every frozen event are unchanged), and which a wrapping serializer
//! ([`crate::redact::Without`]) recognises, the way serde_json's `RawValue` uses a magic name.
//! Its JSON Schema carries the keyword [`SCHEMA_KEYWORD`], which the schema post-processing
//! removes together with the property and its `required` entry (for the values of a map, the
//! map's `additionalProperties` becomes `false`: every entry is left out).
//!
//! **Wrap the whole field** (`Secret<Option<Hash32>>`, `Secret<Vec<String>>`), never a part of
//! it: a `None` or an empty `Vec` holds no wrapper a serializer could see, so `Option<Secret<T>>`
//! would show the field as `null` when it is empty, and `Vec<Secret<T>>` as a list of `null`s.
//! The leak test fails on such a field (its schema keeps the keyword, and the finder of
//! sensitive values in `testing` reports it), and meanwhile its value never leaves: `Some` of a
//! wrapper is left out like the wrapper, and a wrapper met anywhere else is written as `null`.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

/// The reserved newtype name [`Secret`] serializes under.
pub const SECRET: &str = "$tessera::Secret";
/// The reserved newtype name [`Personal`] serializes under.
pub const PERSONAL: &str = "$tessera::Personal";
/// The JSON Schema keyword that marks a sensitive schema; its value is `secret` or `personal`.
pub const SCHEMA_KEYWORD: &str = "x-tessera-sensitive";

/// Which kind of sensitive value a reserved newtype name stands for, if it is one.
pub fn sensitivity(newtype_name: &str) -> Option<Sensitivity> {
    if newtype_name == SECRET {
        Some(Sensitivity::Secret)
    } else if newtype_name == PERSONAL {
        Some(Sensitivity::Personal)
    } else {
        None
    }
}

/// The two kinds of sensitive value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sensitivity {
    /// Secrets and key material, even hashed or sealed.
    Secret,
    /// Personal data about a person (an email address, a name, a phone number).
    Personal,
}

impl Sensitivity {
    /// The value of [`SCHEMA_KEYWORD`] for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Secret => "secret",
            Sensitivity::Personal => "personal",
        }
    }
}

macro_rules! sensitive {
    ($(#[$doc:meta])* $name:ident, $reserved:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $name<T>(T);

        impl<T> $name<T> {
            pub const fn new(value: T) -> Self {
                Self(value)
            }

            /// The value, for the code that needs it (hashing, sealing, comparing).
            pub fn expose(&self) -> &T {
                &self.0
            }

            pub fn into_inner(self) -> T {
                self.0
            }
        }

        impl<T> From<T> for $name<T> {
            fn from(value: T) -> Self {
                Self(value)
            }
        }

        impl<T> Deref for $name<T> {
            type Target = T;

            fn deref(&self) -> &T {
                &self.0
            }
        }

        /// Never the value: events are logged and printed in assertion messages.
        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }

        impl<T: Serialize> Serialize for $name<T> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_newtype_struct($reserved, &self.0)
            }
        }

        impl<'de, T: Deserialize<'de>> Deserialize<'de> for $name<T> {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer
                    .deserialize_newtype_struct($reserved, Transparent(PhantomData))
                    .map(Self)
            }
        }

        impl<T: JsonSchema> JsonSchema for $name<T> {
            // Inline, so that no definition of the wrapper is left behind in `$defs` once the
            // property is removed (the inner type's definition stays, as it always has).
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                format!("{}_{}", stringify!($name), T::schema_name()).into()
            }

            fn schema_id() -> Cow<'static, str> {
                format!("tessera::{}<{}>", stringify!($name), T::schema_id()).into()
            }

            // The inner schema sits under `allOf`, so that the keyword stays beside it and is
            // never merged into an enclosing schema: `Option<Secret<T>>` becomes an `anyOf`
            // with the keyword inside, which the leak test reports (see the module doc).
            fn json_schema(generator: &mut SchemaGenerator) -> Schema {
                let mut schema = schemars::json_schema!({
                    "allOf": [generator.subschema_for::<T>()],
                });
                schema.insert(SCHEMA_KEYWORD.to_owned(), $kind.as_str().into());
                schema
            }
        }
    };
}

sensitive!(
    /// A secret or key material (a keyed hash of a secret, a sealed private key), left out of
    /// every public form of an event. Its postcard encoding is the inner value's.
    Secret,
    SECRET,
    Sensitivity::Secret
);

sensitive!(
    /// Personal data (an email address, a person's name), left out of every public form of an
    /// event. Its postcard encoding is the inner value's.
    Personal,
    PERSONAL,
    Sensitivity::Personal
);

/// Deserializes the newtype's content as `T` itself.
struct Transparent<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for Transparent<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sensitive value")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests;
