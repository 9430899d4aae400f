//! `entity!`: each record type declared once.
//!
//! A declaration lists a record type's fields, one line each, with everything the crate
//! needs to know about them; the macro writes the rest — the record struct (with the common
//! bookkeeping fields), its create input and update patch, `from_input` and `apply`, the
//! whole [`Entity`](super::Entity) implementation, and the [`Declaration`](super::Declaration)
//! the JSON schemas, the list filters ([`EntityKind::fields`](super::EntityKind::fields)) and
//! the personal-data inventory are read from. What a declaration cannot say — a label, unique
//! keys, rules across fields — is ordinary code in a [`Rules`] implementation next to it.
//!
//! ```text
//! entity! {
//!     /// An organization.
//!     #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
//!     pub struct Company(CompanyId, soft_delete) {
//!         /// Name (required).
//!         name: String => edit, sort, required(SHORT_TEXT), search(words);
//!         /// Phone number.
//!         phone_number: Option<String> => edit, none, PHONE, personal(PhoneNumbers), search(phone);
//!         /// Account manager (default: the creator).
//!         sales_id: Option<UserId> => edit, filter, ANY, reference, owner;
//!     }
//!     /// Input to create a company.
//!     input CompanyInput;
//!     /// A company update: absent fields are kept, `null` clears.
//!     patch CompanyPatch;
//! }
//! ```
//!
//! The header names the record type, its id type (declared by the macro:
//! `pub type CompanyId = Id<Company>`) and `soft_delete` or `keep` (whether records carry
//! `deleted_at`). Each field line is
//!
//! ```text
//! /// doc comment                      (record, input, patch and schema description)
//! #[serde(...)]                        (optional: extra serde attributes of the record and input field)
//! name [as "json"]: Type => access, query, rule [, flag]* ;
//! ```
//!
//! - **access**: `edit` (in the input and the patch), `edit(default)` (in the input as an
//!   `Option`, `default` when left out; and in the patch), `create`, `create(default)` (input
//!   only), `core(initial)` (set by the core only; `core` alone where the kind has no
//!   input), `patch_custom(initial)` (in the patch, applied by the kind's own code).
//!   `default` and `initial` are expressions; they may use the input's extra
//!   `from_input` arguments, declared as `input ContactInput(now: Timestamp)`.
//! - **query**: `none`, `filter`, `sort` or `both`; a list field (`Vec<TagId>`) filters as
//!   "contains". `filter("archived": Bool = |v: &Option<Timestamp>| ...)` filters by a value
//!   derived from the field, under another name; `filter_any(...)` the same with a list of
//!   values ("contains").
//! - **rule**: a [`Rule`](super::Rule) (short names in `field::rules`: `ANY`,
//!   `text(max)`, `required(max)`, `URL`, `EMAIL`, `PHONE`, `COLOR`, `range(min, max)`,
//!   `among(&[..])`, `choice(List)`, `required_choice(List)`, `items(max, &each)`). The
//!   validator checks it and the schema states it.
//! - **flags**: `personal` (personal data: exported and erased on a data subject's request)
//!   or `personal(Class)` (also masked for `read_only` when the workspace masks that
//!   [`PersonalField`](crate::mask::PersonalField) class); `search(words|phone|email)`;
//!   `reference` (ids of records that must exist in the workspace); `owner` (the user owning
//!   the record).
//!
//! Adding a field is one line here (plus, where the rule needs more than the declared one,
//! a line in the kind's [`Rules::check_rules`]); `field()` and `fields()`, the schema and the
//! input and patch types follow.

use crate::validate::Validator;

use super::Configuration;

/// Applies a patch field: `Some(v)` replaces.
pub(crate) fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *target = v;
    }
}

