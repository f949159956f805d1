//! What `#[derive(Schema)]` output refers to. Not a public API: it changes without notice.
//!
//! The `Accepts*` traits let the derive check, at compile time, that the literals in
//! `#[kong(...)]` fit the field's Rust type (a string `default` on a `u32` field is an
//! error pointing at the literal). The `check_*` functions are empty; calling them only
//! asks the compiler to prove the bound.

#![allow(missing_docs, missing_debug_implementations)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

pub use super::{Field, Schema};
pub use serde_json::{Number, Value};

/// A finite float literal as a JSON number.
pub fn float(value: f64) -> Number {
    Number::from_f64(value).expect("#[kong] float literals are finite")
}

#[diagnostic::on_unimplemented(
    message = "a string value does not fit a field of type `{Self}`",
    label = "this value is a string",
    note = "string literals in #[kong(default = ...)] need a String field (or Option<String>, or a unit enum that derives Schema)"
)]
pub trait AcceptsStr {}

#[diagnostic::on_unimplemented(
    message = "an integer value does not fit a field of type `{Self}`",
    label = "this value is an integer",
    note = "integer literals in #[kong(default = ...)] need an integer or float field"
)]
pub trait AcceptsInt {}

#[diagnostic::on_unimplemented(
    message = "a float value does not fit a field of type `{Self}`",
    label = "this value is a float",
    note = "float literals in #[kong(default = ...)] need an f32 or f64 field"
)]
pub trait AcceptsFloat {}

#[diagnostic::on_unimplemented(
    message = "a boolean value does not fit a field of type `{Self}`",
    label = "this value is a boolean",
    note = "`true`/`false` in #[kong(default = ...)] need a bool field"
)]
pub trait AcceptsBool {}

#[diagnostic::on_unimplemented(
    message = "an array value does not fit a field of type `{Self}`",
    label = "this value is an array",
    note = "an array in #[kong(default = [...])] needs a Vec, array or set field"
)]
pub trait AcceptsArray {
    type Element;
}

#[diagnostic::on_unimplemented(
    message = "this #[kong] validator needs string values, but the field has type `{Self}`",
    label = "this validator compares strings",
    note = "`match`, `not_match`, `referenceable` and string `one_of` apply to String fields and to Vec/sets of strings (their elements)"
)]
pub trait StrValues {}

#[diagnostic::on_unimplemented(
    message = "this #[kong] validator needs numbers, but the field has type `{Self}`",
    label = "this validator compares numbers",
    note = "`between` and number `one_of` apply to integer and float fields and to Vec/sets of numbers (their elements)"
)]
pub trait IntValues {}

#[diagnostic::on_unimplemented(
    message = "this #[kong] validator has a float, but the field has type `{Self}`",
    label = "this validator has a float",
    note = "a float in `between` or `one_of` needs an f32 or f64 field (or a Vec/set of them)"
)]
pub trait FloatValues {}

#[diagnostic::on_unimplemented(
    message = "`len_min`/`len_max` need a field with a length, but the field has type `{Self}`",
    label = "this validator measures a length",
    note = "`len_min`/`len_max` apply to String, Vec, arrays, sets and maps"
)]
pub trait HasLength {}

pub fn check_str<T: AcceptsStr>() {}
pub fn check_int<T: AcceptsInt>() {}
pub fn check_float<T: AcceptsFloat>() {}
pub fn check_bool<T: AcceptsBool>() {}
pub fn check_array<T: AcceptsArray>() {}
pub fn check_str_values<T: StrValues>() {}
pub fn check_int_values<T: IntValues>() {}
pub fn check_float_values<T: FloatValues>() {}
pub fn check_length<T: HasLength>() {}

macro_rules! wrappers {
    ($($trait:ident),*) => {$(
        impl<T: $trait> $trait for Option<T> {}
        impl<T: $trait + ?Sized> $trait for Box<T> {}
    )*};
}

wrappers!(
    AcceptsStr,
    AcceptsInt,
    AcceptsFloat,
    AcceptsBool,
    StrValues,
    IntValues,
    FloatValues,
    HasLength
);

impl<T: AcceptsArray> AcceptsArray for Option<T> {
    type Element = T::Element;
}
impl<T: AcceptsArray> AcceptsArray for Box<T> {
    type Element = T::Element;
}

impl AcceptsStr for String {}
impl StrValues for String {}
impl HasLength for String {}
impl AcceptsBool for bool {}

macro_rules! numbers {
    (ints: $($int:ty),*; floats: $($float:ty),*) => {
        $( impl AcceptsInt for $int {} impl IntValues for $int {} )*
        $(
            impl AcceptsInt for $float {}
            impl IntValues for $float {}
            impl AcceptsFloat for $float {}
            impl FloatValues for $float {}
        )*
    };
}

numbers!(ints: i8, i16, i32, i64, isize, u8, u16, u32, u64, usize; floats: f32, f64);

macro_rules! collections {
    ($([$($generics:tt)*] $ty:ty),*) => {$(
        impl<$($generics)*> AcceptsArray for $ty {
            type Element = T;
        }
        impl<$($generics)*> StrValues for $ty where T: StrValues {}
        impl<$($generics)*> IntValues for $ty where T: IntValues {}
        impl<$($generics)*> FloatValues for $ty where T: FloatValues {}
        impl<$($generics)*> HasLength for $ty {}
    )*};
}

collections!(
    [T] Vec<T>,
    [T, const N: usize] [T; N],
    [T, S] HashSet<T, S>,
    [T] BTreeSet<T>
);

impl<V, S> HasLength for HashMap<String, V, S> {}
impl<V> HasLength for BTreeMap<String, V> {}

/// Wraps a type so that a bound on it mentions a lifetime parameter: `#[serde(transparent)]`
/// wrappers forward the markers of their inner type with `where Bound<'a, Inner>: Marker`,
/// which the compiler accepts (and ignores when false) even for a concrete inner type.
pub struct Bound<'a, T: ?Sized>(std::marker::PhantomData<(&'a (), *const T)>);

macro_rules! forward_bound {
    ($($trait:ident),*) => {$(
        impl<T: $trait + ?Sized> $trait for Bound<'_, T> {}
    )*};
}

forward_bound!(
    AcceptsStr,
    AcceptsInt,
    AcceptsFloat,
    AcceptsBool,
    StrValues,
    IntValues,
    FloatValues,
    HasLength
);

pub fn check_array_of_str<T: AcceptsArray<Element: AcceptsStr>>() {}
pub fn check_array_of_int<T: AcceptsArray<Element: AcceptsInt>>() {}
pub fn check_array_of_float<T: AcceptsArray<Element: AcceptsFloat>>() {}
pub fn check_array_of_bool<T: AcceptsArray<Element: AcceptsBool>>() {}
