//! Property tests of the core rules.

use std::cmp::Ordering;

use crm_core::model::{
    Configuration, Contact, ContactInput, EmailEntry, EmailKind, Entity, PhoneEntry, PhoneKind,
    Role, Tag,
};
use crm_core::permission::{Action, Decision, Ownership, Resource, decide};
use crm_core::query::{Cursor, Direction, Sort, Value};
use crm_core::storage::kv::encode_value;
use crm_core::{FieldIssue, Timestamp};
use proptest::prelude::*;
use uuid::Uuid;

/// DESIGN §4 written out as a plain table: resource, action, then the scope of each role
/// (admin, manager, sales, read_only): `all`, `own` or `-`.
const MATRIX: &str = "
company  read     all all all all
company  create   all all all -
company  update   all all all -
company  delete   all all all -
company  restore  all -   -   -
company  purge    all -   -   -
contact  read     all all all all
contact  create   all all all -
contact  update   all all all -
contact  delete   all all all -
contact  restore  all -   -   -
contact  purge    all -   -   -
contact  merge    all all -   -
deal     read     all all all all
deal     create   all all all -
deal     update   all all all -
deal     delete   all all all -
deal     restore  all -   -   -
deal     purge    all -   -   -
note     read     all all all all
note     create   all all all -
note     update   all all all -
note     delete   all all all -
note     restore  all -   -   -
note     purge    all -   -   -
tag      read     all all all all
tag      create   all all all -
tag      update   all all all -
tag      delete   all all all -
tag      restore  all -   -   -
tag      purge    all -   -   -
task     read     all all own own
task     create   all all own -
task     update   all all own -
task     delete   all all own -
task     restore  all -   -   -
task     purge    all -   -   -
user     read     all all all all
user     create   all -   -   -
user     update   all own own own
user     delete   all -   -   -
user     change_role all - -   -
configuration read   all all all all
configuration update all -   -   -
audit_log read   all all -   -
";

fn table_scope(role: Role, action: Action, resource: Resource) -> &'static str {
    let res = serde_json::to_value(resource).unwrap();
    let act = serde_json::to_value(action).unwrap();
    let col = match role {
        Role::Admin => 2,
        Role::Manager => 3,
        Role::Sales => 4,
        Role::ReadOnly => 5,
    };
    MATRIX
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| {
            cols.len() == 6 && cols[0] == res.as_str().unwrap() && cols[1] == act.as_str().unwrap()
        })
        .map_or("-", |cols| cols[col])
}

fn model(role: Role, action: Action, resource: Resource, own: Ownership) -> Decision {
    let grants = |scope: &str| scope == "all" || (scope == "own" && own == Ownership::Own);
    if grants(table_scope(role, action, resource)) {
        Decision::Allow
    } else if grants(table_scope(role, Action::Read, resource)) {
        Decision::Forbid
    } else {
        Decision::Hide
    }
}

fn any_role() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}
fn any_action() -> impl Strategy<Value = Action> {
    prop::sample::select(Action::ALL.to_vec())
}
fn any_resource() -> impl Strategy<Value = Resource> {
    prop::sample::select(Resource::ALL.to_vec())
}
fn any_ownership() -> impl Strategy<Value = Ownership> {
    prop::sample::select(vec![Ownership::Own, Ownership::Others])
}

