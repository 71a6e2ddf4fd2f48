//! `mercato demo`: a data directory filled with a realistic synthetic marketplace, then served.
//!
//! [`prepare`] opens the data directory through the engine. A directory that already holds
//! the demo tenant (slug [`TENANT_SLUG`]) and its [`CREDENTIALS_FILE_NAME`] is reused as it
//! is; otherwise the platform is initialised, the tenant created with its admin, and
//! [`fill::fill`] writes the marketplace through the engine's write path: manufacturers, the
//! category tree, customer groups, retailers, one user per role, products, price lists,
//! warehouses with stock, and an order history with invoices and payments. The passwords are
//! random per directory and kept, with everything else one needs to sign in, in the
//! credentials file (mode 0600), so that a reused directory prints them again. The caller
//! ([`crate::cli`]) then serves the directory like `mercato serve` and prints
//! [`write_announcement`].
//!
//! The fill is not resumable: a directory whose fill was interrupted is refused with a
//! message saying to remove it.

pub mod data;
pub mod fill;

use crate::config::Config;
use crate::storage_admin;
use mercato_engine::accounts::{Principal, Role};
use mercato_engine::platform::NewTenant;
use mercato_engine::{Engine, EngineError, TenantId};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Slug of the demo tenant (what people type at sign-in).
pub const TENANT_SLUG: &str = "demo";
/// Display name of the demo tenant.
pub const TENANT_NAME: &str = "Demo Wholesale";
/// Email domain of the demo tenant's own staff.
pub const TENANT_EMAIL_DOMAIN: &str = "demo-wholesale.example";
/// The file, inside the data directory, that keeps the demo's credentials.
pub const CREDENTIALS_FILE_NAME: &str = "demo-credentials.json";
/// Upper bound on the credentials file read back, in bytes.
pub const CREDENTIALS_BYTES_MAX: u64 = 1 << 20;
/// Data directory of `mercato demo` unless `--data-dir` says otherwise. Deliberately not the
/// configured `data_dir`: a demo never fills a production directory by accident.
pub const DATA_DIR_DEFAULT: &str = "mercato-demo-data";
/// Products of the demo unless `--products` says otherwise.
pub const PRODUCTS_DEFAULT: u64 = 20_000;
/// Bounds of `--products`.
pub const PRODUCTS_MIN: u64 = 10;
pub const PRODUCTS_MAX: u64 = 10_000_000;
/// Seed of the synthetic data unless `--seed` says otherwise.
pub const SEED_DEFAULT: u64 = 1;
/// Length of the generated passwords.
pub const PASSWORD_CHARS: usize = 20;
/// Version of the credentials file layout.
pub const CREDENTIALS_FORMAT: u32 = 1;

/// Why the demo could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("a demo task failed unexpectedly: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a readable demo credentials file: {reason}")]
    Credentials { path: PathBuf, reason: String },
    /// The data directory cannot be used for the demo; the text says why and what to do.
    #[error("{0}")]
    Refused(String),
    #[error("internal error: unexpected engine answer: {0}")]
    Unexpected(String),
}

/// What `mercato demo` was asked for.
#[derive(Clone, Copy, Debug)]
pub struct DemoOptions {
    pub products: u64,
    pub seed: u64,
}

/// The credentials file: everything needed to use the demo. Written with mode 0600.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoCredentials {
    pub format: u32,
    pub tenant: TenantCredentials,
    /// The platform administrator's token; `None` when the platform had a token before the
    /// demo (set by `mercato init`, which showed it once).
    pub platform_token: Option<String>,
    /// One user per role: tenant admin, manufacturer user, buyer, buyer-approver, reviewer.
    pub users: Vec<UserCredentials>,
    pub fill: FillRecord,
    /// Where the demo was last served.
    pub url: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantCredentials {
    pub id: u64,
    pub slug: String,
    pub name: String,
}

/// A user with a known password, and a bearer token from the last start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserCredentials {
    /// The role's wire name, as `GET /v1/me` reports it: `tenant_admin`,
    /// `manufacturer_user`, `buyer`, `buyer_approver`, `reviewer`.
    pub role: String,
    pub email: String,
    pub password: String,
    pub user_id: u64,
    pub manufacturer_id: Option<u64>,
    pub retailer_id: Option<u64>,
    pub token: Option<String>,
    pub token_expires_at_ms: Option<u64>,
}

