//! Filling the demo tenant through the engine's write path, phase by phase, with a progress
//! bar per phase.
//!
//! Every record is written by an engine command (so it is in the change log and the audit log,
//! exactly as if the API had written it). Speed comes from keeping many commands in flight:
//! the shard writer applies whatever is pending in one transaction with one `fdatasync`
//! (group commit), so [`Pipeline`] keeps up to a bound of commands waiting instead of sending
//! them one after the other. Products go in `UpsertProducts` batches of
//! [`UPSERT_BATCH_MAX`] rows, the bulk path of the CSV import. Memory stays bounded: products
//! are generated one batch at a time from their index ([`data::product`]), and the later
//! phases read the catalog back page by page.

use super::DemoError;
use super::data::{self, LeafRef, ProductContext, TREE, kind};
use indicatif::{ProgressBar, ProgressStyle};
use mercato_engine::accounts::{AccountsAction, AccountsOutput, NewUserRecord, PasswordHash, Role};
use mercato_engine::catalog::{
    CatalogAction, CatalogOutput, CategoryInput, ManufacturerInput, PAGE_LIMIT_MAX, ProductQuery,
    UPSERT_BATCH_MAX,
};
use mercato_engine::inventory::StockAdjustmentInput;
use mercato_engine::money::{Currency, Money};
use mercato_engine::orders::{ApprovalInput, OrderLineInput, Party, PlaceOrder, ProductRef};
use mercato_engine::tables::{
    AdjustmentReason, InvoiceStatus, PaymentTerms, PriceTier, Product, ProductStatus,
    VerificationStatus,
};
use mercato_engine::{Action, Actor, CommandOutput, Engine, EngineError, TenantId};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

/// Small commands (a stock receipt, a price) in flight at once.
const COMMANDS_IN_FLIGHT_MAX: usize = 512;
/// Product batches in flight at once (each up to [`UPSERT_BATCH_MAX`] rows).
const PRODUCT_BATCHES_IN_FLIGHT_MAX: usize = 4;
/// Orders being placed and moved through their lifecycle at once (each a chain of commands).
const ORDERS_IN_FLIGHT_MAX: usize = 64;
/// Upper bound on the orders of the demo history.
pub const ORDERS_MAX: u64 = 3_000;
/// Lower bound on the orders of the demo history (for small catalogs).
pub const ORDERS_MIN: u64 = 100;
/// Price-list entries per customer group, at most (bounds the phase for huge catalogs).
const PRICE_LIST_ENTRIES_PER_GROUP_MAX: u64 = 10_000;
/// Share of active products a discounted customer group has its own price for.
const PRICE_LIST_SHARE: f64 = 0.08;
/// Random product ids tried for one order line before the line is dropped.
const PRODUCT_PICK_ATTEMPTS_MAX: usize = 40;
/// Orders of the demo buyer's company that exceed its approval threshold.
const LARGE_ORDERS: usize = 3;
/// The value the fill aims for per line of a large order, in cents.
const LARGE_ORDER_LINE_CENTS: i64 = 1_500_000;

/// How many orders a catalog of `products` gets: one per five products, within
/// [`ORDERS_MIN`]..=[`ORDERS_MAX`].
pub fn orders_for(products: u64) -> u64 {
    (products / 5).clamp(ORDERS_MIN, ORDERS_MAX)
}

/// A user the fill creates with a known password (one per role).
#[derive(Clone, Debug)]
pub struct KnownUser {
    pub role: Role,
    pub email: String,
    pub name: String,
    pub password: String,
}

/// What the fill needs from the caller.
pub struct FillPlan {
    pub tenant: TenantId,
    pub admin_user_id: u64,
    pub seed: u64,
    pub products: u64,
    /// Passwords of the manufacturer user, buyer, buyer-approver and reviewer to create.
    pub manufacturer_password: String,
    pub buyer_password: String,
    pub approver_password: String,
    pub reviewer_password: String,
}

/// The users created with known passwords, and their ids.
#[derive(Clone, Debug)]
pub struct CreatedUser {
    pub user: KnownUser,
    pub user_id: u64,
}

/// What the fill wrote.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FillSummary {
    pub manufacturers: u64,
    pub manufacturers_verified: u64,
    /// Verification documents uploaded (verified by the workers once the server runs).
    pub documents: u64,
    pub categories: u64,
    pub customer_groups: u64,
    pub retailers: u64,
    pub users: u64,
    pub products: u64,
    pub products_active: u64,
    pub price_list_entries: u64,
    pub warehouses: u64,
    pub stock_receipts: u64,
    pub orders: u64,
    /// Orders the engine refused (credit limit, stock): the fill moves on, as a buyer would.
    pub orders_refused: u64,
    pub orders_awaiting_approval: u64,
    pub suborder_transitions: u64,
    pub payments: u64,
    pub elapsed_ms: u64,
}

/// Runs tasks with at most `max` in flight, handing each result to a callback as it finishes.
/// The first failure stops everything (the remaining tasks are aborted when dropped).
struct Pipeline<T> {
    tasks: JoinSet<Result<T, DemoError>>,
    max: usize,
}

impl<T: Send + 'static> Pipeline<T> {
    fn new(max: usize) -> Self {
        Pipeline {
            tasks: JoinSet::new(),
            max: max.max(1),
        }
    }

    async fn push(
        &mut self,
        task: impl Future<Output = Result<T, DemoError>> + Send + 'static,
        done: &mut impl FnMut(T),
    ) -> Result<(), DemoError> {
        while self.tasks.len() >= self.max {
            self.next(done).await?;
        }
        self.tasks.spawn(task);
        Ok(())
    }

    /// Waits for one task; false when none is left.
    async fn next(&mut self, done: &mut impl FnMut(T)) -> Result<bool, DemoError> {
        match self.tasks.join_next().await {
            None => Ok(false),
            Some(joined) => {
                done(joined??);
                Ok(true)
            }
        }
    }

    async fn finish(mut self, done: &mut impl FnMut(T)) -> Result<(), DemoError> {
        while self.next(done).await? {}
        Ok(())
    }
}