#[test]
fn permission_decisions_equal_the_table_everywhere() {
    // The space is small enough to check exhaustively as well.
    for role in Role::ALL {
        for action in Action::ALL {
            for resource in Resource::ALL {
                for own in [Ownership::Own, Ownership::Others] {
                    assert_eq!(
                        decide(role, action, resource, own),
                        model(role, action, resource, own),
                        "{role:?} {action:?} {resource:?} {own:?}"
                    );
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn permission_decision_equals_table_model(role in any_role(), action in any_action(), resource in any_resource(), own in any_ownership()) {
        prop_assert_eq!(decide(role, action, resource, own), model(role, action, resource, own));
    }

    #[test]
    fn contact_validation_never_panics(
        first in any::<String>(), last in any::<String>(), email in any::<String>(), phone in any::<String>(),
        title in proptest::option::of(any::<String>()), url in proptest::option::of(any::<String>()), status in proptest::option::of(any::<String>()),
    ) {
        let mut c = contact(ContactInput {
            first_name: first, last_name: last, title, linkedin_url: url, status,
            emails: vec![EmailEntry { email, kind: EmailKind::Other }],
            phones: vec![PhoneEntry { number: phone, kind: PhoneKind::Home }],
            ..Default::default()
        });
        c.normalize();
        let _ = c.validate(&config());
    }

    #[test]
    fn arbitrary_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = serde_json::from_slice::<ContactInput>(&bytes);
        let _ = serde_json::from_slice::<crm_core::model::DealPatch>(&bytes);
        let _ = serde_json::from_slice::<crm_core::query::ListParams>(&bytes);
    }

    #[test]
    fn names_are_accepted_exactly_up_to_the_limit(n in 1usize..400, ch in prop::sample::select(vec!['a', 'é', '字', '🙂'])) {
        let name: String = std::iter::repeat_n(ch, n).collect();
        let c = contact(ContactInput { first_name: name.clone(), last_name: "x".into(), ..Default::default() });
        let errors = c.validate(&config());
        let too_long = errors.iter().any(|e| e.field == "first_name" && e.issue == FieldIssue::TooLong);
        prop_assert_eq!(too_long, n > crm_core::validate::limits::SHORT_TEXT);
        prop_assert_eq!(errors.is_empty(), n <= crm_core::validate::limits::SHORT_TEXT);
        let mut tag = Tag { name, ..tag() };
        tag.normalize();
        let tag_ok = tag.validate(&config()).is_empty();
        prop_assert_eq!(tag_ok, n <= crm_core::validate::limits::TAG_NAME);
    }

    #[test]
    fn well_formed_emails_are_accepted(local in "[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", domain in "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,2}\\.[a-z]{2,6}") {
        let email = format!("{local}@{domain}");
        let ok = crm_core::validate::is_email(&email);
        prop_assert_eq!(ok, !local.contains(".."), "{}", email);
    }

    #[test]
    fn emails_with_spaces_or_without_at_are_rejected(s in "[a-z ]{0,30}") {
        prop_assert!(!crm_core::validate::is_email(&s));
    }

    #[test]
    fn key_encoding_orders_like_values(a in any_value(), b in any_value()) {
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
        encode_value(&a, &mut ka);
        encode_value(&b, &mut kb);
        prop_assert_eq!(ka.cmp(&kb), a.sort_cmp(&b), "{:?} vs {:?}", a, b);
    }

    #[test]
    fn cursor_paging_partitions_the_sorted_rows(
        mut rows in proptest::collection::vec((0i64..5, any::<u128>()), 0..40),
        desc in any::<bool>(),
        page in 1usize..7,
    ) {
        let sort = Sort { field: "index".into(), direction: if desc { Direction::Desc } else { Direction::Asc } };
        rows.sort_by(|a, b| sort.cmp_rows((&Value::Int(a.0), Uuid::from_u128(a.1)), (&Value::Int(b.0), Uuid::from_u128(b.1))));
        rows.dedup_by_key(|r| r.1);
        // Walk: each page is the first `page` rows strictly after the cursor.
        let mut walked = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let next: Vec<_> = rows.iter().filter(|r| cursor.as_ref().is_none_or(|c| c.is_before(&sort, &Value::Int(r.0), Uuid::from_u128(r.1)))).take(page).cloned().collect();
            if next.is_empty() { break; }
            let last = *next.last().unwrap();
            walked.extend(next);
            let c = Cursor { field: "index".into(), direction: sort.direction, value: Value::Int(last.0), id: Uuid::from_u128(last.1) };
            // Cursors survive their string form.
            cursor = Some(Cursor::decode(&c.encode(), &sort).unwrap());
        }
        prop_assert_eq!(walked, rows);
    }
}

fn any_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<i64>().prop_map(|m| Value::Time(Timestamp::from_micros(m))),
        (-100_000i32..100_000)
            .prop_map(|d| Value::Date(time::Date::from_julian_day(2_460_000 + d).unwrap())),
        any::<u128>().prop_map(|u| Value::Id(Uuid::from_u128(u))),
        "[a-zA-Z0-9 \\x00é]{0,8}".prop_map(Value::Text),
    ]
    .prop_filter("same type or null", |_| true)
}

fn config() -> Configuration {
    Configuration::defaults(crm_core::id::WorkspaceId::generate(), Timestamp::EPOCH)
}

fn contact(input: ContactInput) -> Contact {
    // Built through serde so the test only uses the public API.
    let mut v = serde_json::to_value(&input).unwrap();
    let obj = v.as_object_mut().unwrap();
    for (k, val) in [
        ("id", serde_json::json!(Uuid::now_v7())),
        ("workspace_id", serde_json::json!(Uuid::now_v7())),
        ("company_name", serde_json::Value::Null),
        ("first_seen", serde_json::json!("2026-01-01T00:00:00Z")),
        ("last_seen", serde_json::json!("2026-01-01T00:00:00Z")),
        ("created_at", serde_json::json!("2026-01-01T00:00:00Z")),
        ("updated_at", serde_json::json!("2026-01-01T00:00:00Z")),
        ("version", serde_json::json!(1)),
        ("deleted_at", serde_json::Value::Null),
    ] {
        obj.insert(k.into(), val);
    }
    serde_json::from_value(v).unwrap()
}

fn tag() -> Tag {
    serde_json::from_value(serde_json::json!({
        "id": Uuid::now_v7(), "workspace_id": Uuid::now_v7(), "name": "t", "color": "#aabbcc",
        "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "version": 1, "deleted_at": null
    }))
    .unwrap()
}

#[test]
fn mixed_type_ordering_is_total() {
    // Values of different types never meet in one field, but the order must still be total.
    let vals = [
        Value::Bool(true),
        Value::Int(1),
        Value::Text("a".into()),
        Value::Null,
    ];
    for a in &vals {
        for b in &vals {
            assert_eq!(a.sort_cmp(b), b.sort_cmp(a).reverse());
        }
        assert_eq!(a.sort_cmp(a), Ordering::Equal);
    }
}