/// How the directory was filled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillRecord {
    pub seed: u64,
    pub products_requested: u64,
    /// False until every phase finished.
    pub complete: bool,
    pub summary: fill::FillSummary,
}

impl DemoCredentials {
    /// The user of a role (wire name), if the file has one.
    pub fn user(&self, role: &str) -> Option<&UserCredentials> {
        self.users.iter().find(|u| u.role == role)
    }
}

/// The wire name of a role (see [`UserCredentials::role`]).
pub fn role_name(role: &Role) -> &'static str {
    match role {
        Role::TenantAdmin => "tenant_admin",
        Role::ManufacturerUser { .. } => "manufacturer_user",
        Role::Buyer { .. } => "buyer",
        Role::BuyerApprover { .. } => "buyer_approver",
        Role::Reviewer => "reviewer",
    }
}

fn role_label(role: &str) -> &str {
    match role {
        "tenant_admin" => "tenant admin",
        "manufacturer_user" => "manufacturer user",
        "buyer_approver" => "buyer-approver",
        other => other,
    }
}

fn user_credentials(role: &Role, email: &str, password: &str, user_id: u64) -> UserCredentials {
    let (manufacturer_id, retailer_id) = match role {
        Role::ManufacturerUser { manufacturer_id } => (Some(*manufacturer_id), None),
        Role::Buyer { retailer_id } | Role::BuyerApprover { retailer_id } => {
            (None, Some(*retailer_id))
        }
        Role::TenantAdmin | Role::Reviewer => (None, None),
    };
    UserCredentials {
        role: role_name(role).to_string(),
        email: email.to_string(),
        password: password.to_string(),
        user_id,
        manufacturer_id,
        retailer_id,
        token: None,
        token_expires_at_ms: None,
    }
}

/// The credentials file of a data directory.
pub fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join(CREDENTIALS_FILE_NAME)
}

