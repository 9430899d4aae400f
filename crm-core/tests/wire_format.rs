//! The JSON form of every record, input and patch, byte for byte: what the stores keep (redb
//! values, PostgreSQL `data`), what the HTTP API answers and what hosts send. The expected
//! strings were written by the code before the entity declarations (`entity!`); a change
//! here breaks stored data or clients, so it must be deliberate.
//!
//! One difference is deliberate: a `UserInput` without `email` now reads as an empty email
//! (which validation refuses, `email` `Required`), like every other input's missing fields,
//! instead of failing to parse. (The HTTP API reads its own `POST /users` body, which still
//! requires `email`.)

use crm_core::Timestamp;
use crm_core::clock::Date;
use crm_core::id::Id;
use crm_core::mask::PersonalField;
use crm_core::model::*;
use uuid::Uuid;

fn id<T>(n: u128) -> Id<T> {
    Id::from_uuid(Uuid::from_u128(n))
}

fn t(s: i64) -> Timestamp {
    Timestamp::from_micros(s * 1_000_000 + 123_456)
}

fn day() -> Date {
    Date::from_calendar_date(2030, time::Month::January, 15).unwrap()
}

fn records() -> Vec<(&'static str, String)> {
    let ws = id(1);
    let user = User {
        id: id(2),
        workspace_id: ws,
        email: "ada@acme.test".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        role: Role::ReadOnly,
        disabled: true,
        avatar: Some("https://a.test/ada.png".into()),
        last_login_at: Some(t(5)),
        created_at: t(1),
        updated_at: t(2),
        version: 3,
    };
    let company = Company {
        id: id(3),
        workspace_id: ws,
        name: "Acme".into(),
        sector: Some("Energy".into()),
        size: Some(50),
        website: Some("https://acme.test".into()),
        phone_number: Some("+1 555 0100".into()),
        address: Some("1 Main St".into()),
        zipcode: Some("12345".into()),
        city: Some("Springfield".into()),
        state_abbr: Some("IL".into()),
        country: Some("US".into()),
        linkedin_url: None,
        description: Some("Rockets".into()),
        revenue: Some("1M".into()),
        tax_identifier: Some("DE123".into()),
        context_links: vec!["https://x.test".into()],
        sales_id: Some(user.id),
        created_at: t(1),
        updated_at: t(2),
        version: 1,
        deleted_at: Some(t(9)),
    };
    let contact = Contact {
        id: id(4),
        workspace_id: ws,
        first_name: "Grace".into(),
        last_name: "Hopper".into(),
        title: Some("Admiral".into()),
        gender: None,
        background: Some("COBOL".into()),
        emails: vec![EmailEntry {
            email: "grace@navy.test".into(),
            kind: EmailKind::Home,
        }],
        phones: vec![PhoneEntry {
            number: "555-0199".into(),
            kind: PhoneKind::Other,
        }],
        company_id: Some(company.id),
        company_name: Some("Acme".into()),
        status: Some("warm".into()),
        tags: vec![id(7), id(8)],
        has_newsletter: true,
        consents: vec![crm_core::privacy::consent::Consent {
            purpose: "newsletter".into(),
            status: crm_core::privacy::consent::ConsentStatus::Granted,
            at: t(3),
            source: Some("form".into()),
            note: None,
        }],
        linkedin_url: None,
        avatar: None,
        first_seen: t(3),
        last_seen: t(4),
        sales_id: Some(user.id),
        created_at: t(1),
        updated_at: t(2),
        version: 2,
        deleted_at: None,
    };
    let deal = Deal {
        id: id(5),
        workspace_id: ws,
        name: "Big one".into(),
        company_id: Some(company.id),
        contact_ids: vec![contact.id],
        category: Some("Other".into()),
        stage: "won".into(),
        description: None,
        amount: 12_345,
        expected_closing_date: Some(day()),
        index: 3,
        archived_at: Some(t(8)),
        sales_id: None,
        created_at: t(1),
        updated_at: t(2),
        version: 4,
        deleted_at: None,
    };
    let note = Note {
        id: id(6),
        workspace_id: ws,
        contact_id: Some(contact.id),
        deal_id: None,
        text: "Met at the fair".into(),
        status: Some("hot".into()),
        note_type: Some("call".into()),
        date: t(6),
        sales_id: Some(user.id),
        attachments: vec![Attachment {
            name: "card.png".into(),
            url: Some("https://f.test/card.png".into()),
            mime_type: Some("image/png".into()),
            size: Some(1024),
        }],
        created_at: t(1),
        updated_at: t(2),
        version: 1,
        deleted_at: None,
    };
    let task = Task {
        id: id(9),
        workspace_id: ws,
        owner_id: user.id,
        text: "Call back".into(),
        task_type: Some("Call".into()),
        due_date: Some(day()),
        priority: Some(Priority::Urgent),
        completed: true,
        done_date: Some(t(7)),
        contact_id: Some(contact.id),
        deal_id: Some(deal.id),
        company_id: None,
        created_at: t(1),
        updated_at: t(2),
        version: 2,
        deleted_at: Some(t(10)),
    };
    let tag = Tag {
        id: id(7),
        workspace_id: ws,
        name: "vip".into(),
        color: "#ff0000".into(),
        created_at: t(1),
        updated_at: t(2),
        version: 1,
        deleted_at: None,
    };
    let workspace = Workspace {
        id: ws,
        workspace_id: ws,
        name: "Acme".into(),
        created_at: t(1),
        updated_at: t(2),
        version: 1,
    };
    let mut config = Configuration::defaults(ws, t(1));
    config.masked_fields = vec![PersonalField::Emails, PersonalField::TaxIdentifier];
    let session = Session {
        id: id(11),
        workspace_id: ws,
        user_id: user.id,
        current_token: TokenHash("ab".into()),
        generation: 2,
        retired: vec![RetiredToken {
            hash: TokenHash("cd".into()),
            rotated_at: t(3),
        }],
        expires_at: t(100),
        revoked_at: Some(t(4)),
        revoke_reason: Some(RevokeReason::TokenReuse),
        client: ClientInfo {
            address: Some("10.0.0.1".into()),
            user_agent: None,
        },
        created_at: t(1),
        updated_at: t(2),
        version: 3,
    };
    let credential = Credential {
        id: id(2),
        workspace_id: ws,
        password_hash: PasswordHash("$2b$12$x".into()),
        created_at: t(1),
        updated_at: t(2),
        version: 1,
    };
    let reset = ResetToken {
        id: id(12),
        workspace_id: ws,
        user_id: user.id,
        token_hash: TokenHash("ef".into()),
        expires_at: t(50),
        used_at: None,
        created_at: t(1),
        updated_at: t(2),
        version: 1,
    };
    let records = [
        workspace.into_record(),
        user.into_record(),
        company.into_record(),
        contact.into_record(),
        deal.into_record(),
        note.into_record(),
        task.into_record(),
        tag.into_record(),
        config.into_record(),
        session.into_record(),
        credential.into_record(),
        reset.into_record(),
    ];
    records
        .iter()
        .map(|r| {
            let bytes = r.to_json_bytes().unwrap();
            // Stored bytes decode back to the same record.
            assert_eq!(&Record::from_json_bytes(r.kind(), &bytes).unwrap(), r);
            (r.kind().noun(), String::from_utf8(bytes).unwrap())
        })
        .collect()
}

