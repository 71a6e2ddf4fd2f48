//! Accounts, authentication and platform administration against real storage in a temp dir.

use mercato_engine::accounts::secret::hash_password;
use mercato_engine::accounts::{
    NewApiKey, NewUser, NewUserRecord, Permission, Principal, Role, SESSIONS_PER_USER_MAX, Scope,
    ScopeSet, Session,
};
use mercato_engine::audit::{AuditQuery, ChainCheck};
use mercato_engine::catalog::{ManufacturerInput, RetailerInput};
use mercato_engine::money::{Currency, Money};
use mercato_engine::platform::{NewTenant, PlatformAction};
use mercato_engine::tables::{CountryCode, PaymentTerms, TenantSettings, TenantStatus, UserStatus};
use mercato_engine::tenancy::{SESSION_TTL_MS_DEFAULT, SESSION_TTL_MS_MIN, TenancyAction};
use mercato_engine::{
    Action, Actor, Command, Engine, EngineConfig, EngineError, Rejection, TenantId, now_ms,
};
use mercato_storage::ExecuteError;
use tempfile::TempDir;

const PASSWORD: &str = "correct horse battery staple";

/// A field name and a way to make a valid request invalid in that field.
type Breaker<T> = (&'static str, fn(&mut T));

struct World {
    _dir: TempDir,
    engine: Engine,
    platform: Principal,
}

fn open() -> World {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
    World {
        _dir: dir,
        engine,
        platform: Principal::platform(),
    }
}

fn new_tenant(slug: &str) -> NewTenant {
    NewTenant {
        slug: slug.into(),
        name: format!("{slug} wholesale"),
        admin_name: "Ada Admin".into(),
        admin_email: format!("admin@{slug}.example"),
        admin_password: PASSWORD.into(),
    }
}

/// Creates a tenant and signs its admin in.
async fn tenant_with_admin(w: &World, slug: &str) -> (TenantId, Session) {
    let created = w
        .engine
        .platform_create_tenant(&w.platform, new_tenant(slug))
        .await
        .unwrap();
    let session = w
        .engine
        .login(created.tenant, &format!("admin@{slug}.example"), PASSWORD)
        .await
        .unwrap();
    (created.tenant, session)
}

fn new_user(email: &str, role: Role) -> NewUser {
    NewUser {
        email: email.into(),
        name: "Some One".into(),
        role,
        password: PASSWORD.into(),
    }
}

/// Creates a manufacturer in the tenant, so that a role can be bound to it.
async fn manufacturer(w: &World, tenant: TenantId, name: &str) -> u64 {
    w.engine
        .create_manufacturer(
            tenant,
            Actor::System,
            ManufacturerInput {
                name: name.into(),
                country: CountryCode::parse("DE").unwrap(),
            },
        )
        .await
        .unwrap()
        .id
}

/// Creates a retailer in the tenant, so that a role can be bound to it.
async fn retailer(w: &World, tenant: TenantId, name: &str) -> u64 {
    w.engine
        .create_retailer(
            tenant,
            Actor::System,
            RetailerInput {
                name: name.into(),
                customer_group_id: None,
                payment_terms: PaymentTerms::Prepaid,
                credit_limit: Money::new(0, Currency::EUR),
                approval_threshold: None,
                addresses: Vec::new(),
            },
        )
        .await
        .unwrap()
        .id
}

fn is_invalid(result: &Result<impl std::fmt::Debug, EngineError>, field: &str) -> bool {
    matches!(result, Err(EngineError::Rejected(Rejection::InvalidField { field: f, .. })) if f == field)
}

fn is_conflict(result: &Result<impl std::fmt::Debug, EngineError>, code: &str) -> bool {
    matches!(result, Err(EngineError::Rejected(Rejection::Conflict { code: c, .. })) if *c == code)
}

fn audit_actions(engine: &Engine, tenant: TenantId) -> Vec<String> {
    let page = engine
        .audit_query(
            tenant,
            &AuditQuery {
                limit: 500,
                ..Default::default()
            },
        )
        .unwrap();
    page.entries.into_iter().map(|e| e.action).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_token_is_created_once_and_rotates() {
    let w = open();
    let token = w.engine.init_platform().await.unwrap().expect("first init");
    assert!(token.expose_secret().starts_with("mcp_"));
    assert!(!format!("{token:?}").contains(&token.expose_secret()[4..]));
    assert!(w.engine.init_platform().await.unwrap().is_none());

    let principal = w.engine.authenticate(token.expose_secret()).unwrap();
    assert_eq!(principal, Principal::platform());
    assert_eq!(principal.actor, Actor::Platform);
    assert!(principal.can(Permission::ManagePlatform));
    assert!(!principal.can(Permission::ManageUsers));

    let rotated = w.engine.rotate_platform_token().await.unwrap();
    assert_ne!(rotated, token);
    assert!(matches!(
        w.engine.authenticate(token.expose_secret()),
        Err(EngineError::Unauthenticated)
    ));
    assert_eq!(
        w.engine.authenticate(rotated.expose_secret()).unwrap(),
        Principal::platform()
    );
    assert!(w.engine.init_platform().await.unwrap().is_none());

    let platform = TenantId(0);
    assert_eq!(
        audit_actions(&w.engine, platform),
        ["platform_token.create", "platform_token.rotate"]
    );
    assert_eq!(
        w.engine.audit_verify(platform).unwrap(),
        ChainCheck::Intact { entries: 2 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_token_before_init_and_malformed_tokens_are_unauthenticated() {
    let w = open();
    let random = "ab".repeat(32);
    for token in [
        format!("mcp_{random}"),
        format!("mct_1_{random}"),
        format!("mck_1_{random}"),
        format!("mct_0_{random}"),
        "Bearer xyz".to_string(),
        String::new(),
        "mct_1_".to_string(),
        "x".repeat(100_000),
    ] {
        assert!(
            matches!(
                w.engine.authenticate(&token),
                Err(EngineError::Unauthenticated)
            ),
            "{token:.40}"
        );
    }
    assert!(matches!(
        w.engine.logout(&format!("mct_1_{random}")).await,
        Err(EngineError::Unauthenticated)
    ));
    assert!(matches!(
        w.engine.logout("garbage").await,
        Err(EngineError::Unauthenticated)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_tenants_allocates_ids_from_one_and_lists_them() {
    let w = open();
    let a = w
        .engine
        .platform_create_tenant(&w.platform, new_tenant("acme"))
        .await
        .unwrap();
    assert_eq!(a.tenant, TenantId(1));
    assert!(!a.resumed);
    assert_eq!(a.entry.status, TenantStatus::Active);
    assert_eq!(a.entry.admin_user_id, Some(a.admin.id));
    assert_eq!(a.admin.role, Role::TenantAdmin);
    assert_eq!(a.admin.email, "admin@acme.example");
    let profile = w.engine.tenant_profile(a.tenant).unwrap().unwrap();
    assert_eq!(profile.name, "acme wholesale");

    let mut b_request = new_tenant("Bravo-2");
    b_request.admin_email = "  Boss@Bravo.Example ".into();
    let b = w
        .engine
        .platform_create_tenant(&w.platform, b_request)
        .await
        .unwrap();
    assert_eq!(b.tenant, TenantId(2));
    assert_eq!(b.entry.slug, "bravo-2");
    assert_eq!(b.admin.email, "boss@bravo.example");

    let first = w
        .engine
        .platform_list_tenants(&w.platform, None, 1)
        .unwrap();
    assert_eq!(first.items.len(), 1);
    assert_eq!(first.items[0].slug, "acme");
    let rest = w
        .engine
        .platform_list_tenants(&w.platform, first.next_after.map(TenantId), 10)
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].slug, "bravo-2");
    assert_eq!(rest.next_after, None);

    let found = w
        .engine
        .platform_tenant_by_slug(" BRAVO-2")
        .unwrap()
        .unwrap();
    assert_eq!(found.id, 2);
    assert!(
        w.engine
            .platform_tenant_by_slug("nobody")
            .unwrap()
            .is_none()
    );
    assert!(w.engine.platform_tenant_by_slug("-").unwrap().is_none());

    assert_eq!(
        audit_actions(&w.engine, TenantId(0)),
        [
            "tenant.register",
            "tenant.activate",
            "tenant.register",
            "tenant.activate"
        ]
    );
    assert_eq!(
        audit_actions(&w.engine, a.tenant),
        ["tenant.create", "user.create"]
    );
    assert_eq!(
        w.engine.audit_verify(a.tenant).unwrap(),
        ChainCheck::Intact { entries: 2 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_creation_rejects_bad_input_duplicates_and_non_platform_callers() {
    let w = open();
    let (tenant, admin) = tenant_with_admin(&w, "acme").await;

    let taken = w
        .engine
        .platform_create_tenant(&w.platform, new_tenant("acme"))
        .await;
    assert!(is_conflict(&taken, "tenant_slug_taken"), "{taken:?}");

    let cases: [Breaker<NewTenant>; 7] = [
        ("slug", |t| t.slug = "ab".into()),
        ("slug", |t| t.slug = "-acme2".into()),
        ("slug", |t| t.slug = "acme_2".into()),
        ("name", |t| t.name = " ".into()),
        ("email", |t| t.admin_email = "not-an-email".into()),
        ("name", |t| t.admin_name = "x".repeat(201)),
        ("password", |t| t.admin_password = "too short".into()),
    ];
    for (field, break_it) in cases {
        let mut request = new_tenant("fresh");
        break_it(&mut request);
        let result = w.engine.platform_create_tenant(&w.platform, request).await;
        assert!(is_invalid(&result, field), "{field}: {result:?}");
    }

    let by_tenant_admin = w
        .engine
        .platform_create_tenant(&admin.principal, new_tenant("sneaky"))
        .await;
    assert!(matches!(by_tenant_admin, Err(EngineError::Forbidden(_))));
    assert!(matches!(
        w.engine.platform_list_tenants(&admin.principal, None, 10),
        Err(EngineError::Forbidden(_))
    ));

    // Nothing but acme was registered.
    let all = w
        .engine
        .platform_list_tenants(&w.platform, None, 100)
        .unwrap();
    assert_eq!(all.items.len(), 1);
    assert_eq!(all.items[0].id, tenant.0);

    // Tenant 0 is the platform: no profile, no accounts.
    assert!(matches!(
        w.engine.create_tenant(TenantId(0), "Platform?").await,
        Err(EngineError::Rejected(Rejection::InvalidField { .. }))
    ));
    assert!(matches!(
        w.engine
            .login(TenantId(0), "admin@acme.example", PASSWORD)
            .await,
        Err(EngineError::Unauthenticated)
    ));
    assert!(matches!(
        w.engine.list_users(&w.platform, None, 10),
        Err(EngineError::Forbidden(_))
    ));
}

/// Runs one command directly, as a step of `platform_create_tenant` would, so that a test can
/// stop the sequence half-way (as a crash would).
async fn run_step(w: &World, tenant: TenantId, action: Action) {
    w.engine
        .storage()
        .execute(Command {
            tenant,
            actor: Actor::Platform,
            at_ms: now_ms(),
            action,
        })
        .await
        .unwrap();
}

fn register(slug: &str) -> Action {
    Action::Tenancy(TenancyAction::Platform(PlatformAction::RegisterTenant {
        slug: slug.into(),
        name: format!("{slug} wholesale"),
        admin_email: format!("admin@{slug}.example"),
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_completes_a_tenant_left_half_created() {
    let w = open();

    // Stopped after registration: the entry is `Creating`, the tenant's shard is empty.
    run_step(&w, TenantId(0), register("halfway")).await;
    let entry = w
        .engine
        .platform_tenant_by_slug("halfway")
        .unwrap()
        .unwrap();
    assert_eq!(entry.status, TenantStatus::Creating);
    assert!(
        w.engine
            .tenant_profile(TenantId(entry.id))
            .unwrap()
            .is_none()
    );

    // A different admin email for the same slug is not a retry.
    let mut other = new_tenant("halfway");
    other.admin_email = "someone@else.example".into();
    let conflict = w.engine.platform_create_tenant(&w.platform, other).await;
    assert!(is_conflict(&conflict, "tenant_slug_taken"), "{conflict:?}");

    let done = w
        .engine
        .platform_create_tenant(&w.platform, new_tenant("halfway"))
        .await
        .unwrap();
    assert!(done.resumed);
    assert_eq!(done.tenant, TenantId(entry.id));
    assert_eq!(done.entry.status, TenantStatus::Active);
    w.engine
        .login(done.tenant, "admin@halfway.example", PASSWORD)
        .await
        .unwrap();
    // Completed once: asking again is a conflict, not a second tenant.
    let again = w
        .engine
        .platform_create_tenant(&w.platform, new_tenant("halfway"))
        .await;
    assert!(is_conflict(&again, "tenant_slug_taken"), "{again:?}");

    // Stopped after provisioning (profile and admin exist, entry still `Creating`): the retry
    // keeps the profile and the admin, and the retry's password is the one that works.
    run_step(&w, TenantId(0), register("later")).await;
    let later = TenantId(
        w.engine
            .platform_tenant_by_slug("later")
            .unwrap()
            .unwrap()
            .id,
    );
    let first_password = "the first password";
    let provision = Action::Tenancy(TenancyAction::Provision {
        name: "later wholesale".into(),
        admin: NewUserRecord {
            email: "admin@later.example".into(),
            name: "Ada Admin".into(),
            role: Role::TenantAdmin,
            password: hash_password(first_password).await.unwrap(),
        },
    });
    run_step(&w, later, provision).await;
    let profile = w.engine.tenant_profile(later).unwrap().unwrap();
    let early = w
        .engine
        .login(later, "admin@later.example", first_password)
        .await
        .unwrap();
    let done = w
        .engine
        .platform_create_tenant(&w.platform, new_tenant("later"))
        .await
        .unwrap();
    assert!(done.resumed);
    assert_eq!(done.tenant, later);
    assert_eq!(done.entry.status, TenantStatus::Active);
    assert_eq!(Some(done.admin.id), done.entry.admin_user_id);
    assert_eq!(early.principal.actor, Actor::User(done.admin.id));
    assert_eq!(w.engine.tenant_profile(later).unwrap().unwrap(), profile);
    assert!(matches!(
        w.engine
            .login(later, "admin@later.example", first_password)
            .await,
        Err(EngineError::Unauthenticated)
    ));
    // Setting the password revoked the session of the earlier attempt.
    assert!(matches!(
        w.engine.authenticate(early.token.expose_secret()),
        Err(EngineError::Unauthenticated)
    ));
    w.engine
        .login(later, "admin@later.example", PASSWORD)
        .await
        .unwrap();
    let users = w
        .engine
        .list_users(&done_admin(&w, later).await, None, 10)
        .unwrap();
    assert_eq!(users.items.len(), 1);
    assert_eq!(
        audit_actions(&w.engine, later),
        [
            "tenant.create",
            "user.create",
            "session.create",
            "session.revoke",
            "user.password_set",
            "session.create",
            "session.create"
        ]
    );
}

async fn done_admin(w: &World, tenant: TenantId) -> Principal {
    let slug = w
        .engine
        .platform_list_tenants(&w.platform, None, 100)
        .unwrap()
        .items
        .into_iter()
        .find(|e| e.id == tenant.0)
        .unwrap()
        .slug;
    w.engine
        .login(tenant, &format!("admin@{slug}.example"), PASSWORD)
        .await
        .unwrap()
        .principal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_never_clobbers_a_tenant_created_outside_the_registry() {
    let w = open();
    // A tool created tenant 1's profile directly; the registry's first id is 1 too.
    w.engine
        .create_tenant(TenantId(1), "Squatter")
        .await
        .unwrap();
    let result = w
        .engine
        .platform_create_tenant(&w.platform, new_tenant("acme"))
        .await;
    assert!(is_conflict(&result, "tenant_exists"), "{result:?}");
    assert_eq!(
        w.engine.tenant_profile(TenantId(1)).unwrap().unwrap().name,
        "Squatter"
    );
    let entry = w.engine.platform_tenant_by_slug("acme").unwrap().unwrap();
    assert_eq!(entry.status, TenantStatus::Creating);
    // The next tenant gets the next id and is unaffected.
    let next = w
        .engine
        .platform_create_tenant(&w.platform, new_tenant("bravo"))
        .await
        .unwrap();
    assert_eq!(next.tenant, TenantId(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_create_users_of_every_role_and_list_them() {
    let w = open();
    let (tenant, admin) = tenant_with_admin(&w, "acme").await;
    let manufacturer_id = manufacturer(&w, tenant, "Acme Tools").await;
    let retailer_id = retailer(&w, tenant, "Corner Shop").await;
    let roles = [
        Role::TenantAdmin,
        Role::ManufacturerUser { manufacturer_id },
        Role::Buyer { retailer_id },
        Role::BuyerApprover { retailer_id },
        Role::Reviewer,
    ];
    let mut ids = Vec::new();
    for (i, role) in roles.into_iter().enumerate() {
        let user = w
            .engine
            .create_user(
                &admin.principal,
                new_user(&format!(" User{i}@Acme.Example "), role),
            )
            .await
            .unwrap();
        assert_eq!(user.email, format!("user{i}@acme.example"));
        assert_eq!(user.role, role);
        assert_eq!(user.status, UserStatus::Active);
        ids.push(user.id);
        let session = w
            .engine
            .login(tenant, &format!("USER{i}@acme.example"), PASSWORD)
            .await
            .unwrap();
        let principal = w
            .engine
            .authenticate(session.token.expose_secret())
            .unwrap();
        assert_eq!(principal, Principal::user(tenant, user.id, role));
        assert_eq!(principal, session.principal);
    }

    // Pages of two, in id order (the admin is user 1).
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = w.engine.list_users(&admin.principal, after, 2).unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|u| u.id));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut expected = vec![1];
    expected.extend(&ids);
    assert_eq!(seen, expected);

    // A user reads themselves but not others.
    let buyer = w
        .engine
        .login(tenant, "user2@acme.example", PASSWORD)
        .await
        .unwrap();
    assert_eq!(
        w.engine
            .user(&buyer.principal, ids[2])
            .unwrap()
            .unwrap()
            .email,
        "user2@acme.example"
    );
    assert!(matches!(
        w.engine.user(&buyer.principal, 1),
        Err(EngineError::Forbidden(_))
    ));
    assert!(matches!(
        w.engine.list_users(&buyer.principal, None, 10),
        Err(EngineError::Forbidden(_))
    ));
    assert!(w.engine.user(&admin.principal, 999).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_creation_rejects_bad_input_duplicates_and_non_admins() {
    let w = open();
    let (tenant, admin) = tenant_with_admin(&w, "acme").await;
    let p = &admin.principal;
    let retailer_id = retailer(&w, tenant, "Corner Shop").await;
    let manufacturer_id = manufacturer(&w, tenant, "Acme Tools").await;
    w.engine
        .create_user(
            p,
            new_user("buyer@acme.example", Role::Buyer { retailer_id }),
        )
        .await
        .unwrap();

    let duplicate = w
        .engine
        .create_user(p, new_user(" BUYER@acme.example", Role::Reviewer))
        .await;
    assert!(is_conflict(&duplicate, "email_taken"), "{duplicate:?}");

    let cases: [Breaker<NewUser>; 9] = [
        ("password", |u| u.password = "eleven char".into()),
        ("password", |u| u.password = "x".repeat(257)),
        ("email", |u| u.email = "no-at-sign".into()),
        ("email", |u| u.email = "two@@acme.example".into()),
        ("email", |u| u.email = "sp ace@acme.example".into()),
        ("email", |u| {
            u.email = format!("{}@acme.example", "a".repeat(250))
        }),
        ("name", |u| u.name = "   ".into()),
        ("role.manufacturer_id", |u| {
            u.role = Role::ManufacturerUser { manufacturer_id: 0 }
        }),
        ("role.retailer_id", |u| {
            u.role = Role::BuyerApprover { retailer_id: 0 }
        }),
    ];
    for (field, break_it) in cases {
        let mut user = new_user("fresh@acme.example", Role::Reviewer);
        break_it(&mut user);
        let result = w.engine.create_user(p, user).await;
        assert!(is_invalid(&result, field), "{field}: {result:?}");
    }
    // A role binds only to a party that exists in the tenant.
    let unbound = [
        (
            "role.retailer_id",
            Role::Buyer {
                retailer_id: retailer_id + 1,
            },
        ),
        (
            "role.retailer_id",
            Role::BuyerApprover {
                retailer_id: retailer_id + 1,
            },
        ),
        (
            "role.manufacturer_id",
            Role::ManufacturerUser {
                manufacturer_id: manufacturer_id + 1,
            },
        ),
    ];
    for (field, role) in unbound {
        let result = w
            .engine
            .create_user(p, new_user("unbound@acme.example", role))
            .await;
        assert!(is_invalid(&result, field), "{field}: {result:?}");
    }
    // The party exists: the same manufacturer binding is accepted.
    w.engine
        .create_user(
            p,
            new_user(
                "maker@acme.example",
                Role::ManufacturerUser { manufacturer_id },
            ),
        )
        .await
        .unwrap();
    // Exactly 12 and 256 bytes are accepted.
    for (i, len) in [12, 256].into_iter().enumerate() {
        let mut user = new_user(&format!("edge{i}@acme.example"), Role::Reviewer);
        user.password = "p".repeat(len);
        w.engine.create_user(p, user).await.unwrap();
    }

    // A buyer may not create users: refused before any work.
    let buyer = w
        .engine
        .login(tenant, "buyer@acme.example", PASSWORD)
        .await
        .unwrap();
    let by_buyer = w
        .engine
        .create_user(
            &buyer.principal,
            new_user("x@acme.example", Role::TenantAdmin),
        )
        .await;
    assert!(
        matches!(by_buyer, Err(EngineError::Forbidden(_))),
        "{by_buyer:?}"
    );

    // A principal that claims more than the stored user has is refused by the command itself.
    let forged = Principal::user(tenant, buyer.principal_user_id(), Role::TenantAdmin);
    let by_forged = w
        .engine
        .create_user(&forged, new_user("y@acme.example", Role::TenantAdmin))
        .await;
    assert!(
        matches!(
            by_forged,
            Err(EngineError::Rejected(Rejection::Forbidden { .. }))
        ),
        "{by_forged:?}"
    );

    let users = w.engine.list_users(p, None, 100).unwrap();
    assert_eq!(
        users.items.len(),
        5,
        "admin, buyer, maker and the two edge cases"
    );
}

trait SessionExt {
    fn principal_user_id(&self) -> u64;
}

impl SessionExt for Session {
    fn principal_user_id(&self) -> u64 {
        match self.principal.actor {
            Actor::User(id) => id,
            ref other => panic!("not a user: {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_are_all_unauthenticated() {
    let w = open();
    let (tenant, admin) = tenant_with_admin(&w, "acme").await;
    let (other_tenant, _) = tenant_with_admin(&w, "bravo").await;
    let email = "admin@acme.example";
    for (t, e, pw) in [
        (tenant, email, "wrong password!!"),
        (tenant, email, ""),
        (tenant, "nobody@acme.example", PASSWORD),
        (tenant, "not an email", PASSWORD),
        (other_tenant, email, PASSWORD),
        (TenantId(99), email, PASSWORD),
        (TenantId(0), email, PASSWORD),
    ] {
        let result = w.engine.login(t, e, pw).await;
        assert!(
            matches!(result, Err(EngineError::Unauthenticated)),
            "{t} {e}: {result:?}"
        );
    }
    let huge = "p".repeat(10_000);
    assert!(matches!(
        w.engine.login(tenant, email, &huge).await,
        Err(EngineError::Unauthenticated)
    ));

    // A session's token names its tenant and has the documented shape.
    let text = admin.token.expose_secret();
    let rest = text.strip_prefix(&format!("mct_{}_", tenant.0)).unwrap();
    assert_eq!(rest.len(), 64);
    assert!(
        rest.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert!(!format!("{admin:?}").contains(rest));
    let now = now_ms();
    assert!(admin.expires_at_ms > now + SESSION_TTL_MS_DEFAULT - 60_000);
    assert!(admin.expires_at_ms <= now + SESSION_TTL_MS_DEFAULT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_and_are_revoked_by_logout_revoke_all_and_disable() {
    let w = open();
    let (tenant, admin) = tenant_with_admin(&w, "acme").await;
    let retailer_id = retailer(&w, tenant, "Corner Shop").await;
    let user = w
        .engine
        .create_user(
            &admin.principal,
            new_user("buyer@acme.example", Role::Buyer { retailer_id }),
        )
        .await
        .unwrap();
    let login = || w.engine.login(tenant, "buyer@acme.example", PASSWORD);
    let unauthenticated = |token: &Session| {
        matches!(
            w.engine.authenticate(token.token.expose_secret()),
            Err(EngineError::Unauthenticated)
        )
    };

    // Expiry.
    let s = login().await.unwrap();
    let t = s.token.expose_secret();
    assert!(w.engine.authenticate_at(t, s.expires_at_ms - 1).is_ok());
    assert!(matches!(
        w.engine.authenticate_at(t, s.expires_at_ms),
        Err(EngineError::Unauthenticated)
    ));

    // Logout revokes one session; a second logout is refused.
    let other = login().await.unwrap();
    w.engine.logout(t).await.unwrap();
    assert!(unauthenticated(&s));
    assert!(!unauthenticated(&other));
    assert!(matches!(
        w.engine.logout(t).await,
        Err(EngineError::Unauthenticated)
    ));

    // Revoke all: by the user themselves, or by an admin; only live sessions count.
    let third = login().await.unwrap();
    assert_eq!(
        w.engine
            .revoke_user_sessions(&other.principal, user.id)
            .await
            .unwrap(),
        2
    );
    assert!(unauthenticated(&other) && unauthenticated(&third));
    let fourth = login().await.unwrap();
    assert_eq!(
        w.engine
            .revoke_user_sessions(&admin.principal, user.id)
            .await
            .unwrap(),
        1
    );
    assert!(unauthenticated(&fourth));
    // ...but not by another non-admin user, and not for a user that does not exist.
    let fifth = login().await.unwrap();
    let peer = w
        .engine
        .create_user(
            &admin.principal,
            new_user("peer@acme.example", Role::Buyer { retailer_id }),
        )
        .await
        .unwrap();
    let peer_session = w
        .engine
        .login(tenant, "peer@acme.example", PASSWORD)
        .await
        .unwrap();
    assert!(matches!(
        w.engine
            .revoke_user_sessions(&peer_session.principal, user.id)
            .await,
        Err(EngineError::Forbidden(_))
    ));
    assert!(matches!(
        w.engine.revoke_user_sessions(&admin.principal, 999).await,
        Err(EngineError::Rejected(Rejection::NotFound { .. }))
    ));
    assert!(!unauthenticated(&fifth));
    let _ = peer;

    // Disabling revokes every session and blocks login; enabling lets the user back in.
    let disabled = w
        .engine
        .disable_user(&admin.principal, user.id)
        .await
        .unwrap();
    assert_eq!(disabled.status, UserStatus::Disabled);
    assert!(unauthenticated(&fifth));
    assert!(matches!(login().await, Err(EngineError::Unauthenticated)));
    // Disabling twice changes nothing.
    w.engine
        .disable_user(&admin.principal, user.id)
        .await
        .unwrap();
    let enabled = w
        .engine
        .enable_user(&admin.principal, user.id)
        .await
        .unwrap();
    assert_eq!(enabled.status, UserStatus::Active);
    let back = login().await.unwrap();
    assert!(!unauthenticated(&back));
    // A session of a user disabled later stops authenticating even before it is revoked:
    // the user's status is checked on every request.
    assert!(w.engine.authenticate(back.token.expose_secret()).is_ok());

    // Nobody disables themselves; non-admins disable nobody; unknown users are not found.
    let admin_id = admin.principal_user_id();
    let self_disable = w.engine.disable_user(&admin.principal, admin_id).await;
    assert!(
        is_conflict(&self_disable, "cannot_disable_self"),
        "{self_disable:?}"
    );
    assert!(matches!(
        w.engine.disable_user(&back.principal, admin_id).await,
        Err(EngineError::Forbidden(_))
    ));
    assert!(matches!(
        w.engine.disable_user(&admin.principal, 999).await,
        Err(EngineError::Rejected(Rejection::NotFound { .. }))
    ));

    let actions = audit_actions(&w.engine, tenant);
    for expected in [
        "session.create",
        "session.revoke",
        "user.disable",
        "user.enable",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected}: {actions:?}"
        );
    }
    assert_eq!(
        actions.iter().filter(|a| *a == "user.disable").count(),
        1,
        "the second disable was a no-op"
    );
    assert!(matches!(
        w.engine.audit_verify(tenant).unwrap(),
        ChainCheck::Intact { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_lifetime_is_a_tenant_setting() {
    let w = open();
    let (tenant, admin) = tenant_with_admin(&w, "acme").await;
    assert_eq!(
        w.engine.tenant_settings(&admin.principal).unwrap(),
        TenantSettings::default()
    );
    let short = TenantSettings {
        session_ttl_ms: SESSION_TTL_MS_MIN,
    };
    assert_eq!(
        w.engine
            .update_tenant_settings(&admin.principal, short)
            .await
            .unwrap(),
        short
    );
    let s = w
        .engine
        .login(tenant, "admin@acme.example", PASSWORD)
        .await
        .unwrap();
    let now = now_ms();
    assert!(s.expires_at_ms <= now + SESSION_TTL_MS_MIN);
    assert!(s.expires_at_ms > now + SESSION_TTL_MS_MIN - 60_000);
    assert!(matches!(
        w.engine
            .authenticate_at(s.token.expose_secret(), s.expires_at_ms),
        Err(EngineError::Unauthenticated)
    ));

    for ttl in [0, SESSION_TTL_MS_MIN - 1, 31 * 24 * 60 * 60 * 1000] {
        let result = w
            .engine
            .update_tenant_settings(
                &admin.principal,
                TenantSettings {
                    session_ttl_ms: ttl,
                },
            )
            .await;
        assert!(is_invalid(&result, "session_ttl_ms"), "{ttl}: {result:?}");
    }
    w.engine
        .create_user(
            &admin.principal,
            new_user("rev@acme.example", Role::Reviewer),
        )
        .await
        .unwrap();
    let reviewer = w
        .engine
        .login(tenant, "rev@acme.example", PASSWORD)
        .await
        .unwrap();
    assert!(matches!(
        w.engine
            .update_tenant_settings(&reviewer.principal, TenantSettings::default())
            .await,
        Err(EngineError::Forbidden(_))
    ));
    assert_eq!(
        w.engine.tenant_settings(&reviewer.principal).unwrap(),
        short
    );
    assert!(matches!(
        w.engine.tenant_settings(&w.platform),
        Err(EngineError::Forbidden(_))
    ));
    assert!(audit_actions(&w.engine, tenant).contains(&"tenant.settings_update".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_keeps_a_bounded_number_of_sessions_oldest_out_first() {
    let w = open();
    let (tenant, first) = tenant_with_admin(&w, "acme").await;
    let mut sessions = vec![first];
    for _ in 0..SESSIONS_PER_USER_MAX {
        sessions.push(
            w.engine
                .login(tenant, "admin@acme.example", PASSWORD)
                .await
                .unwrap(),
        );
    }
    // SESSIONS_PER_USER_MAX + 1 logins: the first was removed, all others work.
    assert!(matches!(
        w.engine.authenticate(sessions[0].token.expose_secret()),
        Err(EngineError::Unauthenticated)
    ));
    for s in &sessions[1..] {
        w.engine.authenticate(s.token.expose_secret()).unwrap();
    }
    let revoked = w
        .engine
        .revoke_user_sessions(&sessions[1].principal, sessions[1].principal_user_id())
        .await
        .unwrap();
    assert_eq!(revoked as usize, SESSIONS_PER_USER_MAX);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_are_changed_with_the_current_one_or_reset_by_an_admin() {
    let w = open();
    let (tenant, admin) = tenant_with_admin(&w, "acme").await;
    let user = w
        .engine
        .create_user(
            &admin.principal,
            new_user("rev@acme.example", Role::Reviewer),
        )
        .await
        .unwrap();
    let s = w
        .engine
        .login(tenant, "rev@acme.example", PASSWORD)
        .await
        .unwrap();

    let wrong = w
        .engine
        .change_password(&s.principal, "not my password", "a brand new password")
        .await;
    assert!(is_invalid(&wrong, "current_password"), "{wrong:?}");
    let weak = w
        .engine
        .change_password(&s.principal, PASSWORD, "short")
        .await;
    assert!(is_invalid(&weak, "password"), "{weak:?}");

    w.engine
        .change_password(&s.principal, PASSWORD, "a brand new password")
        .await
        .unwrap();
    assert!(matches!(
        w.engine.authenticate(s.token.expose_secret()),
        Err(EngineError::Unauthenticated)
    ));
    assert!(matches!(
        w.engine.login(tenant, "rev@acme.example", PASSWORD).await,
        Err(EngineError::Unauthenticated)
    ));
    let s = w
        .engine
        .login(tenant, "rev@acme.example", "a brand new password")
        .await
        .unwrap();

    // Only an admin resets someone else's password.
    assert!(matches!(
        w.engine
            .reset_password(&s.principal, admin.principal_user_id(), "hijacked password")
            .await,
        Err(EngineError::Forbidden(_))
    ));
    w.engine
        .reset_password(&admin.principal, user.id, "set by the admin")
        .await
        .unwrap();
    assert!(matches!(
        w.engine.authenticate(s.token.expose_secret()),
        Err(EngineError::Unauthenticated)
    ));
    w.engine
        .login(tenant, "rev@acme.example", "set by the admin")
        .await
        .unwrap();
    let missing = w
        .engine
        .reset_password(&admin.principal, 999, "whatever password")
        .await;
    assert!(matches!(
        missing,
        Err(EngineError::Rejected(Rejection::NotFound { .. }))
    ));
    // An API key is not a user and has no password of its own.
    let key = w
        .engine
        .create_api_key(
            &admin.principal,
            NewApiKey {
                name: "erp".into(),
                role: Role::TenantAdmin,
                scopes: ScopeSet::of(&[Scope::Admin]),
                expires_at_ms: None,
            },
        )
        .await
        .unwrap();
    let key_principal = w.engine.authenticate(key.secret.expose_secret()).unwrap();
    assert!(matches!(
        w.engine
            .change_password(&key_principal, PASSWORD, "another new password")
            .await,
        Err(EngineError::Forbidden(_))
    ));
    assert_eq!(
        audit_actions(&w.engine, tenant)
            .iter()
            .filter(|a| *a == "user.password_set")
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_shown_once_scoped_listed_without_secrets_expire_and_revoke() {
    let w = open();
    let (tenant, admin) = tenant_with_admin(&w, "acme").await;
    let maker = manufacturer(&w, tenant, "Acme Tools").await;
    let other_maker = manufacturer(&w, tenant, "Borealis Paints").await;
    let expires = now_ms() + 3_600_000;
    let created = w
        .engine
        .create_api_key(
            &admin.principal,
            NewApiKey {
                name: " Vendor ERP ".into(),
                role: Role::ManufacturerUser {
                    manufacturer_id: maker,
                },
                scopes: ScopeSet::of(&[Scope::CatalogWrite, Scope::InventoryWrite]),
                expires_at_ms: Some(expires),
            },
        )
        .await
        .unwrap();
    let secret = created.secret.expose_secret().to_string();
    assert!(secret.starts_with(&format!("mck_{}_", tenant.0)));
    assert_eq!(created.key.name, "Vendor ERP");
    assert!(secret.starts_with(&created.key.display_prefix));
    assert_eq!(
        created.key.display_prefix.len(),
        format!("mck_{}_", tenant.0).len() + 4
    );
    assert_eq!(created.key.created_by, admin.principal.actor);

    let principal = w.engine.authenticate(&secret).unwrap();
    assert_eq!(principal.actor, Actor::ApiKey(created.key.id));
    assert_eq!(principal.tenant, tenant);
    assert!(principal.can(Permission::ManageInventory {
        manufacturer_id: maker
    }));
    assert!(principal.can(Permission::ReadCatalog));
    assert!(!principal.can(Permission::ManageInventory {
        manufacturer_id: other_maker
    }));
    assert!(!principal.can(Permission::FulfilOrder {
        manufacturer_id: maker
    }));
    assert!(!principal.can(Permission::ManageUsers));
    assert!(w.engine.authenticate_at(&secret, expires - 1).is_ok());
    assert!(matches!(
        w.engine.authenticate_at(&secret, expires),
        Err(EngineError::Unauthenticated)
    ));
    // An API key is not a session: it cannot log out.
    assert!(matches!(
        w.engine.logout(&secret).await,
        Err(EngineError::Unauthenticated)
    ));

    let second = w
        .engine
        .create_api_key(
            &admin.principal,
            NewApiKey {
                name: "reporting".into(),
                role: Role::TenantAdmin,
                scopes: ScopeSet::of(&[Scope::OrdersRead]),
                expires_at_ms: None,
            },
        )
        .await
        .unwrap();
    let listed = w.engine.list_api_keys(&admin.principal, None, 1).unwrap();
    assert_eq!(listed.items, vec![created.key.clone()]);
    let listed_rest = w
        .engine
        .list_api_keys(&admin.principal, listed.next_after, 10)
        .unwrap();
    assert_eq!(listed_rest.items, vec![second.key.clone()]);
    let shown = format!("{listed:?}{listed_rest:?}{created:?}");
    assert!(!shown.contains(&secret[secret.len() - 60..]), "{shown}");
    assert!(!shown.contains(&second.secret.expose_secret()[10..]));

    let revoked = w
        .engine
        .revoke_api_key(&admin.principal, created.key.id)
        .await
        .unwrap();
    assert!(revoked.revoked_at_ms.is_some());
    assert!(matches!(
        w.engine.authenticate(&secret),
        Err(EngineError::Unauthenticated)
    ));
    // Revoking twice is a no-op; unknown keys are not found.
    assert_eq!(
        w.engine
            .revoke_api_key(&admin.principal, created.key.id)
            .await
            .unwrap(),
        revoked
    );
    assert!(matches!(
        w.engine.revoke_api_key(&admin.principal, 999).await,
        Err(EngineError::Rejected(Rejection::NotFound { .. }))
    ));
    w.engine
        .authenticate(second.secret.expose_secret())
        .unwrap();

    let actions = audit_actions(&w.engine, tenant);
    assert_eq!(actions.iter().filter(|a| *a == "api_key.create").count(), 2);
    assert_eq!(actions.iter().filter(|a| *a == "api_key.revoke").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_creation_rejects_bad_input_and_non_admins() {
    let w = open();
    let (tenant, admin) = tenant_with_admin(&w, "acme").await;
    let good = || NewApiKey {
        name: "erp".into(),
        role: Role::TenantAdmin,
        scopes: ScopeSet::of(&[Scope::CatalogRead]),
        expires_at_ms: None,
    };
    let cases: [(&str, NewApiKey); 7] = [
        (
            "name",
            NewApiKey {
                name: "".into(),
                ..good()
            },
        ),
        (
            "name",
            NewApiKey {
                name: "k".repeat(101),
                ..good()
            },
        ),
        (
            "scopes",
            NewApiKey {
                scopes: ScopeSet::EMPTY,
                ..good()
            },
        ),
        (
            "expires_at_ms",
            NewApiKey {
                expires_at_ms: Some(1),
                ..good()
            },
        ),
        (
            "role.retailer_id",
            NewApiKey {
                role: Role::Buyer { retailer_id: 0 },
                ..good()
            },
        ),
        // Ids of parties that do not exist in the tenant.
        (
            "role.retailer_id",
            NewApiKey {
                role: Role::Buyer { retailer_id: 1 },
                ..good()
            },
        ),
        (
            "role.manufacturer_id",
            NewApiKey {
                role: Role::ManufacturerUser { manufacturer_id: 1 },
                ..good()
            },
        ),
    ];
    for (field, key) in cases {
        let result = w.engine.create_api_key(&admin.principal, key).await;
        assert!(is_invalid(&result, field), "{field}: {result:?}");
    }

    // A key may manage users and keys only with the admin scope and an admin role.
    let catalog_key = w
        .engine
        .create_api_key(&admin.principal, good())
        .await
        .unwrap();
    let catalog = w
        .engine
        .authenticate(catalog_key.secret.expose_secret())
        .unwrap();
    assert!(matches!(
        w.engine.create_api_key(&catalog, good()).await,
        Err(EngineError::Forbidden(_))
    ));
    assert!(matches!(
        w.engine
            .create_user(&catalog, new_user("x@acme.example", Role::Reviewer))
            .await,
        Err(EngineError::Forbidden(_))
    ));
    let admin_key = w
        .engine
        .create_api_key(
            &admin.principal,
            NewApiKey {
                scopes: ScopeSet::of(&[Scope::Admin]),
                ..good()
            },
        )
        .await
        .unwrap();
    let integration = w
        .engine
        .authenticate(admin_key.secret.expose_secret())
        .unwrap();
    let made = w
        .engine
        .create_user(&integration, new_user("hired@acme.example", Role::Reviewer))
        .await
        .unwrap();
    let entries = w
        .engine
        .audit_query(
            tenant,
            &AuditQuery {
                actor: Some(integration.actor.clone()),
                limit: 10,
                ..Default::default()
            },
        )
        .unwrap()
        .entries;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].resource, format!("user/{}", made.id));

    // A revoked key's principal, still held by a caller, is refused by the command itself.
    w.engine
        .revoke_api_key(&admin.principal, admin_key.key.id)
        .await
        .unwrap();
    let late = w
        .engine
        .create_user(&integration, new_user("late@acme.example", Role::Reviewer))
        .await;
    assert!(
        matches!(
            late,
            Err(EngineError::Rejected(Rejection::Forbidden { .. }))
        ),
        "{late:?}"
    );

    // Buyers do not create keys.
    let retailer_id = retailer(&w, tenant, "Corner Shop").await;
    w.engine
        .create_user(
            &admin.principal,
            new_user("buyer@acme.example", Role::Buyer { retailer_id }),
        )
        .await
        .unwrap();
    let buyer = w
        .engine
        .login(tenant, "buyer@acme.example", PASSWORD)
        .await
        .unwrap();
    assert!(matches!(
        w.engine.create_api_key(&buyer.principal, good()).await,
        Err(EngineError::Forbidden(_))
    ));
    assert!(matches!(
        w.engine.list_api_keys(&buyer.principal, None, 10),
        Err(EngineError::Forbidden(_))
    ));
    assert!(matches!(
        w.engine
            .revoke_api_key(&buyer.principal, catalog_key.key.id)
            .await,
        Err(EngineError::Forbidden(_))
    ));
}

/// Replaces the tenant id inside a token, keeping its secret part.
fn retarget(token: &str, to: TenantId) -> String {
    let (prefix, rest) = token.split_at(4);
    let (_, random) = rest.split_once('_').unwrap();
    format!("{prefix}{}_{random}", to.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_credentials_never_reach_another_tenant() {
    let w = open();
    let (a, a_admin) = tenant_with_admin(&w, "alpha").await;
    let (b, b_admin) = tenant_with_admin(&w, "bravo").await;
    // Same user ids in both tenants (per-tenant sequences), different people.
    assert_eq!(a_admin.principal_user_id(), b_admin.principal_user_id());
    let a_key = w
        .engine
        .create_api_key(
            &a_admin.principal,
            NewApiKey {
                name: "erp".into(),
                role: Role::TenantAdmin,
                scopes: ScopeSet::of(&[Scope::Admin]),
                expires_at_ms: None,
            },
        )
        .await
        .unwrap();

    // A's secrets with B's id: unknown in B's shard.
    for token in [a_admin.token.expose_secret(), a_key.secret.expose_secret()] {
        let forged = retarget(token, b);
        assert!(matches!(
            w.engine.authenticate(&forged),
            Err(EngineError::Unauthenticated)
        ));
        assert_eq!(w.engine.authenticate(token).unwrap().tenant, a);
    }
    assert!(matches!(
        w.engine
            .logout(&retarget(a_admin.token.expose_secret(), b))
            .await,
        Err(EngineError::Unauthenticated)
    ));
    // B's admin password does not sign in to A.
    let b_in_a = w.engine.login(a, "admin@bravo.example", PASSWORD).await;
    assert!(matches!(b_in_a, Err(EngineError::Unauthenticated)));

    // Everything A's principals read or change is A's: user 1 of A is A's admin, never B's.
    let a_principal = w
        .engine
        .authenticate(a_admin.token.expose_secret())
        .unwrap();
    let users = w.engine.list_users(&a_principal, None, 100).unwrap();
    assert!(
        users
            .items
            .iter()
            .all(|u| u.email.ends_with("@alpha.example"))
    );
    let one = w
        .engine
        .user(&a_principal, b_admin.principal_user_id())
        .unwrap()
        .unwrap();
    assert_eq!(one.email, "admin@alpha.example");
    let key_principal = w.engine.authenticate(a_key.secret.expose_secret()).unwrap();
    w.engine
        .create_user(
            &key_principal,
            new_user("only@alpha.example", Role::Reviewer),
        )
        .await
        .unwrap();
    assert!(matches!(
        w.engine.login(b, "only@alpha.example", PASSWORD).await,
        Err(EngineError::Unauthenticated)
    ));
    let b_users = w.engine.list_users(&b_admin.principal, None, 100).unwrap();
    assert_eq!(b_users.items.len(), 1);
    assert!(
        w.engine
            .list_api_keys(&b_admin.principal, None, 10)
            .unwrap()
            .items
            .is_empty()
    );
    // Revoking "all sessions of user 1" from A leaves B's user 1 signed in.
    w.engine
        .revoke_user_sessions(&a_principal, a_admin.principal_user_id())
        .await
        .unwrap();
    assert!(w.engine.authenticate(b_admin.token.expose_secret()).is_ok());
    assert!(matches!(
        w.engine.authenticate(a_admin.token.expose_secret()),
        Err(EngineError::Unauthenticated)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_commands_refuse_the_platform_tenant_and_platform_commands_other_tenants() {
    let w = open();
    let (tenant, _) = tenant_with_admin(&w, "acme").await;
    let on_platform = w
        .engine
        .storage()
        .execute(Command {
            tenant: TenantId(0),
            actor: Actor::Platform,
            at_ms: now_ms(),
            action: Action::Accounts(mercato_engine::accounts::AccountsAction::CreateUser(
                NewUserRecord {
                    email: "root@platform.example".into(),
                    name: "Root".into(),
                    role: Role::TenantAdmin,
                    password: hash_password(PASSWORD).await.unwrap(),
                },
            )),
        })
        .await;
    assert!(matches!(
        on_platform,
        Err(ExecuteError::Rejected(Rejection::Forbidden { .. }))
    ));
    let elsewhere = w
        .engine
        .storage()
        .execute(Command {
            tenant,
            actor: Actor::Platform,
            at_ms: now_ms(),
            action: register("elsewhere"),
        })
        .await;
    assert!(matches!(
        elsewhere,
        Err(ExecuteError::Rejected(Rejection::Forbidden { .. }))
    ));
    let by_user = w
        .engine
        .storage()
        .execute(Command {
            tenant: TenantId(0),
            actor: Actor::User(1),
            at_ms: now_ms(),
            action: register("byuser"),
        })
        .await;
    assert!(matches!(
        by_user,
        Err(ExecuteError::Rejected(Rejection::Forbidden { .. }))
    ));
}