/// Reads a credentials file (at most [`CREDENTIALS_BYTES_MAX`] bytes).
pub fn read_credentials(path: &Path) -> Result<DemoCredentials, DemoError> {
    let file_error = |source| DemoError::File {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(file_error)?;
    let len = file.metadata().map_err(file_error)?.len();
    if len > CREDENTIALS_BYTES_MAX {
        return Err(DemoError::Credentials {
            path: path.to_owned(),
            reason: format!("larger than {CREDENTIALS_BYTES_MAX} bytes"),
        });
    }
    let credentials: DemoCredentials = serde_json::from_reader(std::io::BufReader::new(file))
        .map_err(|e| DemoError::Credentials {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if credentials.format != CREDENTIALS_FORMAT {
        return Err(DemoError::Credentials {
            path: path.to_owned(),
            reason: format!(
                "format {} (this build reads format {CREDENTIALS_FORMAT})",
                credentials.format
            ),
        });
    }
    Ok(credentials)
}

/// Writes the credentials file readable by its owner only (0600 on Unix), atomically: a
/// temporary file beside it, synced, then renamed over it.
pub fn write_credentials(path: &Path, credentials: &DemoCredentials) -> Result<(), DemoError> {
    let temporary = path.with_extension("json.tmp");
    let file_error = |source| DemoError::File {
        path: temporary.clone(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).map_err(file_error)?;
    // `mode` applies only to a file the call creates; a leftover temporary keeps its mode.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(file_error)?;
    }
    let text = serde_json::to_string_pretty(credentials)
        .map_err(|e| DemoError::Unexpected(format!("credentials do not serialize: {e}")))?;
    file.write_all(text.as_bytes()).map_err(file_error)?;
    file.write_all(b"\n").map_err(file_error)?;
    file.sync_all().map_err(file_error)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(|source| DemoError::File {
        path: path.to_owned(),
        source,
    })
}

/// A prepared demo directory, closed again, ready to be served.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub credentials: DemoCredentials,
    pub credentials_path: PathBuf,
    /// True when the directory held the demo already and nothing was written but sessions.
    pub reused: bool,
}

/// Fills the configured data directory with the demo marketplace, or reuses it when it holds
/// one; signs every demo user in (fresh bearer tokens); closes the engine.
pub async fn prepare(config: &Config, options: DemoOptions) -> Result<Prepared, DemoError> {
    let engine_config = storage_admin::engine_config(config);
    let engine = Arc::new(tokio::task::spawn_blocking(move || Engine::open(engine_config)).await??);
    let prepared = prepare_open(&engine, &config.data_dir, options).await;
    let closing = engine.clone();
    let closed = tokio::task::spawn_blocking(move || closing.shutdown()).await?;
    let prepared = prepared?;
    closed?;
    Ok(prepared)
}

async fn prepare_open(
    engine: &Arc<Engine>,
    data_dir: &Path,
    options: DemoOptions,
) -> Result<Prepared, DemoError> {
    let path = credentials_path(data_dir);
    let existing = engine.platform_tenant_by_slug(TENANT_SLUG)?;
    let (mut credentials, reused) = match existing {
        Some(entry) => {
            let remove = format!(
                "remove {} and run `mercato demo` again, or pass another --data-dir",
                data_dir.display()
            );
            if !path.is_file() {
                return Err(DemoError::Refused(format!(
                    "{} holds a tenant `{TENANT_SLUG}` but no {CREDENTIALS_FILE_NAME}: it was not made by `mercato demo`, or its credentials were removed; {remove}",
                    data_dir.display()
                )));
            }
            let credentials = read_credentials(&path)?;
            if credentials.tenant.id != entry.id || !credentials.fill.complete {
                return Err(DemoError::Refused(format!(
                    "the demo fill of {} did not complete (it was interrupted); {remove}",
                    data_dir.display()
                )));
            }
            eprintln!(
                "Reusing the demo in {} ({} products, seed {}); --products and --seed apply to new directories only.",
                data_dir.display(),
                credentials.fill.summary.products,
                credentials.fill.seed
            );
            (credentials, true)
        }
        None => (create(engine, &path, options).await?, false),
    };
    sign_in(engine, &mut credentials).await?;
    write_credentials(&path, &credentials)?;
    Ok(Prepared {
        credentials,
        credentials_path: path,
        reused,
    })
}

/// Creates the platform token (if the platform has none), the tenant and its admin, then fills
/// it. The credentials file is written as soon as the users exist, marked incomplete until the
/// last phase ends.
async fn create(
    engine: &Arc<Engine>,
    path: &Path,
    options: DemoOptions,
) -> Result<DemoCredentials, DemoError> {
    eprintln!(
        "Filling a demo marketplace with {} products (seed {}) ...",
        options.products, options.seed
    );
    let platform_token = engine
        .init_platform()
        .await?
        .map(|token| token.into_string());
    // Drawn before any await: the thread-local generator stays on this thread.
    let [admin_password, manufacturer, buyer, approver, reviewer] = {
        let mut rng = rand::rng();
        std::array::from_fn(|_| data::password(&mut rng, PASSWORD_CHARS))
    };
    let admin_email = format!("admin@{TENANT_EMAIL_DOMAIN}");
    let created = engine
        .platform_create_tenant(
            &Principal::platform(),
            NewTenant {
                slug: TENANT_SLUG.into(),
                name: TENANT_NAME.into(),
                admin_name: "Alex Novak".into(),
                admin_email: admin_email.clone(),
                admin_password: admin_password.clone(),
            },
        )
        .await?;
    let mut credentials = DemoCredentials {
        format: CREDENTIALS_FORMAT,
        tenant: TenantCredentials {
            id: created.tenant.0,
            slug: TENANT_SLUG.into(),
            name: TENANT_NAME.into(),
        },
        platform_token,
        users: vec![user_credentials(
            &Role::TenantAdmin,
            &created.admin.email,
            &admin_password,
            created.admin.id,
        )],
        fill: FillRecord {
            seed: options.seed,
            products_requested: options.products,
            complete: false,
            summary: fill::FillSummary::default(),
        },
        url: None,
    };
    let plan = fill::FillPlan {
        tenant: created.tenant,
        admin_user_id: created.admin.id,
        seed: options.seed,
        products: options.products,
        manufacturer_password: manufacturer,
        buyer_password: buyer,
        approver_password: approver,
        reviewer_password: reviewer,
    };
    let (_, summary) = fill::fill(engine.clone(), plan, |known| {
        for user in known {
            credentials.users.push(user_credentials(
                &user.user.role,
                &user.user.email,
                &user.user.password,
                user.user_id,
            ));
        }
        write_credentials(path, &credentials)
    })
    .await?;
    credentials.fill.complete = true;
    credentials.fill.summary = summary;
    write_credentials(path, &credentials)?;
    eprintln!(
        "Filled in {:.1} s.",
        credentials.fill.summary.elapsed_ms as f64 / 1000.0
    );
    Ok(credentials)
}

/// Signs every demo user in, so the announcement can show ready bearer tokens.
async fn sign_in(engine: &Engine, credentials: &mut DemoCredentials) -> Result<(), DemoError> {
    let tenant = TenantId(credentials.tenant.id);
    for user in &mut credentials.users {
        let session = engine.login(tenant, &user.email, &user.password).await?;
        user.token = Some(session.token.into_string());
        user.token_expires_at_ms = Some(session.expires_at_ms);
    }
    Ok(())
}

/// Records where the demo is served in its credentials file.
pub fn record_url(prepared: &mut Prepared, url: &str) -> Result<(), DemoError> {
    prepared.credentials.url = Some(url.to_string());
    write_credentials(&prepared.credentials_path, &prepared.credentials)
}

/// What `mercato demo` prints once it listens: where the API is, the platform token, and how
/// each role signs in.
pub fn write_announcement(
    out: &mut impl Write,
    url: &str,
    prepared: &Prepared,
) -> std::io::Result<()> {
    let c = &prepared.credentials;
    let s = &c.fill.summary;
    writeln!(out)?;
    writeln!(
        out,
        "Mercato demo marketplace \"{}\" (tenant `{}`, id {}){}",
        c.tenant.name,
        c.tenant.slug,
        c.tenant.id,
        if prepared.reused { ", reused" } else { "" }
    )?;
    writeln!(
        out,
        "  {} products ({} active) from {} manufacturers in {} categories; {} retailers; {} orders",
        s.products, s.products_active, s.manufacturers, s.categories, s.retailers, s.orders
    )?;
    writeln!(out, "  API:      {url}/v1")?;
    writeln!(out, "  Docs:     {url}/docs")?;
    writeln!(out, "  OpenAPI:  {url}/openapi.json")?;
    match &c.platform_token {
        Some(token) => writeln!(out, "  Platform token (/v1/admin/...): {token}")?,
        None => writeln!(
            out,
            "  Platform token: set by `mercato init` before the demo and not shown again; `mercato init --rotate-platform-token` replaces it"
        )?,
    }
    writeln!(out)?;
    writeln!(
        out,
        "Sign in with POST {url}/v1/auth/login {{\"tenant\": \"{}\", \"email\": ..., \"password\": ...}}, or use a token below:",
        c.tenant.slug
    )?;
    for user in &c.users {
        writeln!(
            out,
            "  {:<18} {:<44} password {}",
            role_label(&user.role),
            user.email,
            user.password
        )?;
        if let Some(token) = &user.token {
            writeln!(out, "  {:<18} Authorization: Bearer {token}", "")?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "Saved in {} (readable by you only).",
        prepared.credentials_path.display()
    )?;
    writeln!(
        out,
        "Load test: mercato loadgen --url {url} --credentials {} --mix mixed",
        prepared.credentials_path.display()
    )?;
    writeln!(out, "Stop with Ctrl-C.")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DemoCredentials {
        DemoCredentials {
            format: CREDENTIALS_FORMAT,
            tenant: TenantCredentials {
                id: 1,
                slug: TENANT_SLUG.into(),
                name: TENANT_NAME.into(),
            },
            platform_token: Some("mcp_x".into()),
            users: vec![user_credentials(
                &Role::Buyer { retailer_id: 3 },
                "b@example.com",
                "pw",
                9,
            )],
            fill: FillRecord {
                seed: 1,
                products_requested: 10,
                complete: true,
                summary: fill::FillSummary::default(),
            },
            url: None,
        }
    }

    #[test]
    fn credentials_round_trip_with_owner_only_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = credentials_path(dir.path());
        write_credentials(&path, &sample()).expect("write");
        // Written twice: the second write replaces the first.
        write_credentials(&path, &sample()).expect("write again");
        assert_eq!(read_credentials(&path).expect("read"), sample());
        assert_eq!(sample().user("buyer").and_then(|u| u.retailer_id), Some(3));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_foreign_or_oversized_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = credentials_path(dir.path());
        std::fs::write(&path, "{\"format\": 1}").expect("write");
        assert!(matches!(
            read_credentials(&path),
            Err(DemoError::Credentials { .. })
        ));
        std::fs::write(&path, vec![b' '; CREDENTIALS_BYTES_MAX as usize + 1]).expect("write");
        match read_credentials(&path) {
            Err(DemoError::Credentials { reason, .. }) => assert!(reason.contains("larger")),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