/// One phase's progress bar on stderr (indicatif draws nothing when stderr is not a terminal)
/// and the line that reports the phase when it ends (printed in every case).
struct Phase {
    name: &'static str,
    bar: ProgressBar,
    started: Instant,
}

impl Phase {
    fn start(name: &'static str, len: u64) -> Phase {
        const TEMPLATE: &str =
            "{prefix:>16} [{wide_bar}] {pos}/{len} {per_sec:>12} eta {eta:>4} {msg}";
        let bar = ProgressBar::new(len);
        // The template is a constant; should it ever fail to parse, the default style works.
        if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(name);
        Phase {
            name,
            bar,
            started: Instant::now(),
        }
    }

    fn end(self, what: String) {
        self.bar.finish_and_clear();
        eprintln!(
            "{:>16}  {what} in {:.1} s",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn unexpected(output: impl std::fmt::Debug) -> DemoError {
    DemoError::Unexpected(format!("{output:?}"))
}

/// Everything the fill created that later phases refer to.
struct World {
    tenant: TenantId,
    admin: Actor,
    seed: u64,
    currency: Currency,
    /// By manufacturer index.
    manufacturer_ids: Vec<u64>,
    verified: BTreeSet<u64>,
    /// Leaf category ids by root, in [`data::leaves_of`] order.
    leaf_category_ids: Vec<Vec<u64>>,
    /// Customer group ids in [`data::CUSTOMER_GROUPS`] order.
    group_ids: Vec<u64>,
    /// By retailer index.
    retailers: Vec<RetailerRef>,
    /// Manufacturer id -> the user that fulfils its sub-orders.
    fulfilment_users: BTreeMap<u64, u64>,
    /// Highest product id written.
    product_id_max: u64,
}

#[derive(Clone, Copy, Debug)]
struct RetailerRef {
    id: u64,
    buyer_user_id: u64,
    terms: PaymentTerms,
}

/// Fills the tenant: parties, categories, users, products, price lists, stock and an order
/// history. Returns the users with known passwords (manufacturer user, buyer, buyer-approver,
/// reviewer) and what was written.
pub async fn fill(
    engine: Arc<Engine>,
    plan: FillPlan,
    mut after_users: impl FnMut(&[CreatedUser]) -> Result<(), DemoError>,
) -> Result<(Vec<CreatedUser>, FillSummary), DemoError> {
    let started = Instant::now();
    let mut summary = FillSummary::default();
    let currency = engine.catalog_settings(plan.tenant)?.currency;
    let mut world = World {
        tenant: plan.tenant,
        admin: Actor::User(plan.admin_user_id),
        seed: plan.seed,
        currency,
        manufacturer_ids: Vec::new(),
        verified: BTreeSet::new(),
        leaf_category_ids: Vec::new(),
        group_ids: Vec::new(),
        retailers: Vec::new(),
        fulfilment_users: BTreeMap::new(),
        product_id_max: 0,
    };
    manufacturers(&engine, &mut world, &mut summary).await?;
    documents(&engine, &world, &mut summary).await?;
    categories(&engine, &mut world, &mut summary).await?;
    retailers(&engine, &mut world, &mut summary).await?;
    let known = users(&engine, &mut world, &plan, &mut summary).await?;
    after_users(&known)?;
    products(&engine, &mut world, plan.products, &mut summary).await?;
    price_lists(&engine, &world, &mut summary).await?;
    stock(&engine, &world, &mut summary).await?;
    orders(&engine, &world, orders_for(plan.products), &mut summary).await?;
    large_orders(&engine, &world, &known, &mut summary).await?;
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok((known, summary))
}

async fn run_catalog(
    engine: &Engine,
    tenant: TenantId,
    actor: Actor,
    action: CatalogAction,
) -> Result<CatalogOutput, DemoError> {
    match engine.run(tenant, actor, Action::Catalog(action)).await? {
        CommandOutput::Catalog(output) => Ok(output),
        other => Err(unexpected(other)),
    }
}

async fn manufacturers(
    engine: &Arc<Engine>,
    world: &mut World,
    summary: &mut FillSummary,
) -> Result<(), DemoError> {
    let phase = Phase::start("manufacturers", data::MANUFACTURERS as u64);
    let mut ids = vec![0u64; data::MANUFACTURERS];
    let mut verified = BTreeSet::new();
    let mut pipeline = Pipeline::new(COMMANDS_IN_FLIGHT_MAX);
    let mut done = |(index, id, status): (usize, u64, VerificationStatus)| {
        ids[index] = id;
        if status == VerificationStatus::Verified {
            verified.insert(id);
        }
        phase.bar.inc(1);
    };
    for index in 0..data::MANUFACTURERS {
        let (engine, tenant, admin) = (engine.clone(), world.tenant, world.admin.clone());
        pipeline
            .push(
                async move {
                    let spec = data::manufacturer(index);
                    let input = ManufacturerInput {
                        name: spec.name.clone(),
                        country: spec.country,
                    };
                    let created = engine
                        .create_manufacturer(tenant, admin.clone(), input)
                        .await?;
                    engine
                        .set_manufacturer_verification(tenant, admin, created.id, spec.verification)
                        .await?;
                    Ok((index, created.id, spec.verification))
                },
                &mut done,
            )
            .await?;
    }
    pipeline.finish(&mut done).await?;
    summary.manufacturers = ids.len() as u64;
    summary.manufacturers_verified = verified.len() as u64;
    phase.end(format!(
        "{} manufacturers ({} verified, {} pending verification)",
        ids.len(),
        verified.len(),
        ids.len() - verified.len()
    ));
    world.manufacturer_ids = ids;
    world.verified = verified;
    Ok(())
}

/// Verification documents: every verified manufacturer has its registration and tax
/// certificate (text-layer PDFs the rules approve); each manufacturer waiting for verification
/// has its registration and a scanned tax certificate, which goes to the reviewers' queue.
async fn documents(
    engine: &Arc<Engine>,
    world: &World,
    summary: &mut FillSummary,
) -> Result<(), DemoError> {
    use mercato_engine::accounts::{Principal, ScopeSet};
    use mercato_engine::verification::rules::DocumentType;
    use mercato_engine::verification::samples;

    let phase = Phase::start("documents", 2 * world.manufacturer_ids.len() as u64);
    let admin = Principal {
        tenant: world.tenant,
        actor: world.admin.clone(),
        role: Some(Role::TenantAdmin),
        scopes: ScopeSet::ALL,
    };
    let today = (mercato_engine::now_ms() / 86_400_000) as i64;
    let mut uploaded = 0u64;
    for (index, &id) in world.manufacturer_ids.iter().enumerate() {
        let spec = data::manufacturer(index);
        let seed = world.seed.wrapping_add(index as u64);
        let sample =
            |doc_type| samples::sample_spec(seed, doc_type, &spec.name, spec.country.0, today);
        let registration = samples::pdf(&sample(DocumentType::BusinessRegistration));
        let (tax, tax_name) = if world.verified.contains(&id) {
            (
                samples::pdf(&sample(DocumentType::TaxCertificate)),
                "tax-certificate.pdf",
            )
        } else {
            (
                samples::png_scan(320, 200, seed),
                "tax-certificate-scan.png",
            )
        };
        for (doc_type, name, bytes) in [
            (
                DocumentType::BusinessRegistration,
                "register-extract.pdf",
                registration,
            ),
            (DocumentType::TaxCertificate, tax_name, tax),
        ] {
            engine
                .upload_document(&admin, id, doc_type, name, bytes)
                .await
                .map_err(|e| match e {
                    mercato_engine::verification::service::UploadError::Engine(e) => {
                        DemoError::Engine(e)
                    }
                    other => DemoError::Unexpected(other.to_string()),
                })?;
            uploaded += 1;
            phase.bar.inc(1);
        }
    }
    summary.documents = uploaded;
    phase.end(format!(
        "{uploaded} verification documents (scans of the pending manufacturers go to review)"
    ));
    Ok(())
}

async fn categories(
    engine: &Arc<Engine>,
    world: &mut World,
    summary: &mut FillSummary,
) -> Result<(), DemoError> {
    let total: usize = TREE
        .iter()
        .map(|r| 1 + r.branches.iter().map(|b| 1 + b.leaves.len()).sum::<usize>())
        .sum();
    let phase = Phase::start("categories", total as u64);
    let create = |parent: Option<u64>, name: &'static str| {
        let (engine, tenant, admin) = (engine.clone(), world.tenant, world.admin.clone());
        async move {
            let input = CategoryInput {
                parent,
                name: name.to_string(),
                slug: data::slugify(name),
            };
            Ok::<u64, DemoError>(engine.create_category(tenant, admin, input).await?.id)
        }
    };
    // Three waves (roots, branches, leaves): a child needs its parent's id.
    let mut root_ids = vec![0u64; TREE.len()];
    {
        let mut pipeline = Pipeline::new(COMMANDS_IN_FLIGHT_MAX);
        let mut done = |(r, id): (usize, u64)| {
            root_ids[r] = id;
            phase.bar.inc(1);
        };
        for (r, root) in TREE.iter().enumerate() {
            let task = create(None, root.name);
            pipeline
                .push(async move { Ok((r, task.await?)) }, &mut done)
                .await?;
        }
        pipeline.finish(&mut done).await?;
    }
    let mut branch_ids: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    {
        let mut pipeline = Pipeline::new(COMMANDS_IN_FLIGHT_MAX);
        let mut done = |(key, id): ((usize, usize), u64)| {
            branch_ids.insert(key, id);
            phase.bar.inc(1);
        };
        for (r, root) in TREE.iter().enumerate() {
            for (b, branch) in root.branches.iter().enumerate() {
                let task = create(Some(root_ids[r]), branch.name);
                pipeline
                    .push(async move { Ok(((r, b), task.await?)) }, &mut done)
                    .await?;
            }
        }
        pipeline.finish(&mut done).await?;
    }
    let mut leaf_ids: BTreeMap<(usize, usize, usize), u64> = BTreeMap::new();
    {
        let mut pipeline = Pipeline::new(COMMANDS_IN_FLIGHT_MAX);
        let mut done = |(key, id): ((usize, usize, usize), u64)| {
            leaf_ids.insert(key, id);
            phase.bar.inc(1);
        };
        for (r, root) in TREE.iter().enumerate() {
            for (b, branch) in root.branches.iter().enumerate() {
                let parent = branch_ids.get(&(r, b)).copied();
                for (l, leaf) in branch.leaves.iter().enumerate() {
                    let task = create(parent, leaf.name);
                    pipeline
                        .push(async move { Ok(((r, b, l), task.await?)) }, &mut done)
                        .await?;
                }
            }
        }
        pipeline.finish(&mut done).await?;
    }
    world.leaf_category_ids = (0..TREE.len())
        .map(|r| {
            data::leaves_of(r)
                .into_iter()
                .map(|LeafRef { root, branch, leaf }| {
                    leaf_ids.get(&(root, branch, leaf)).copied().unwrap_or(0)
                })
                .collect()
        })
        .collect();
    summary.categories = total as u64;
    phase.end(format!(
        "{total} categories ({} top-level, {} branches, {} leaves)",
        TREE.len(),
        branch_ids.len(),
        leaf_ids.len()
    ));
    Ok(())
}

async fn retailers(
    engine: &Arc<Engine>,
    world: &mut World,
    summary: &mut FillSummary,
) -> Result<(), DemoError> {
    let phase = Phase::start(
        "retailers",
        (data::CUSTOMER_GROUPS.len() + data::RETAILERS) as u64,
    );
    let mut group_ids = Vec::with_capacity(data::CUSTOMER_GROUPS.len());
    for (name, _) in data::CUSTOMER_GROUPS {
        let group = engine
            .create_customer_group(world.tenant, world.admin.clone(), name)
            .await?;
        group_ids.push(group.id);
        phase.bar.inc(1);
    }
    let mut retailers = vec![
        RetailerRef {
            id: 0,
            buyer_user_id: 0,
            terms: PaymentTerms::Prepaid,
        };
        data::RETAILERS
    ];
    let mut pipeline = Pipeline::new(COMMANDS_IN_FLIGHT_MAX);
    let mut done = |(index, id, terms): (usize, u64, PaymentTerms)| {
        retailers[index].id = id;
        retailers[index].terms = terms;
        phase.bar.inc(1);
    };
    for index in 0..data::RETAILERS {
        let input = data::retailer(world.seed, index, &group_ids, world.currency);
        let (engine, tenant, admin) = (engine.clone(), world.tenant, world.admin.clone());
        pipeline
            .push(
                async move {
                    let terms = input.payment_terms;
                    let created = engine.create_retailer(tenant, admin, input).await?;
                    Ok((index, created.id, terms))
                },
                &mut done,
            )
            .await?;
    }
    pipeline.finish(&mut done).await?;
    summary.customer_groups = group_ids.len() as u64;
    summary.retailers = retailers.len() as u64;
    phase.end(format!(
        "{} retailers in {} customer groups",
        retailers.len(),
        group_ids.len()
    ));
    world.group_ids = group_ids;
    world.retailers = retailers;
    Ok(())
}

async fn create_user(
    engine: &Engine,
    tenant: TenantId,
    admin: Actor,
    email: String,
    name: String,
    role: Role,
    password: PasswordHash,
) -> Result<u64, DemoError> {
    let action = AccountsAction::CreateUser(NewUserRecord {
        email,
        name,
        role,
        password,
    });
    match engine.run(tenant, admin, Action::Accounts(action)).await? {
        CommandOutput::Accounts(AccountsOutput::User(user)) => Ok(user.id),
        other => Err(unexpected(other)),
    }
}

/// A shared desk account of the order history.
enum Desk {
    Sales { manufacturer_id: u64 },
    Purchasing { retailer_index: usize },
}

/// One sign-in per role with a known password, plus a sales desk per manufacturer and a
/// purchasing desk per retailer (their password is random and known to nobody; they are the
/// actors of the order history). A password is hashed once per distinct password, not per
/// user: argon2 is deliberately slow.
async fn users(
    engine: &Arc<Engine>,
    world: &mut World,
    plan: &FillPlan,
    summary: &mut FillSummary,
) -> Result<Vec<CreatedUser>, DemoError> {
    let phase = Phase::start("users", (data::MANUFACTURERS + data::RETAILERS + 2) as u64);
    let manufacturer0 = data::manufacturer(0);
    let retailer0 = data::retailer(world.seed, 0, &world.group_ids, world.currency);
    let retailer0_domain = data::email_domain(&retailer0.name);
    let known = [
        KnownUser {
            role: Role::ManufacturerUser {
                manufacturer_id: world.manufacturer_ids[0],
            },
            email: format!("sales@{}", data::email_domain(&manufacturer0.name)),
            name: "Sam Okafor".into(),
            password: plan.manufacturer_password.clone(),
        },
        KnownUser {
            role: Role::Buyer {
                retailer_id: world.retailers[0].id,
            },
            email: format!("purchasing@{retailer0_domain}"),
            name: "Jamie Lindgren".into(),
            password: plan.buyer_password.clone(),
        },
        KnownUser {
            role: Role::BuyerApprover {
                retailer_id: world.retailers[0].id,
            },
            email: format!("approvals@{retailer0_domain}"),
            name: "Priya Raman".into(),
            password: plan.approver_password.clone(),
        },
        KnownUser {
            role: Role::Reviewer,
            email: format!("reviewer@{}", super::TENANT_EMAIL_DOMAIN),
            name: "Chris Dubois".into(),
            password: plan.reviewer_password.clone(),
        },
    ];
    let mut created = Vec::with_capacity(known.len());
    for user in known {
        let hash = mercato_engine::accounts::secret::hash_password(&user.password).await?;
        let user_id = create_user(
            engine,
            world.tenant,
            world.admin.clone(),
            user.email.clone(),
            user.name.clone(),
            user.role,
            hash,
        )
        .await?;
        created.push(CreatedUser { user, user_id });
        phase.bar.inc(1);
    }
    let unknown = data::password(&mut rand::rng(), 32);
    let desk_hash = mercato_engine::accounts::secret::hash_password(&unknown).await?;
    let mut fulfilment = BTreeMap::new();
    fulfilment.insert(world.manufacturer_ids[0], created[0].user_id);
    let mut buyers = vec![0u64; data::RETAILERS];
    buyers[0] = created[1].user_id;
    let mut pipeline = Pipeline::new(COMMANDS_IN_FLIGHT_MAX);
    let mut done = |(desk, user_id): (Desk, u64)| {
        match desk {
            Desk::Sales { manufacturer_id } => {
                fulfilment.insert(manufacturer_id, user_id);
            }
            Desk::Purchasing { retailer_index } => buyers[retailer_index] = user_id,
        }
        phase.bar.inc(1);
    };
    for (index, &manufacturer_id) in world.manufacturer_ids.iter().enumerate().skip(1) {
        let spec = data::manufacturer(index);
        let (engine, tenant, admin, hash) = (
            engine.clone(),
            world.tenant,
            world.admin.clone(),
            desk_hash.clone(),
        );
        pipeline
            .push(
                async move {
                    let email = format!("sales@{}", data::email_domain(&spec.name));
                    let name = format!("{} sales desk", spec.brand);
                    let role = Role::ManufacturerUser { manufacturer_id };
                    let id = create_user(&engine, tenant, admin, email, name, role, hash).await?;
                    Ok((Desk::Sales { manufacturer_id }, id))
                },
                &mut done,
            )
            .await?;
    }
    for retailer_index in 1..data::RETAILERS {
        let input = data::retailer(world.seed, retailer_index, &world.group_ids, world.currency);
        let retailer_id = world.retailers[retailer_index].id;
        let (engine, tenant, admin, hash) = (
            engine.clone(),
            world.tenant,
            world.admin.clone(),
            desk_hash.clone(),
        );
        pipeline
            .push(
                async move {
                    // The index keeps emails unique should two retailers share a name.
                    let email = format!(
                        "purchasing{retailer_index}@{}",
                        data::email_domain(&input.name)
                    );
                    let name = format!("{} purchasing", input.name);
                    let role = Role::Buyer { retailer_id };
                    let id = create_user(&engine, tenant, admin, email, name, role, hash).await?;
                    Ok((Desk::Purchasing { retailer_index }, id))
                },
                &mut done,
            )
            .await?;
    }
    pipeline.finish(&mut done).await?;
    for (index, retailer) in world.retailers.iter_mut().enumerate() {
        retailer.buyer_user_id = buyers[index];
    }
    world.fulfilment_users = fulfilment;
    // The tenant admin exists already; the four known users, the desks.
    summary.users = 1 + created.len() as u64 + (data::MANUFACTURERS + data::RETAILERS - 2) as u64;
    phase.end(format!(
        "{} users (one sign-in per role, a sales desk per manufacturer, a purchasing desk per retailer)",
        summary.users
    ));
    Ok(created)
}

async fn products(
    engine: &Arc<Engine>,
    world: &mut World,
    count: u64,
    summary: &mut FillSummary,
) -> Result<(), DemoError> {
    let phase = Phase::start("products", count);
    let context = Arc::new(OwnedProductContext {
        seed: world.seed,
        currency: world.currency,
        manufacturer_ids: world.manufacturer_ids.clone(),
        leaf_category_ids: world.leaf_category_ids.clone(),
    });
    let mut created = 0u64;
    let mut active = 0u64;
    let mut pipeline = Pipeline::new(PRODUCT_BATCHES_IN_FLIGHT_MAX);
    let mut done = |(rows, new, live): (u64, u64, u64)| {
        created += new;
        active += live;
        phase.bar.inc(rows);
    };
    let batch = UPSERT_BATCH_MAX as u64;
    let mut start = 0u64;
    while start < count {
        let end = (start + batch).min(count);
        let (engine, tenant, admin, context) = (
            engine.clone(),
            world.tenant,
            world.admin.clone(),
            context.clone(),
        );
        pipeline
            .push(
                async move {
                    let context = context.borrowed();
                    let rows: Vec<_> = (start..end).map(|i| data::product(&context, i)).collect();
                    let live = rows
                        .iter()
                        .filter(|r| r.status == Some(ProductStatus::Active))
                        .count() as u64;
                    let action = CatalogAction::UpsertProducts { rows };
                    match run_catalog(&engine, tenant, admin, action).await? {
                        CatalogOutput::Upserted { created, .. } => {
                            Ok((end - start, u64::from(created), live))
                        }
                        other => Err(unexpected(other)),
                    }
                },
                &mut done,
            )
            .await?;
        start = end;
    }
    pipeline.finish(&mut done).await?;
    summary.products = created;
    summary.products_active = active;
    // Products of a fresh tenant are numbered 1, 2, ... in creation order; the highest id is
    // read back rather than assumed.
    world.product_id_max = last_product_id(engine, world.tenant)?;
    phase.end(format!("{created} products ({active} active)"));
    Ok(())
}

/// [`ProductContext`] owning its vectors, to share with tasks.
struct OwnedProductContext {
    seed: u64,
    currency: Currency,
    manufacturer_ids: Vec<u64>,
    leaf_category_ids: Vec<Vec<u64>>,
}

impl OwnedProductContext {
    fn borrowed(&self) -> ProductContext<'_> {
        ProductContext {
            seed: self.seed,
            currency: self.currency,
            manufacturer_ids: &self.manufacturer_ids,
            leaf_category_ids: &self.leaf_category_ids,
        }
    }
}

/// The highest product id of the tenant (0 when it has none): a bounded binary search over
/// point reads, since ids are dense from 1.
fn last_product_id(engine: &Engine, tenant: TenantId) -> Result<u64, DemoError> {
    let exists = |id: u64| -> Result<bool, DemoError> { Ok(engine.product(tenant, id)?.is_some()) };
    if !exists(1)? {
        return Ok(0);
    }
    let (mut low, mut high) = (1u64, 2u64);
    while exists(high)? {
        low = high;
        high = high.saturating_mul(2);
    }
    // Invariant: `low` exists, `high` does not.
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if exists(middle)? {
            low = middle;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

/// Calls `visit` for every product of the tenant, a page at a time.
async fn for_each_product_page(
    engine: &Engine,
    tenant: TenantId,
    mut visit: impl AsyncFnMut(Vec<Product>) -> Result<(), DemoError>,
) -> Result<(), DemoError> {
    let mut after = None;
    loop {
        let page = engine.list_products(
            tenant,
            &ProductQuery {
                after,
                limit: PAGE_LIMIT_MAX,
                ..ProductQuery::default()
            },
        )?;
        let next = page.next_after;
        visit(page.items).await?;
        match next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}

fn scaled(money: Money, percent_off: i64) -> Money {
    Money::new(money.minor * (100 - percent_off) / 100, money.currency)
}

async fn price_lists(
    engine: &Arc<Engine>,
    world: &World,
    summary: &mut FillSummary,
) -> Result<(), DemoError> {
    let phase = Phase::start("price lists", world.product_id_max);
    let mut per_group = vec![0u64; world.group_ids.len()];
    let mut entries = 0u64;
    let mut pipeline = Pipeline::new(COMMANDS_IN_FLIGHT_MAX);
    let mut done = |()| entries += 1;
    for_each_product_page(engine, world.tenant, async |page| {
        for product in page {
            phase.bar.inc(1);
            if product.status != ProductStatus::Active {
                continue;
            }
            let mut rng = data::rng_for(world.seed, kind::PRICE_LIST, product.id);
            for (g, (_, percent_off)) in data::CUSTOMER_GROUPS.iter().enumerate() {
                if *percent_off == 0
                    || per_group[g] >= PRICE_LIST_ENTRIES_PER_GROUP_MAX
                    || !rng.random_bool(PRICE_LIST_SHARE)
                {
                    continue;
                }
                per_group[g] += 1;
                let unit_price = scaled(product.base_price, *percent_off);
                let tiers: Vec<PriceTier> = product
                    .tiers
                    .iter()
                    .map(|t| PriceTier {
                        min_qty: t.min_qty,
                        unit_price: scaled(t.unit_price, *percent_off),
                    })
                    .collect();
                let (engine, tenant, admin) = (engine.clone(), world.tenant, world.admin.clone());
                let (group_id, product_id) = (world.group_ids[g], product.id);
                pipeline
                    .push(
                        async move {
                            engine
                                .set_price_list_entry(
                                    tenant, admin, group_id, product_id, unit_price, tiers,
                                )
                                .await?;
                            Ok(())
                        },
                        &mut done,
                    )
                    .await?;
            }
        }
        Ok(())
    })
    .await?;
    pipeline.finish(&mut done).await?;
    summary.price_list_entries = entries;
    phase.end(format!(
        "{entries} price-list entries for {} discounted customer groups",
        data::CUSTOMER_GROUPS
            .iter()
            .filter(|(_, off)| *off > 0)
            .count()
    ));
    Ok(())
}

async fn stock(
    engine: &Arc<Engine>,
    world: &World,
    summary: &mut FillSummary,
) -> Result<(), DemoError> {
    let phase = Phase::start("stock", world.product_id_max);
    let mut warehouse_ids = Vec::with_capacity(data::WAREHOUSES.len());
    for (name, code) in data::WAREHOUSES {
        let warehouse = engine
            .create_warehouse(world.tenant, world.admin.clone(), name, code)
            .await?;
        warehouse_ids.push(warehouse.id);
    }
    let mut receipts = 0u64;
    let mut pipeline = Pipeline::new(COMMANDS_IN_FLIGHT_MAX);
    let mut done = |()| receipts += 1;
    for_each_product_page(engine, world.tenant, async |page| {
        for product in page {
            phase.bar.inc(1);
            if product.status == ProductStatus::Archived {
                continue;
            }
            let mut rng = data::rng_for(world.seed, kind::STOCK, product.id);
            let first = rng.random_range(0..warehouse_ids.len());
            let mut places = vec![(first, rng.random_range(400..=2_000u64))];
            if rng.random_bool(0.25) {
                let second =
                    (first + rng.random_range(1..warehouse_ids.len())) % warehouse_ids.len();
                places.push((second, rng.random_range(50..=400u64)));
            }
            for (w, minimums) in places {
                let delta = i64::try_from(u64::from(product.min_order_qty) * minimums)
                    .unwrap_or(i64::MAX)
                    .min(mercato_engine::inventory::STOCK_DELTA_MAX);
                let input = StockAdjustmentInput {
                    warehouse_id: warehouse_ids[w],
                    product_id: product.id,
                    delta,
                    reason: AdjustmentReason::Receipt,
                    note: Some("opening stock".into()),
                };
                let (engine, tenant, admin) = (engine.clone(), world.tenant, world.admin.clone());
                pipeline
                    .push(
                        async move {
                            engine.adjust_stock(tenant, admin, input).await?;
                            Ok(())
                        },
                        &mut done,
                    )
                    .await?;
            }
        }
        Ok(())
    })
    .await?;
    pipeline.finish(&mut done).await?;
    summary.warehouses = warehouse_ids.len() as u64;
    summary.stock_receipts = receipts;
    phase.end(format!(
        "{receipts} stock receipts in {} warehouses",
        warehouse_ids.len()
    ));
    Ok(())
}

/// An active product of a verified manufacturer, picked at random (`None` after
/// [`PRODUCT_PICK_ATTEMPTS_MAX`] misses).
fn pick_product(
    engine: &Engine,
    world: &OrderWorld,
    rng: &mut impl Rng,
    taken: &BTreeSet<u64>,
    accept: impl Fn(&Product) -> bool,
) -> Result<Option<Product>, DemoError> {
    if world.product_id_max == 0 {
        return Ok(None);
    }
    for _ in 0..PRODUCT_PICK_ATTEMPTS_MAX {
        let id = rng.random_range(1..=world.product_id_max);
        if taken.contains(&id) {
            continue;
        }
        if let Some(product) = engine.product(world.tenant, id)?
            && product.status == ProductStatus::Active
            && world.verified.contains(&product.manufacturer_id)
            && accept(&product)
        {
            return Ok(Some(product));
        }
    }
    Ok(None)
}

/// What order tasks share.
struct OrderWorld {
    tenant: TenantId,
    seed: u64,
    currency: Currency,
    admin: Actor,
    product_id_max: u64,
    verified: BTreeSet<u64>,
    retailers: Vec<RetailerRef>,
    fulfilment_users: BTreeMap<u64, u64>,
}

/// What one order's history added.
#[derive(Default)]
struct OrderOutcome {
    placed: u64,
    refused: u64,
    awaiting_approval: u64,
    transitions: u64,
    payments: u64,
}

async fn orders(
    engine: &Arc<Engine>,
    world: &World,
    count: u64,
    summary: &mut FillSummary,
) -> Result<(), DemoError> {
    let phase = Phase::start("orders", count);
    let shared = Arc::new(OrderWorld {
        tenant: world.tenant,
        seed: world.seed,
        currency: world.currency,
        admin: world.admin.clone(),
        product_id_max: world.product_id_max,
        verified: world.verified.clone(),
        retailers: world.retailers.clone(),
        fulfilment_users: world.fulfilment_users.clone(),
    });
    let mut total = OrderOutcome::default();
    let mut pipeline = Pipeline::new(ORDERS_IN_FLIGHT_MAX);
    let mut done = |o: OrderOutcome| {
        total.placed += o.placed;
        total.refused += o.refused;
        total.awaiting_approval += o.awaiting_approval;
        total.transitions += o.transitions;
        total.payments += o.payments;
        phase.bar.inc(1);
    };
    for index in 0..count {
        let (engine, shared) = (engine.clone(), shared.clone());
        pipeline
            .push(
                async move { order_history(&engine, &shared, index).await },
                &mut done,
            )
            .await?;
    }
    pipeline.finish(&mut done).await?;
    summary.orders += total.placed;
    summary.orders_refused += total.refused;
    summary.orders_awaiting_approval += total.awaiting_approval;
    summary.suborder_transitions += total.transitions;
    summary.payments += total.payments;
    phase.end(format!(
        "{} orders ({} refused by credit or stock checks), {} sub-order transitions, {} payments",
        total.placed, total.refused, total.transitions, total.payments
    ));
    Ok(())
}

/// Where the fill takes a sub-order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Placed,
    Confirmed,
    Shipped,
    Delivered,
    CancelledByBuyer,
    CancelledBySeller,
}

fn target(rng: &mut impl Rng) -> Target {
    match rng.random_range(0..100) {
        0..12 => Target::Placed,
        12..25 => Target::Confirmed,
        25..45 => Target::Shipped,
        45..90 => Target::Delivered,
        90..95 => Target::CancelledByBuyer,
        _ => Target::CancelledBySeller,
    }
}

/// Places one order (the retailer's purchasing desk, one to six lines at one to three times
/// the minimum quantity), moves each sub-order towards a random target state as its
/// manufacturer and retailer would, and records payments against the invoice.
async fn order_history(
    engine: &Engine,
    world: &OrderWorld,
    index: u64,
) -> Result<OrderOutcome, DemoError> {
    let mut outcome = OrderOutcome::default();
    let mut rng = data::rng_for(world.seed, kind::ORDER, index);
    // Retailer 0 is the demo buyer's company: its orders come from the demo buyer.
    let retailer = world.retailers[rng.random_range(0..world.retailers.len())];
    let mut lines = Vec::new();
    let mut taken = BTreeSet::new();
    for _ in 0..rng.random_range(1..=6) {
        let Some(product) = pick_product(engine, world, &mut rng, &taken, |_| true)? else {
            continue;
        };
        taken.insert(product.id);
        lines.push(OrderLineInput {
            product: ProductRef::Id(product.id),
            qty: product.min_order_qty * rng.random_range(1..=3),
        });
    }
    if lines.is_empty() {
        return Ok(outcome);
    }
    let buyer = Actor::User(retailer.buyer_user_id);
    let input = PlaceOrder {
        retailer_id: retailer.id,
        buyer_user_id: retailer.buyer_user_id,
        lines,
        po_number: rng
            .random_bool(0.6)
            .then(|| format!("PO-{}", 10_000 + index)),
        shipping_address_label: None,
        idempotency_key: None,
        request_hash: [0; 32],
    };
    let placed = match engine.place_order(world.tenant, buyer.clone(), input).await {
        Ok(placed) => placed.order,
        Err(EngineError::Rejected(_)) => {
            outcome.refused = 1;
            return Ok(outcome);
        }
        Err(e) => return Err(e.into()),
    };
    outcome.placed = 1;
    if placed.invoice.is_none() {
        // Above the retailer's approval threshold: it waits for a buyer-approver.
        outcome.awaiting_approval = 1;
        return Ok(outcome);
    }
    let retailer_party = Party::Retailer(retailer.id);
    for sub in &placed.suborders {
        let seller_id = world
            .fulfilment_users
            .get(&sub.manufacturer_id)
            .copied()
            .ok_or_else(|| {
                DemoError::Unexpected(format!("no user for manufacturer {}", sub.manufacturer_id))
            })?;
        let seller = Actor::User(seller_id);
        let (t, id, m) = (world.tenant, sub.id, sub.manufacturer_id);
        let goal = target(&mut rng);
        if goal == Target::CancelledByBuyer {
            let reason = Some("Ordered in error".to_string());
            engine
                .cancel_suborder(t, buyer.clone(), id, retailer_party, reason)
                .await?;
            outcome.transitions += 1;
            continue;
        }
        if goal == Target::Placed {
            continue;
        }
        engine.confirm_suborder(t, seller.clone(), id, m).await?;
        outcome.transitions += 1;
        if goal == Target::CancelledBySeller {
            let reason = Some("Discontinued by the manufacturer".to_string());
            engine
                .cancel_suborder(t, seller, id, Party::Manufacturer(m), reason)
                .await?;
            outcome.transitions += 1;
            continue;
        }
        if goal == Target::Confirmed {
            continue;
        }
        let tracking = Some(format!("1Z{:06}{:010}", m, sub.id));
        engine.ship_suborder(t, seller, id, m, tracking).await?;
        outcome.transitions += 1;
        if goal == Target::Delivered {
            engine
                .deliver_suborder(t, buyer.clone(), id, retailer_party)
                .await?;
            outcome.transitions += 1;
        }
    }
    let Some(invoice_id) = placed.invoice.map(|i| i.id) else {
        return Ok(outcome);
    };
    let Some(invoice) = engine.invoice(world.tenant, invoice_id)? else {
        return Ok(outcome);
    };
    let outstanding = invoice.outstanding().minor;
    if invoice.status != InvoiceStatus::Open || outstanding <= 0 {
        return Ok(outcome);
    }
    // Prepaid retailers pay up front; net-terms retailers mostly pay in full, some in part.
    let amount = match (retailer.terms, rng.random_range(0..100)) {
        (PaymentTerms::Prepaid, _) => outstanding,
        (_, 0..60) => outstanding,
        (_, 60..75) => (outstanding / 2).max(1),
        _ => 0,
    };
    if amount > 0 {
        engine
            .record_payment(
                world.tenant,
                world.admin.clone(),
                invoice_id,
                Money::new(amount, world.currency),
                &format!("SEPA-{:08}", invoice_id),
            )
            .await?;
        outcome.payments = 1;
    }
    Ok(outcome)
}

/// Orders of the demo buyer's company above its approval threshold: one approved by the
/// buyer-approver, the others left waiting for them.
async fn large_orders(
    engine: &Arc<Engine>,
    world: &World,
    known: &[CreatedUser],
    summary: &mut FillSummary,
) -> Result<(), DemoError> {
    let phase = Phase::start("approvals", LARGE_ORDERS as u64);
    let find = |wanted: fn(&Role) -> bool| {
        known
            .iter()
            .find(|u| wanted(&u.user.role))
            .map(|u| u.user_id)
            .ok_or_else(|| DemoError::Unexpected("a known user is missing".into()))
    };
    let buyer_id = find(|r| matches!(r, Role::Buyer { .. }))?;
    let approver_id = find(|r| matches!(r, Role::BuyerApprover { .. }))?;
    let retailer_id = world.retailers[0].id;
    let order_world = OrderWorld {
        tenant: world.tenant,
        seed: world.seed,
        currency: world.currency,
        admin: world.admin.clone(),
        product_id_max: world.product_id_max,
        verified: world.verified.clone(),
        retailers: world.retailers.clone(),
        fulfilment_users: world.fulfilment_users.clone(),
    };
    let mut rng = data::rng_for(world.seed, kind::ORDER, u64::MAX);
    let (mut approved, mut waiting) = (0u64, 0u64);
    for n in 0..LARGE_ORDERS {
        let mut lines = Vec::new();
        let mut taken = BTreeSet::new();
        for _ in 0..5 {
            let picked = pick_product(engine, &order_world, &mut rng, &taken, |p| {
                p.base_price.minor > 0
            })?;
            let Some(product) = picked else { continue };
            taken.insert(product.id);
            let pack = u64::from(product.case_pack.max(1));
            let packs = (LARGE_ORDER_LINE_CENTS as u64)
                .div_ceil(product.base_price.minor as u64 * pack)
                .max(1);
            let qty = (packs * pack).max(u64::from(product.min_order_qty));
            let available = engine.product_stock(world.tenant, product.id)?.available;
            if qty > available {
                continue;
            }
            lines.push(OrderLineInput {
                product: ProductRef::Id(product.id),
                qty: u32::try_from(qty).unwrap_or(u32::MAX),
            });
        }
        if lines.is_empty() {
            continue;
        }
        let input = PlaceOrder {
            retailer_id,
            buyer_user_id: buyer_id,
            lines,
            po_number: Some(format!("PO-SEASONAL-{}", n + 1)),
            shipping_address_label: None,
            idempotency_key: None,
            request_hash: [0; 32],
        };
        let placed = match engine
            .place_order(world.tenant, Actor::User(buyer_id), input)
            .await
        {
            Ok(placed) => placed.order,
            Err(EngineError::Rejected(_)) => {
                summary.orders_refused += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        summary.orders += 1;
        phase.bar.inc(1);
        if placed.invoice.is_some() {
            continue;
        }
        if approved == 0 {
            let approval = ApprovalInput {
                order_id: placed.order.id,
                retailer_id,
                approver_user_id: approver_id,
                note: Some("Approved for the seasonal promotion".into()),
            };
            engine
                .approve_order(world.tenant, Actor::User(approver_id), approval)
                .await?;
            approved += 1;
        } else {
            waiting += 1;
        }
    }
    summary.orders_awaiting_approval += waiting;
    phase.end(format!(
        "large orders of the demo buyer: {approved} approved, {waiting} awaiting approval"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_count_follows_the_catalog_within_bounds() {
        assert_eq!(orders_for(0), ORDERS_MIN);
        assert_eq!(orders_for(2_000), 400);
        assert_eq!(orders_for(20_000), ORDERS_MAX);
        assert_eq!(orders_for(1_000_000), ORDERS_MAX);
    }
}