fn inputs() -> Vec<(&'static str, String)> {
    let j = |v: serde_json::Result<String>| v.unwrap();
    vec![
        (
            "company input",
            j(serde_json::to_string(&CompanyInput::default())),
        ),
        (
            "contact input",
            j(serde_json::to_string(&ContactInput::default())),
        ),
        (
            "deal input",
            j(serde_json::to_string(&DealInput::default())),
        ),
        (
            "note input",
            j(serde_json::to_string(&NoteInput::default())),
        ),
        (
            "task input",
            j(serde_json::to_string(&TaskInput::default())),
        ),
        ("tag input", j(serde_json::to_string(&TagInput::default()))),
        (
            "user input",
            j(serde_json::to_string(&UserInput::default())),
        ),
        (
            "company patch",
            j(serde_json::to_string(&CompanyPatch::default())),
        ),
        (
            "contact patch",
            j(serde_json::to_string(&ContactPatch::default())),
        ),
        (
            "deal patch",
            j(serde_json::to_string(&DealPatch::default())),
        ),
        (
            "note patch",
            j(serde_json::to_string(&NotePatch::default())),
        ),
        (
            "task patch",
            j(serde_json::to_string(&TaskPatch::default())),
        ),
        ("tag patch", j(serde_json::to_string(&TagPatch::default()))),
        (
            "user patch",
            j(serde_json::to_string(&UserPatch::default())),
        ),
        (
            "configuration patch",
            j(serde_json::to_string(&ConfigurationPatch::default())),
        ),
    ]
}