/// The hand-written part of an entity: what its declaration cannot say. The generated
/// [`Entity`](super::Entity) implementation calls these.
pub(crate) trait Rules {
    /// A short human label (activity feed, audit).
    fn label(&self) -> String;
    /// Values that must be unique in the workspace, as (constraint name, normalized value).
    fn unique_keys(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Tidying beyond the declared fields' own (which runs first).
    fn normalize_more(&mut self) {}
    /// Validation beyond the declared rules (which run first): rules across fields or
    /// depending on other fields' values.
    fn check_rules(&self, _v: &mut Validator, _config: &Configuration) {}
}

/// See the [module docs](self).
macro_rules! entity {
    // ---- entry: the soft-delete choice becomes the tokens of the `deleted_at` field.
    (
        $(#[$attr:meta])*
        pub struct $Name:ident($IdTy:ident, soft_delete) $($rest:tt)*
    ) => {
        $crate::model::declare::entity!(@parse soft_delete
            [
                /// Soft-deletion instant.
                pub deleted_at: Option<$crate::clock::Timestamp>,
            ]
            [deleted_at: None,]
            [$(#[$attr])*] $Name $IdTy $($rest)*
        );
    };
    (
        $(#[$attr:meta])*
        pub struct $Name:ident($IdTy:ident, keep) $($rest:tt)*
    ) => {
        $crate::model::declare::entity!(@parse keep [] [] [$(#[$attr])*] $Name $IdTy $($rest)*);
    };

    // ---- the grammar, parsed once into one brace group per field.
    (@parse $del:ident $del_field:tt $del_init:tt $attrs:tt $Name:ident $IdTy:ident $fields:tt) => {
        $crate::model::declare::entity!(@parse $del $del_field $del_init $attrs $Name $IdTy $fields
            input none;
            patch none;
        );
    };
    (@parse $del:ident $del_field:tt $del_init:tt $attrs:tt $Name:ident $IdTy:ident
        {
            $(
                $(#[doc = $doc:literal])*
                $(#[serde($($serde:tt)*)])*
                $field:ident $(as $json:literal)? : $ty:ty =>
                    $access:ident $(($($aarg:tt)*))?,
                    $query:ident $(($($qarg:tt)*))?,
                    $rule:expr
                    $(, $flag:ident $(($($farg:tt)*))?)*
                ;
            )*
        }
        $(#[doc = $idoc:literal])*
        input $Input:ident $(($($arg:ident: $argty:ty),*))?;
        $(#[doc = $pdoc:literal])*
        patch $Patch:ident;
    ) => {
        $crate::model::declare::entity!(@main $del $del_field $del_init $attrs $Name $IdTy
            [$(
                {
                    $field ($($json)?) ($ty) [$($doc)*] [$(($($serde)*))*]
                    ($access $(($($aarg)*))?) ($query $(($($qarg)*))?) ($rule)
                    ($([$flag $(($($farg)*))?])*)
                }
            )*]
            [[$($idoc)*] $Input ($($($arg: $argty),*)?)]
            [[$($pdoc)*] $Patch]
        );
    };

    (@main $del:ident [$($del_field:tt)*] $del_init:tt [$($attr:tt)*] $Name:ident $IdTy:ident
        [$(
            {
                $field:ident ($($json:literal)?) ($ty:ty) [$($doc:literal)*] [$(($($serde:tt)*))*]
                $access:tt $query:tt ($rule:expr) $flags:tt
            }
        )*]
        $input:tt $patch:tt
    ) => {
        #[doc = concat!("Id of a [`", stringify!($Name), "`].")]
        pub type $IdTy = $crate::kind::Id<$Name>;

        $($attr)*
        pub struct $Name {
            /// Id.
            pub id: $IdTy,
            /// Workspace.
            pub workspace_id: $crate::model::WorkspaceId,
            $(
                $(#[doc = $doc])*
                $(#[serde($($serde)*)])*
                $(#[serde(rename = $json)])?
                pub $field: $ty,
            )*
            /// Creation instant.
            pub created_at: $crate::clock::Timestamp,
            /// Last update instant.
            pub updated_at: $crate::clock::Timestamp,
            /// Starts at 1, grows by one on every update.
            pub version: u64,
            $($del_field)*
        }

        impl $crate::model::Entity for $Name {
            const KIND: $crate::kind::EntityKind = $crate::kind::EntityKind::$Name;

            fn declaration() -> &'static $crate::model::Declaration {
                static DECLARATION: $crate::model::Declaration = $crate::model::Declaration {
                    kind: $crate::kind::EntityKind::$Name,
                    name: stringify!($Name),
                    soft_delete: $crate::model::declare::entity!(@soft $del),
                    input: $crate::model::declare::entity!(@type_name $input),
                    patch: $crate::model::declare::entity!(@type_name $patch),
                    fields: &[$(
                        $crate::model::FieldDef {
                            name: $crate::model::declare::entity!(@json $field $($json)?),
                            doc: &[$($doc),*],
                            access: $crate::model::declare::entity!(@access $access),
                            query: $crate::model::declare::entity!(@query ($ty)
                                ($crate::model::declare::entity!(@json $field $($json)?)) $query),
                            rule: $rule,
                            personal: $crate::model::declare::entity!(@has_personal $flags),
                            mask: $crate::model::declare::entity!(@mask_class $flags),
                            search: $crate::model::declare::entity!(@search_kind $flags),
                            reference: $crate::model::declare::entity!(@has_reference $flags),
                            owner: $crate::model::declare::entity!(@has_owner $flags),
                            type_schema: <$ty as $crate::model::field::Schema>::schema,
                        },
                    )*],
                };
                &DECLARATION
            }

            $crate::model::declare::entity!(@meta $del);

            fn field(&self, name: &str) -> $crate::query::Value {
                match name {
                    "created_at" => return $crate::query::Value::Time(self.created_at),
                    "updated_at" => return $crate::query::Value::Time(self.updated_at),
                    _ => {}
                }
                $(
                    $crate::model::declare::entity!(@field_value self name $field
                        ($crate::model::declare::entity!(@json $field $($json)?)) $query);
                )*
                $crate::query::Value::Null
            }

            fn search_words(&self, out: &mut Vec<String>) {
                let _ = &out;
                $( $crate::model::declare::entity!(@search words self out $field $flags); )*
            }

            fn contact_points(&self, out: &mut Vec<String>) {
                let _ = &out;
                $( $crate::model::declare::entity!(@search points self out $field $flags); )*
            }

            fn mask(&mut self, masking: &$crate::mask::Masking) {
                let _ = masking;
                $( $crate::model::declare::entity!(@mask self masking $field $flags); )*
            }

            fn unique_keys(&self) -> Vec<(&'static str, String)> {
                $crate::model::declare::Rules::unique_keys(self)
            }

            fn label(&self) -> String {
                $crate::model::declare::Rules::label(self)
            }

            #[allow(unreachable_code)]
            fn owner(&self) -> Option<$crate::model::UserId> {
                $( $crate::model::declare::entity!(@owner self $field $flags); )*
                None
            }

            fn references(&self) -> Vec<$crate::model::Reference> {
                #[allow(unused_mut)]
                let mut out = Vec::new();
                $(
                    $crate::model::declare::entity!(@reference self out $field
                        ($crate::model::declare::entity!(@json $field $($json)?)) $flags);
                )*
                out
            }

            fn normalize(&mut self) {
                $( $crate::model::declare::entity!(@normalize self $field $access); )*
                $crate::model::declare::Rules::normalize_more(self);
            }

            fn validate(
                &self,
                config: &$crate::model::Configuration,
            ) -> Vec<$crate::error::FieldError> {
                let mut v = $crate::validate::Validator::new();
                $(
                    $crate::model::field::Checked::check(
                        &self.$field,
                        &mut v,
                        $crate::model::declare::entity!(@json $field $($json)?),
                        &$rule,
                        config,
                    );
                )*
                $crate::model::declare::Rules::check_rules(self, &mut v, config);
                v.into_errors()
            }

            fn into_record(self) -> $crate::model::Record {
                $crate::model::Record::$Name(self)
            }

            fn from_record(record: $crate::model::Record) -> Option<Self> {
                match record {
                    $crate::model::Record::$Name(r) => Some(r),
                    _ => None,
                }
            }
        }

        $crate::model::declare::entity!(@input $input $Name $del_init [$(
            { ($field) ($($json)?) ($ty) [$($doc)*] [$(($($serde)*))*] $access }
        )*]);

        $crate::model::declare::entity!(@patch $patch $Name [$(
            { ($field) ($($json)?) ($ty) [$($doc)*] $access }
        )*]);
    };

    // ---- the create input and `from_input`.
    (@input [$doc:tt none ()] $($ignored:tt)*) => {};
    (@input [[$($idoc:literal)*] $Input:ident ($($arg:ident: $argty:ty),*)] $Name:ident
        [$($del_init:tt)*]
        [$({ ($field:ident) $json:tt $ty:tt $doc:tt $serde:tt $access:tt })*]
    ) => {
        $crate::model::declare::entity!(@input_struct [$($idoc)*] $Input []
            $({ $access ($field) $json $ty $doc $serde })*
        );

        impl $Name {
            /// A new record from its create input: a fresh id, the input's fields (the
            /// defaults where it leaves them out) and the core's fields at their starting
            /// values. Workspace, instants and version are the facade's to set.
            #[allow(clippy::unnecessary_lazy_evaluations)]
            pub(crate) fn from_input(input: $Input $(, $arg: $argty)*) -> $Name {
                $Name {
                    id: $crate::kind::Id::generate(),
                    workspace_id: $crate::kind::Id::from_uuid(::uuid::Uuid::nil()),
                    $( $field: $crate::model::declare::entity!(@init input $field $access), )*
                    created_at: $crate::clock::Timestamp::EPOCH,
                    updated_at: $crate::clock::Timestamp::EPOCH,
                    version: 0,
                    $($del_init)*
                }
            }
        }
    };

    (@input_struct [$($idoc:literal)*] $Input:ident [$($acc:tt)*]) => {
        $(#[doc = $idoc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $Input {
            $($acc)*
        }
    };
    (@input_struct $idoc:tt $Input:ident [$($acc:tt)*]
        { ($plain:ident) ($field:ident) ($($json:literal)?) ($ty:ty) [$($doc:literal)*] [$(($($serde:tt)*))*] }
        $($rest:tt)*
    ) => {
        $crate::model::declare::entity!(@input_plain $plain $idoc $Input [$($acc)*]
            { ($field) ($($json)?) ($ty) [$($doc)*] [$(($($serde)*))*] } $($rest)*);
    };
    (@input_struct $idoc:tt $Input:ident [$($acc:tt)*]
        { ($defaulted:ident($($default:tt)*)) ($field:ident) ($($json:literal)?) ($ty:ty) [$($doc:literal)*] $serde:tt }
        $($rest:tt)*
    ) => {
        $crate::model::declare::entity!(@input_defaulted $defaulted $idoc $Input [$($acc)*]
            { ($field) ($($json)?) ($ty) [$($doc)*] } $($rest)*);
    };
    (@input_plain edit $($x:tt)*) => { $crate::model::declare::entity!(@input_field $($x)*); };
    (@input_plain create $($x:tt)*) => { $crate::model::declare::entity!(@input_field $($x)*); };
    (@input_plain $other:ident $idoc:tt $Input:ident $acc:tt $field:tt $($rest:tt)*) => {
        $crate::model::declare::entity!(@input_struct $idoc $Input $acc $($rest)*);
    };
    (@input_field $idoc:tt $Input:ident [$($acc:tt)*]
        { ($field:ident) ($($json:literal)?) ($ty:ty) [$($doc:literal)*] [$(($($serde:tt)*))*] }
        $($rest:tt)*
    ) => {
        $crate::model::declare::entity!(@input_struct $idoc $Input [
            $($acc)*
            $(#[doc = $doc])*
            $(#[serde($($serde)*)])*
            $(#[serde(rename = $json)])?
            pub $field: $ty,
        ] $($rest)*);
    };
    (@input_defaulted edit $($x:tt)*) => { $crate::model::declare::entity!(@input_option $($x)*); };
    (@input_defaulted create $($x:tt)*) => { $crate::model::declare::entity!(@input_option $($x)*); };
    (@input_defaulted $other:ident $idoc:tt $Input:ident $acc:tt $field:tt $($rest:tt)*) => {
        $crate::model::declare::entity!(@input_struct $idoc $Input $acc $($rest)*);
    };
    (@input_option $idoc:tt $Input:ident [$($acc:tt)*]
        { ($field:ident) ($($json:literal)?) ($ty:ty) [$($doc:literal)*] }
        $($rest:tt)*
    ) => {
        $crate::model::declare::entity!(@input_struct $idoc $Input [
            $($acc)*
            $(#[doc = $doc])*
            #[doc = ""]
            #[doc = "Optional: the core fills in its default."]
            $(#[serde(rename = $json)])?
            pub $field: Option<$ty>,
        ] $($rest)*);
    };

    (@init $i:ident $f:ident (edit)) => { $i.$f };
    (@init $i:ident $f:ident (create)) => { $i.$f };
    (@init $i:ident $f:ident (edit($($d:tt)*))) => { $i.$f.unwrap_or_else(|| $($d)*) };
    (@init $i:ident $f:ident (create($($d:tt)*))) => { $i.$f.unwrap_or_else(|| $($d)*) };
    (@init $i:ident $f:ident (core($($d:tt)*))) => { $($d)* };
    (@init $i:ident $f:ident (patch_custom($($d:tt)*))) => { $($d)* };

    // ---- the update patch and `apply`.
    (@patch [$doc:tt none] $($ignored:tt)*) => {};
    (@patch [[$($pdoc:literal)*] $Patch:ident] $Name:ident
        [$({ ($field:ident) $json:tt $ty:tt $doc:tt $access:tt })*]
    ) => {
        $crate::model::declare::entity!(@patch_struct [$($pdoc)*] $Patch []
            $({ $access ($field) $json $ty $doc })*
        );

        impl $Name {
            /// Applies a patch: each field it gives replaces the record's (`null` clears an
            /// optional field and keeps any other). Fields changed by the kind's own code
            /// (`patch_custom`) are left to it.
            pub(crate) fn apply(&mut self, patch: $Patch) {
                let _ = &patch;
                $( $crate::model::declare::entity!(@apply self patch $field $access); )*
            }
        }
    };
    (@patch_struct [$($pdoc:literal)*] $Patch:ident [$($acc:tt)*]) => {
        $(#[doc = $pdoc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $Patch {
            $($acc)*
        }
    };
    (@patch_struct $pdoc:tt $Patch:ident $acc:tt { ($mode:ident $($arg:tt)*) $($field:tt)* } $($rest:tt)*) => {
        $crate::model::declare::entity!(@patch_mode $mode $pdoc $Patch $acc { $($field)* } $($rest)*);
    };
    (@patch_mode edit $($x:tt)*) => { $crate::model::declare::entity!(@patch_field $($x)*); };
    (@patch_mode patch_custom $($x:tt)*) => { $crate::model::declare::entity!(@patch_field $($x)*); };
    (@patch_mode $other:ident $pdoc:tt $Patch:ident $acc:tt $field:tt $($rest:tt)*) => {
        $crate::model::declare::entity!(@patch_struct $pdoc $Patch $acc $($rest)*);
    };
    (@patch_field $pdoc:tt $Patch:ident [$($acc:tt)*]
        { ($field:ident) ($($json:literal)?) ($ty:ty) [$($doc:literal)*] }
        $($rest:tt)*
    ) => {
        $crate::model::declare::entity!(@patch_struct $pdoc $Patch [
            $($acc)*
            $(#[doc = $doc])*
            $(#[serde(rename = $json)])?
            #[serde(default, with = "crate::model::field::patch")]
            pub $field: Option<$ty>,
        ] $($rest)*);
    };

    (@apply $s:ident $p:ident $f:ident (edit $($x:tt)*)) => {
        $crate::model::declare::set(&mut $s.$f, $p.$f)
    };
    (@apply $s:ident $p:ident $f:ident $other:tt) => {};

    // ---- per-field pieces of the `Entity` implementation.
    (@meta soft_delete) => {
        fn meta(&self) -> $crate::model::Meta {
            $crate::model::Meta {
                id: self.id.uuid(),
                workspace_id: self.workspace_id,
                created_at: self.created_at,
                updated_at: self.updated_at,
                version: self.version,
                deleted_at: self.deleted_at,
            }
        }
        fn set_meta(&mut self, m: $crate::model::Meta) {
            self.id = m.id.into();
            self.workspace_id = m.workspace_id;
            self.created_at = m.created_at;
            self.updated_at = m.updated_at;
            self.version = m.version;
            self.deleted_at = m.deleted_at;
        }
    };
    (@meta keep) => {
        fn meta(&self) -> $crate::model::Meta {
            $crate::model::Meta {
                id: self.id.uuid(),
                workspace_id: self.workspace_id,
                created_at: self.created_at,
                updated_at: self.updated_at,
                version: self.version,
                deleted_at: None,
            }
        }
        fn set_meta(&mut self, m: $crate::model::Meta) {
            self.id = m.id.into();
            self.workspace_id = m.workspace_id;
            self.created_at = m.created_at;
            self.updated_at = m.updated_at;
            self.version = m.version;
        }
    };
    (@soft soft_delete) => { true };
    (@soft keep) => { false };
    (@type_name [$doc:tt none $($args:tt)*]) => { None };
    (@type_name [$doc:tt $T:ident $($args:tt)*]) => { Some(stringify!($T)) };
    (@json $field:ident) => { stringify!($field) };
    (@json $field:ident $json:literal) => { $json };

    (@access (edit)) => { $crate::model::Access::Edit };
    (@access (edit($($x:tt)*))) => { $crate::model::Access::EditDefault };
    (@access (create)) => { $crate::model::Access::Create };
    (@access (create($($x:tt)*))) => { $crate::model::Access::CreateDefault };
    (@access (core $($x:tt)*)) => { $crate::model::Access::Core };
    (@access (patch_custom $($x:tt)*)) => { $crate::model::Access::PatchCustom };

    (@query ($ty:ty) ($name:expr) (none)) => { None };
    (@query ($ty:ty) ($name:expr) (filter)) => {
        Some($crate::model::field::query_spec::<$ty>($name, true, false))
    };
    (@query ($ty:ty) ($name:expr) (sort)) => {
        Some($crate::model::field::query_spec::<$ty>($name, false, true))
    };
    (@query ($ty:ty) ($name:expr) (both)) => {
        Some($crate::model::field::query_spec::<$ty>($name, true, true))
    };
    (@query ($ty:ty) ($name:expr) (filter($qname:literal: $qty:ident = $f:expr))) => {
        Some($crate::query::FieldSpec::filter($qname, $crate::query::FieldType::$qty))
    };
    (@query ($ty:ty) ($name:expr) (filter_any($qname:literal: $qty:ident = $f:expr))) => {
        Some($crate::query::FieldSpec::multi($qname, $crate::query::FieldType::$qty))
    };

    (@field_value $s:ident $n:ident $f:ident ($name:expr) (none)) => {};
    (@field_value $s:ident $n:ident $f:ident ($name:expr) (filter($qname:literal: $qty:ident = $fun:expr))) => {
        if $n == $qname {
            return ($fun)(&$s.$f);
        }
    };
    (@field_value $s:ident $n:ident $f:ident ($name:expr) (filter_any($qname:literal: $qty:ident = $fun:expr))) => {
        if $n == $qname {
            return ($fun)(&$s.$f);
        }
    };
    (@field_value $s:ident $n:ident $f:ident ($name:expr) ($q:ident)) => {
        if $n == $name {
            return $crate::model::field::QueryValue::query_value(&$s.$f);
        }
    };

    (@has_personal ()) => { false };
    (@has_personal ([personal $($x:tt)*] $($rest:tt)*)) => { true };
    (@has_personal ([$flag:ident $($a:tt)*] $($rest:tt)*)) => {
        $crate::model::declare::entity!(@has_personal ($($rest)*))
    };
    (@has_reference ()) => { false };
    (@has_reference ([reference] $($rest:tt)*)) => { true };
    (@has_reference ([$flag:ident $($a:tt)*] $($rest:tt)*)) => {
        $crate::model::declare::entity!(@has_reference ($($rest)*))
    };
    (@has_owner ()) => { false };
    (@has_owner ([owner] $($rest:tt)*)) => { true };
    (@has_owner ([$flag:ident $($a:tt)*] $($rest:tt)*)) => {
        $crate::model::declare::entity!(@has_owner ($($rest)*))
    };
    (@mask_class ()) => { None };
    (@mask_class ([personal($class:ident)] $($rest:tt)*)) => {
        Some($crate::mask::PersonalField::$class)
    };
    (@mask_class ([$flag:ident $($a:tt)*] $($rest:tt)*)) => {
        $crate::model::declare::entity!(@mask_class ($($rest)*))
    };
    (@search_kind ()) => { None };
    (@search_kind ([search($k:ident)] $($rest:tt)*)) => {
        Some($crate::model::declare::entity!(@search_variant $k))
    };
    (@search_kind ([$flag:ident $($a:tt)*] $($rest:tt)*)) => {
        $crate::model::declare::entity!(@search_kind ($($rest)*))
    };

    (@search_variant words) => { $crate::model::SearchKind::Words };
    (@search_variant phone) => { $crate::model::SearchKind::Phone };
    (@search_variant email) => { $crate::model::SearchKind::Email };
    (@search $what:ident $s:ident $out:ident $f:ident ()) => {};
    (@search $what:ident $s:ident $out:ident $f:ident ([search($k:ident)] $($rest:tt)*)) => {
        $crate::model::field::SearchText::each_text(&$s.$f, &mut |t| {
            $crate::model::declare::entity!(@search_variant $k).$what(t, $out)
        })
    };
    (@search $what:ident $s:ident $out:ident $f:ident ([$flag:ident $($a:tt)*] $($rest:tt)*)) => {
        $crate::model::declare::entity!(@search $what $s $out $f ($($rest)*))
    };

    (@mask $s:ident $m:ident $f:ident ()) => {};
    (@mask $s:ident $m:ident $f:ident ([personal($class:ident)] $($rest:tt)*)) => {
        if $m.masks($crate::mask::PersonalField::$class) {
            $crate::model::field::MaskText::mask_with(
                &mut $s.$f,
                $crate::model::field::mask_of($crate::mask::PersonalField::$class),
            );
        }
    };
    (@mask $s:ident $m:ident $f:ident ([$flag:ident $($a:tt)*] $($rest:tt)*)) => {
        $crate::model::declare::entity!(@mask $s $m $f ($($rest)*))
    };

    (@owner $s:ident $f:ident ()) => {};
    (@owner $s:ident $f:ident ([owner] $($rest:tt)*)) => {
        return $crate::model::field::OwnerField::owner(&$s.$f)
    };
    (@owner $s:ident $f:ident ([$flag:ident $($a:tt)*] $($rest:tt)*)) => {
        $crate::model::declare::entity!(@owner $s $f ($($rest)*))
    };

    (@reference $s:ident $out:ident $f:ident ($name:expr) ()) => {};
    (@reference $s:ident $out:ident $f:ident ($name:expr) ([reference] $($rest:tt)*)) => {
        $crate::model::field::RefIds::references(&$s.$f, $name, &mut $out)
    };
    (@reference $s:ident $out:ident $f:ident ($name:expr) ([$flag:ident $($a:tt)*] $($rest:tt)*)) => {
        $crate::model::declare::entity!(@reference $s $out $f ($name) ($($rest)*))
    };

    (@normalize $s:ident $f:ident (edit $($x:tt)*)) => {
        $crate::model::field::Normalize::normalize(&mut $s.$f)
    };
    (@normalize $s:ident $f:ident (create $($x:tt)*)) => {
        $crate::model::field::Normalize::normalize(&mut $s.$f)
    };
    (@normalize $s:ident $f:ident $other:tt) => {};
}
pub(crate) use entity;
