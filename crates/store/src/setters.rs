//! One rule for the option structs' setters. Option structs are `#[non_exhaustive]`, so code
//! outside the crate cannot build them with a struct literal: it starts from `Default` (or a
//! `new`) and chains these, and a new field is not a breaking change.
//!
//! Exported (hidden) so the registry and serve crates give their option structs the same
//! setters instead of a second copy of this rule.

/// `impl T { pub fn field(mut self, field: Type) -> Self }` for each field listed.
#[doc(hidden)]
#[macro_export]
macro_rules! setters {
    ($ty:ty { $($field:ident: $t:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets `", stringify!($field), "` (see the field).")]
                #[must_use]
                pub fn $field(mut self, $field: $t) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}