/// How bodies a client sends are read: `null` clears optional fields and keeps others,
/// unknown fields are refused.
fn parsed() -> Vec<(&'static str, String)> {
    fn p<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        match serde_json::from_str::<T>(json) {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("error: {e}"),
        }
    }
    vec![
        (
            "contact patch nulls",
            p::<ContactPatch>(
                r#"{"first_name": null, "title": null, "emails": null, "sales_id": null, "last_seen": null}"#,
            ),
        ),
        (
            "contact patch values",
            p::<ContactPatch>(
                r#"{"first_name": "A", "title": "B", "tags": [], "has_newsletter": false}"#,
            ),
        ),
        (
            "deal patch dates",
            p::<DealPatch>(r#"{"expected_closing_date": null, "amount": null, "stage": "won"}"#),
        ),
        (
            "deal patch date",
            p::<DealPatch>(r#"{"expected_closing_date": "2030-01-15"}"#),
        ),
        (
            "deal patch bad date",
            p::<DealPatch>(r#"{"expected_closing_date": "2030-02-30"}"#),
        ),
        (
            "task patch",
            p::<TaskPatch>(
                r#"{"type": null, "priority": null, "due_date": null, "completed": true}"#,
            ),
        ),
        (
            "task patch priority",
            p::<TaskPatch>(r#"{"priority": "high", "owner_id": null}"#),
        ),
        (
            "note patch",
            p::<NotePatch>(r#"{"type": "call", "status": null, "text": null}"#),
        ),
        (
            "tag patch",
            p::<TagPatch>(r#"{"color": null, "name": "x"}"#),
        ),
        (
            "user patch",
            p::<UserPatch>(r#"{"avatar": null, "email": null}"#),
        ),
        (
            "configuration patch",
            p::<ConfigurationPatch>(r#"{"currency": "EUR", "masked_fields": ["emails"]}"#),
        ),
        ("unknown field", p::<ContactPatch>(r#"{"nickname": "x"}"#)),
        (
            "unknown input field",
            p::<CompanyInput>(r#"{"nickname": "x"}"#),
        ),
        (
            "deal input",
            p::<DealInput>(
                r#"{"name": "x", "expected_closing_date": "2030-01-15", "stage": null}"#,
            ),
        ),
        (
            "task input",
            p::<TaskInput>(r#"{"text": "x", "type": "Call", "due_date": null}"#),
        ),
        (
            "contact input",
            p::<ContactInput>(r#"{"first_name": "x", "emails": [{"email": "a@b.co"}]}"#),
        ),
        (
            "user input",
            p::<UserInput>(r#"{"email": "a@b.co", "role": "manager"}"#),
        ),
        (
            "user input without email",
            p::<UserInput>(r#"{"first_name": "A"}"#),
        ),
        (
            "tag input",
            p::<TagInput>(r#"{"name": "x", "color": null}"#),
        ),
        (
            "note input",
            p::<NoteInput>(r#"{"text": "x", "type": "call", "date": null}"#),
        ),
    ]
}

/// What the code before `entity!` wrote, name => JSON (or `Debug` of what it read).
const EXPECTED: &[(&str, &str)] = &[
    (
        "workspace",
        "{\"id\":\"00000000-0000-0000-0000-000000000001\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"name\":\"Acme\",\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:02.123456Z\",\"version\":1}",
    ),
    (
        "user",
        "{\"id\":\"00000000-0000-0000-0000-000000000002\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"email\":\"ada@acme.test\",\"first_name\":\"Ada\",\"last_name\":\"Lovelace\",\"role\":\"read_only\",\"disabled\":true,\"avatar\":\"https://a.test/ada.png\",\"last_login_at\":\"1970-01-01T00:00:05.123456Z\",\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:02.123456Z\",\"version\":3}",
    ),
    (
        "company",
        "{\"id\":\"00000000-0000-0000-0000-000000000003\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"name\":\"Acme\",\"sector\":\"Energy\",\"size\":50,\"website\":\"https://acme.test\",\"phone_number\":\"+1 555 0100\",\"address\":\"1 Main St\",\"zipcode\":\"12345\",\"city\":\"Springfield\",\"state_abbr\":\"IL\",\"country\":\"US\",\"linkedin_url\":null,\"description\":\"Rockets\",\"revenue\":\"1M\",\"tax_identifier\":\"DE123\",\"context_links\":[\"https://x.test\"],\"sales_id\":\"00000000-0000-0000-0000-000000000002\",\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:02.123456Z\",\"version\":1,\"deleted_at\":\"1970-01-01T00:00:09.123456Z\"}",
    ),
    (
        "contact",
        "{\"id\":\"00000000-0000-0000-0000-000000000004\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"first_name\":\"Grace\",\"last_name\":\"Hopper\",\"title\":\"Admiral\",\"gender\":null,\"background\":\"COBOL\",\"emails\":[{\"email\":\"grace@navy.test\",\"type\":\"Home\"}],\"phones\":[{\"number\":\"555-0199\",\"type\":\"Other\"}],\"company_id\":\"00000000-0000-0000-0000-000000000003\",\"company_name\":\"Acme\",\"status\":\"warm\",\"tags\":[\"00000000-0000-0000-0000-000000000007\",\"00000000-0000-0000-0000-000000000008\"],\"has_newsletter\":true,\"consents\":[{\"purpose\":\"newsletter\",\"status\":\"granted\",\"at\":\"1970-01-01T00:00:03.123456Z\",\"source\":\"form\",\"note\":null}],\"linkedin_url\":null,\"avatar\":null,\"first_seen\":\"1970-01-01T00:00:03.123456Z\",\"last_seen\":\"1970-01-01T00:00:04.123456Z\",\"sales_id\":\"00000000-0000-0000-0000-000000000002\",\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:02.123456Z\",\"version\":2,\"deleted_at\":null}",
    ),
    (
        "deal",
        "{\"id\":\"00000000-0000-0000-0000-000000000005\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"name\":\"Big one\",\"company_id\":\"00000000-0000-0000-0000-000000000003\",\"contact_ids\":[\"00000000-0000-0000-0000-000000000004\"],\"category\":\"Other\",\"stage\":\"won\",\"description\":null,\"amount\":12345,\"expected_closing_date\":\"2030-01-15\",\"index\":3,\"archived_at\":\"1970-01-01T00:00:08.123456Z\",\"sales_id\":null,\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:02.123456Z\",\"version\":4,\"deleted_at\":null}",
    ),
    (
        "note",
        "{\"id\":\"00000000-0000-0000-0000-000000000006\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"contact_id\":\"00000000-0000-0000-0000-000000000004\",\"deal_id\":null,\"text\":\"Met at the fair\",\"status\":\"hot\",\"type\":\"call\",\"date\":\"1970-01-01T00:00:06.123456Z\",\"sales_id\":\"00000000-0000-0000-0000-000000000002\",\"attachments\":[{\"name\":\"card.png\",\"url\":\"https://f.test/card.png\",\"mime_type\":\"image/png\",\"size\":1024}],\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:02.123456Z\",\"version\":1,\"deleted_at\":null}",
    ),
    (
        "task",
        "{\"id\":\"00000000-0000-0000-0000-000000000009\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"owner_id\":\"00000000-0000-0000-0000-000000000002\",\"text\":\"Call back\",\"type\":\"Call\",\"due_date\":\"2030-01-15\",\"priority\":\"urgent\",\"completed\":true,\"done_date\":\"1970-01-01T00:00:07.123456Z\",\"contact_id\":\"00000000-0000-0000-0000-000000000004\",\"deal_id\":\"00000000-0000-0000-0000-000000000005\",\"company_id\":null,\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:02.123456Z\",\"version\":2,\"deleted_at\":\"1970-01-01T00:00:10.123456Z\"}",
    ),
    (
        "tag",
        "{\"id\":\"00000000-0000-0000-0000-000000000007\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"name\":\"vip\",\"color\":\"#ff0000\",\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:02.123456Z\",\"version\":1,\"deleted_at\":null}",
    ),
    (
        "configuration",
        "{\"id\":\"00000000-0000-0000-0000-000000000001\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"deal_stages\":[{\"value\":\"opportunity\",\"label\":\"Opportunity\"},{\"value\":\"proposal-sent\",\"label\":\"Proposal Sent\"},{\"value\":\"in-negociation\",\"label\":\"In Negotiation\"},{\"value\":\"won\",\"label\":\"Won\"},{\"value\":\"lost\",\"label\":\"Lost\"},{\"value\":\"delayed\",\"label\":\"Delayed\"}],\"deal_pipeline_closed\":[\"won\",\"lost\"],\"deal_categories\":[\"Other\",\"Copywriting\",\"Print project\",\"UI Design\",\"Website design\"],\"note_statuses\":[{\"value\":\"cold\",\"label\":\"Cold\",\"color\":\"#7dbde8\"},{\"value\":\"warm\",\"label\":\"Warm\",\"color\":\"#e8cb7d\"},{\"value\":\"hot\",\"label\":\"Hot\",\"color\":\"#e88b7d\"},{\"value\":\"in-contract\",\"label\":\"In Contract\",\"color\":\"#a4e87d\"}],\"task_types\":[\"None\",\"Email\",\"Demo\",\"Lunch\",\"Meeting\",\"Follow-up\",\"Thank you\",\"Ship\",\"Call\"],\"company_sectors\":[\"Communication Services\",\"Consumer Discretionary\",\"Consumer Staples\",\"Energy\",\"Financials\",\"Health Care\",\"Industrials\",\"Information Technology\",\"Materials\",\"Real Estate\",\"Utilities\"],\"currency\":\"USD\",\"masked_fields\":[\"emails\",\"tax_identifier\"],\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:01.123456Z\",\"version\":1}",
    ),
    (
        "session",
        "{\"id\":\"00000000-0000-0000-0000-00000000000b\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"user_id\":\"00000000-0000-0000-0000-000000000002\",\"current_token\":\"ab\",\"generation\":2,\"retired\":[{\"hash\":\"cd\",\"rotated_at\":\"1970-01-01T00:00:03.123456Z\"}],\"expires_at\":\"1970-01-01T00:01:40.123456Z\",\"revoked_at\":\"1970-01-01T00:00:04.123456Z\",\"revoke_reason\":\"token_reuse\",\"client\":{\"address\":\"10.0.0.1\",\"user_agent\":null},\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:02.123456Z\",\"version\":3}",
    ),
    (
        "password",
        "{\"id\":\"00000000-0000-0000-0000-000000000002\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"password_hash\":\"$2b$12$x\",\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:02.123456Z\",\"version\":1}",
    ),
    (
        "password reset",
        "{\"id\":\"00000000-0000-0000-0000-00000000000c\",\"workspace_id\":\"00000000-0000-0000-0000-000000000001\",\"user_id\":\"00000000-0000-0000-0000-000000000002\",\"token_hash\":\"ef\",\"expires_at\":\"1970-01-01T00:00:50.123456Z\",\"used_at\":null,\"created_at\":\"1970-01-01T00:00:01.123456Z\",\"updated_at\":\"1970-01-01T00:00:02.123456Z\",\"version\":1}",
    ),
    (
        "company input",
        "{\"name\":\"\",\"sector\":null,\"size\":null,\"website\":null,\"phone_number\":null,\"address\":null,\"zipcode\":null,\"city\":null,\"state_abbr\":null,\"country\":null,\"linkedin_url\":null,\"description\":null,\"revenue\":null,\"tax_identifier\":null,\"context_links\":[],\"sales_id\":null}",
    ),
    (
        "contact input",
        "{\"first_name\":\"\",\"last_name\":\"\",\"title\":null,\"gender\":null,\"background\":null,\"emails\":[],\"phones\":[],\"company_id\":null,\"status\":null,\"tags\":[],\"has_newsletter\":false,\"linkedin_url\":null,\"avatar\":null,\"first_seen\":null,\"last_seen\":null,\"sales_id\":null}",
    ),
    (
        "deal input",
        "{\"name\":\"\",\"company_id\":null,\"contact_ids\":[],\"category\":null,\"stage\":null,\"description\":null,\"amount\":0,\"expected_closing_date\":null,\"sales_id\":null}",
    ),
    (
        "note input",
        "{\"contact_id\":null,\"deal_id\":null,\"text\":\"\",\"status\":null,\"type\":null,\"date\":null,\"attachments\":[]}",
    ),
    (
        "task input",
        "{\"owner_id\":null,\"text\":\"\",\"type\":null,\"due_date\":null,\"priority\":null,\"contact_id\":null,\"deal_id\":null,\"company_id\":null}",
    ),
    ("tag input", "{\"name\":\"\",\"color\":null}"),
    (
        "user input",
        "{\"email\":\"\",\"first_name\":\"\",\"last_name\":\"\",\"role\":null,\"avatar\":null}",
    ),
    (
        "company patch",
        "{\"name\":null,\"sector\":null,\"size\":null,\"website\":null,\"phone_number\":null,\"address\":null,\"zipcode\":null,\"city\":null,\"state_abbr\":null,\"country\":null,\"linkedin_url\":null,\"description\":null,\"revenue\":null,\"tax_identifier\":null,\"context_links\":null,\"sales_id\":null}",
    ),
    (
        "contact patch",
        "{\"first_name\":null,\"last_name\":null,\"title\":null,\"gender\":null,\"background\":null,\"emails\":null,\"phones\":null,\"company_id\":null,\"status\":null,\"tags\":null,\"has_newsletter\":null,\"linkedin_url\":null,\"avatar\":null,\"first_seen\":null,\"last_seen\":null,\"sales_id\":null}",
    ),
    (
        "deal patch",
        "{\"name\":null,\"company_id\":null,\"contact_ids\":null,\"category\":null,\"stage\":null,\"description\":null,\"amount\":null,\"expected_closing_date\":null,\"sales_id\":null}",
    ),
    (
        "note patch",
        "{\"text\":null,\"status\":null,\"type\":null,\"date\":null,\"attachments\":null}",
    ),
    (
        "task patch",
        "{\"owner_id\":null,\"text\":null,\"type\":null,\"due_date\":null,\"priority\":null,\"completed\":null,\"contact_id\":null,\"deal_id\":null,\"company_id\":null}",
    ),
    ("tag patch", "{\"name\":null,\"color\":null}"),
    (
        "user patch",
        "{\"email\":null,\"first_name\":null,\"last_name\":null,\"avatar\":null}",
    ),
    (
        "configuration patch",
        "{\"deal_stages\":null,\"deal_pipeline_closed\":null,\"deal_categories\":null,\"note_statuses\":null,\"task_types\":null,\"company_sectors\":null,\"currency\":null,\"masked_fields\":null}",
    ),
    (
        "contact patch nulls",
        "ContactPatch { first_name: None, last_name: None, title: Some(None), gender: None, background: None, emails: None, phones: None, company_id: None, status: None, tags: None, has_newsletter: None, linkedin_url: None, avatar: None, first_seen: None, last_seen: None, sales_id: Some(None) }",
    ),
    (
        "contact patch values",
        "ContactPatch { first_name: Some(\"A\"), last_name: None, title: Some(Some(\"B\")), gender: None, background: None, emails: None, phones: None, company_id: None, status: None, tags: Some([]), has_newsletter: Some(false), linkedin_url: None, avatar: None, first_seen: None, last_seen: None, sales_id: None }",
    ),
    (
        "deal patch dates",
        "DealPatch { name: None, company_id: None, contact_ids: None, category: None, stage: Some(\"won\"), description: None, amount: None, expected_closing_date: Some(None), sales_id: None }",
    ),
    (
        "deal patch date",
        "DealPatch { name: None, company_id: None, contact_ids: None, category: None, stage: None, description: None, amount: None, expected_closing_date: Some(Some(2030-01-15)), sales_id: None }",
    ),
    (
        "deal patch bad date",
        "error: invalid value: string \"2030-02-30\", expected an ISO 8601 date (YYYY-MM-DD) at line 1 column 38",
    ),
    (
        "task patch",
        "TaskPatch { owner_id: None, text: None, task_type: Some(None), due_date: Some(None), priority: Some(None), completed: Some(true), contact_id: None, deal_id: None, company_id: None }",
    ),
    (
        "task patch priority",
        "TaskPatch { owner_id: None, text: None, task_type: None, due_date: None, priority: Some(Some(High)), completed: None, contact_id: None, deal_id: None, company_id: None }",
    ),
    (
        "note patch",
        "NotePatch { text: None, status: Some(None), note_type: Some(Some(\"call\")), date: None, attachments: None }",
    ),
    ("tag patch", "TagPatch { name: Some(\"x\"), color: None }"),
    (
        "user patch",
        "UserPatch { email: None, first_name: None, last_name: None, avatar: Some(None) }",
    ),
    (
        "configuration patch",
        "ConfigurationPatch { deal_stages: None, deal_pipeline_closed: None, deal_categories: None, note_statuses: None, task_types: None, company_sectors: None, currency: Some(\"EUR\"), masked_fields: Some([Emails]) }",
    ),
    (
        "unknown field",
        "error: unknown field `nickname`, expected one of `first_name`, `last_name`, `title`, `gender`, `background`, `emails`, `phones`, `company_id`, `status`, `tags`, `has_newsletter`, `linkedin_url`, `avatar`, `first_seen`, `last_seen`, `sales_id` at line 1 column 11",
    ),
    (
        "unknown input field",
        "error: unknown field `nickname`, expected one of `name`, `sector`, `size`, `website`, `phone_number`, `address`, `zipcode`, `city`, `state_abbr`, `country`, `linkedin_url`, `description`, `revenue`, `tax_identifier`, `context_links`, `sales_id` at line 1 column 11",
    ),
    (
        "deal input",
        "DealInput { name: \"x\", company_id: None, contact_ids: [], category: None, stage: None, description: None, amount: 0, expected_closing_date: Some(2030-01-15), sales_id: None }",
    ),
    (
        "task input",
        "TaskInput { owner_id: None, text: \"x\", task_type: Some(\"Call\"), due_date: None, priority: None, contact_id: None, deal_id: None, company_id: None }",
    ),
    (
        "contact input",
        "ContactInput { first_name: \"x\", last_name: \"\", title: None, gender: None, background: None, emails: [EmailEntry { email: \"a@b.co\", kind: Work }], phones: [], company_id: None, status: None, tags: [], has_newsletter: false, linkedin_url: None, avatar: None, first_seen: None, last_seen: None, sales_id: None }",
    ),
    (
        "user input",
        "UserInput { email: \"a@b.co\", first_name: \"\", last_name: \"\", role: Some(Manager), avatar: None }",
    ),
    (
        "user input without email",
        "UserInput { email: \"\", first_name: \"A\", last_name: \"\", role: None, avatar: None }",
    ),
    ("tag input", "TagInput { name: \"x\", color: None }"),
    (
        "note input",
        "NoteInput { contact_id: None, deal_id: None, text: \"x\", status: None, note_type: Some(\"call\"), date: None, attachments: [] }",
    ),
];

#[test]
fn records_inputs_and_patches_keep_their_wire_format() {
    let actual: Vec<(&str, String)> = records()
        .into_iter()
        .chain(inputs())
        .chain(parsed())
        .collect();
    if std::env::var_os("PRINT_WIRE_FORMAT").is_some() {
        for (name, json) in &actual {
            println!("{name:?} => {json:?},");
        }
    }
    assert_eq!(actual.len(), EXPECTED.len());
    for ((name, json), (want_name, want)) in actual.iter().zip(EXPECTED) {
        assert_eq!(name, want_name);
        assert_eq!(json, want, "{name}");
    }
}
