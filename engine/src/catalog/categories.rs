//! The category tree: create, rename, move (never under its own subtree, never deeper than
//! [`CATEGORY_DEPTH_MAX`]), paths and descendants.
//!
//! The tree is kept as each category's `parent` plus the index [`CATEGORY_CHILDREN`]
//! `(parent or 0, child)`, so children are one prefix scan. Each category stores its depth;
//! a move rewrites the depths of the moved subtree (bounded by [`CATEGORIES_MAX`]).

use super::validate::{self, CATEGORIES_MAX, CATEGORY_DEPTH_MAX};
use super::{
    CatalogAction, CatalogOutput, CategoryInput, Page, checked, list_by_id, not_found, unexpected,
};
use crate::command::{Applied, Ctx, Rejection, reject};
use crate::tables::{
    CATEGORIES, CATEGORY_BY_SLUG, CATEGORY_CHILDREN, Category, IdRef, IndexMark, SEQUENCES,
};
use crate::{Actor, Engine, EngineError, TenantId};
use mercato_storage::{StorageError, TenantReads};

/// The id standing for "no parent" in [`CATEGORY_CHILDREN`] keys (ids start at 1).
const ROOT: u64 = 0;

/// One step of a category's path from the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryPathItem {
    pub id: u64,
    pub name: String,
    pub slug: String,
}

fn existing(ctx: &Ctx<'_, '_>, id: u64) -> Applied<Category> {
    match ctx.tx.get(&CATEGORIES, &id)? {
        Some(c) => Ok(c),
        None => reject(not_found("category", id)),
    }
}

fn claim_slug(ctx: &mut Ctx<'_, '_>, slug: &str, id: u64) -> Applied<()> {
    let key = slug.to_string();
    match ctx.tx.get(&CATEGORY_BY_SLUG, &key)? {
        Some(IdRef(owner)) if owner != id => reject(Rejection::Conflict {
            code: "slug_taken",
            detail: format!("slug {slug:?} is used by category {owner}"),
        }),
        _ => Ok(ctx.tx.put(&CATEGORY_BY_SLUG, &key, &IdRef(id))?),
    }
}

pub(super) fn apply_create(ctx: &mut Ctx<'_, '_>, input: &CategoryInput) -> Applied<CatalogOutput> {
    let name = checked(validate::name("name", &input.name))?;
    let slug = checked(validate::slug(&input.slug))?;
    // Categories are never deleted, so the sequence is the count.
    let count = ctx
        .tx
        .get(&SEQUENCES, &"category".to_string())?
        .map_or(0, |s| s.0);
    if count >= CATEGORIES_MAX {
        return reject(Rejection::Conflict {
            code: "category_limit",
            detail: format!("a catalog holds at most {CATEGORIES_MAX} categories"),
        });
    }
    let depth = match input.parent {
        None => 0,
        Some(parent) => {
            let Some(p) = ctx.tx.get(&CATEGORIES, &parent)? else {
                return reject(Rejection::InvalidField {
                    field: "parent".into(),
                    reason: format!("category {parent} does not exist"),
                });
            };
            if p.depth + 1 >= CATEGORY_DEPTH_MAX {
                return reject(too_deep());
            }
            p.depth + 1
        }
    };
    let id = ctx.next_id("category")?;
    claim_slug(ctx, &slug, id)?;
    let category = Category {
        id,
        parent: input.parent,
        name,
        slug,
        depth,
        created_at_ms: ctx.at_ms,
        updated_at_ms: ctx.at_ms,
    };
    ctx.tx.put(&CATEGORIES, &id, &category)?;
    ctx.tx.put(
        &CATEGORY_CHILDREN,
        &(input.parent.unwrap_or(ROOT), id),
        &IndexMark,
    )?;
    ctx.audit("category.create", format!("category/{id}"));
    Ok(CatalogOutput::Category(category))
}

fn too_deep() -> Rejection {
    Rejection::InvalidField {
        field: "parent".into(),
        reason: format!("the category tree is at most {CATEGORY_DEPTH_MAX} levels deep"),
    }
}

pub(super) fn apply_rename(
    ctx: &mut Ctx<'_, '_>,
    id: u64,
    name: &str,
    slug: &str,
) -> Applied<CatalogOutput> {
    let name = checked(validate::name("name", name))?;
    let slug = checked(validate::slug(slug))?;
    let mut category = existing(ctx, id)?;
    if category.slug != slug {
        claim_slug(ctx, &slug, id)?;
        ctx.tx.delete(&CATEGORY_BY_SLUG, &category.slug)?;
    }
    category.name = name;
    category.slug = slug;
    category.updated_at_ms = ctx.at_ms;
    ctx.tx.put(&CATEGORIES, &id, &category)?;
    ctx.audit("category.rename", format!("category/{id}"));
    Ok(CatalogOutput::Category(category))
}

pub(super) fn apply_move(
    ctx: &mut Ctx<'_, '_>,
    id: u64,
    parent: Option<u64>,
) -> Applied<CatalogOutput> {
    let mut category = existing(ctx, id)?;
    let new_depth = match parent {
        None => 0,
        Some(p) => {
            let Some(new_parent) = ctx.tx.get(&CATEGORIES, &p)? else {
                return reject(Rejection::InvalidField {
                    field: "parent".into(),
                    reason: format!("category {p} does not exist"),
                });
            };
            // The new parent must not be the category or one of its descendants: walk up from
            // it (at most CATEGORY_DEPTH_MAX steps) looking for the category.
            let mut cursor = Some(new_parent.clone());
            let mut steps = 0;
            while let Some(c) = cursor {
                if c.id == id {
                    return reject(Rejection::Conflict {
                        code: "category_cycle",
                        detail: format!(
                            "category {id} cannot move under {p}, which is itself or one of its descendants"
                        ),
                    });
                }
                steps += 1;
                cursor = match c.parent {
                    Some(up) if steps <= CATEGORY_DEPTH_MAX => ctx.tx.get(&CATEGORIES, &up)?,
                    _ => None,
                };
            }
            new_parent.depth + 1
        }
    };
    let subtree = subtree_with_depths(&*ctx.tx, id)?;
    let height = subtree.iter().map(|(_, d)| *d).max().unwrap_or(0);
    if u16::from(new_depth) + u16::from(height) >= u16::from(CATEGORY_DEPTH_MAX) {
        return reject(too_deep());
    }
    if category.parent != parent {
        ctx.tx
            .delete(&CATEGORY_CHILDREN, &(category.parent.unwrap_or(ROOT), id))?;
        ctx.tx.put(
            &CATEGORY_CHILDREN,
            &(parent.unwrap_or(ROOT), id),
            &IndexMark,
        )?;
    }
    category.parent = parent;
    category.depth = new_depth;
    category.updated_at_ms = ctx.at_ms;
    ctx.tx.put(&CATEGORIES, &id, &category)?;
    for (descendant, relative) in subtree.into_iter().filter(|(d, _)| *d != id) {
        if let Some(mut d) = ctx.tx.get(&CATEGORIES, &descendant)? {
            let depth = new_depth + relative;
            if d.depth != depth {
                d.depth = depth;
                ctx.tx.put(&CATEGORIES, &descendant, &d)?;
            }
        }
    }
    ctx.audit("category.move", format!("category/{id}"));
    Ok(CatalogOutput::Category(category))
}

/// Children ids of `parent` (`ROOT` for roots), all of them, in id order.
fn child_ids(read: &impl TenantReads, parent: u64) -> Result<Vec<u64>, StorageError> {
    let mut out = Vec::new();
    let mut after: Option<(u64, u64)> = None;
    loop {
        let rows = read.scan(&CATEGORY_CHILDREN, &parent, after.as_ref(), 1000)?;
        let Some(((_, last), _)) = rows.last() else {
            return Ok(out);
        };
        after = Some((parent, *last));
        out.extend(rows.iter().map(|((_, child), _)| *child));
        if out.len() as u64 > CATEGORIES_MAX {
            return Ok(out);
        }
    }
}

/// The category and every descendant with its depth relative to the category (breadth
/// first). Bounded by [`CATEGORIES_MAX`] and [`CATEGORY_DEPTH_MAX`] levels.
fn subtree_with_depths(read: &impl TenantReads, id: u64) -> Result<Vec<(u64, u8)>, StorageError> {
    let mut out = vec![(id, 0u8)];
    let mut next = 0;
    while next < out.len() && (out.len() as u64) <= CATEGORIES_MAX {
        let (node, depth) = out[next];
        next += 1;
        if depth + 1 >= CATEGORY_DEPTH_MAX {
            continue;
        }
        for child in child_ids(read, node)? {
            out.push((child, depth + 1));
        }
    }
    Ok(out)
}

/// A category by id.
pub fn category(read: &impl TenantReads, id: u64) -> Result<Option<Category>, StorageError> {
    read.get(&CATEGORIES, &id)
}

/// All categories in id order.
pub fn list_categories(
    read: &impl TenantReads,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<Category>, StorageError> {
    list_by_id(read, &CATEGORIES, after, limit)
}

/// The direct children of a category (`None`: the roots), in id order.
pub fn category_children(
    read: &impl TenantReads,
    parent: Option<u64>,
    after: Option<u64>,
    limit: usize,
) -> Result<Page<Category>, StorageError> {
    let parent = parent.unwrap_or(ROOT);
    let limit = validate::page_limit(limit);
    let after_key = after.map(|a| (parent, a));
    let mut rows = read.scan(&CATEGORY_CHILDREN, &parent, after_key.as_ref(), limit + 1)?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let mut items = Vec::with_capacity(rows.len());
    for ((_, id), _) in &rows {
        if let Some(c) = read.get(&CATEGORIES, id)? {
            items.push(c);
        }
    }
    Ok(Page {
        items,
        next_after: if more {
            rows.last().map(|((_, id), _)| *id)
        } else {
            None
        },
    })
}

/// The path from the root to the category (root first, the category last); `None` if the
/// category does not exist.
pub fn category_path(
    read: &impl TenantReads,
    id: u64,
) -> Result<Option<Vec<CategoryPathItem>>, StorageError> {
    let mut path = Vec::new();
    let mut cursor = Some(id);
    while let Some(current) = cursor {
        let Some(c) = read.get(&CATEGORIES, &current)? else {
            if path.is_empty() {
                return Ok(None);
            }
            // A missing ancestor (never written by this module): the path found so far.
            break;
        };
        cursor = c.parent;
        path.push(CategoryPathItem {
            id: c.id,
            name: c.name,
            slug: c.slug,
        });
        if path.len() >= usize::from(CATEGORY_DEPTH_MAX) {
            break;
        }
    }
    path.reverse();
    Ok(Some(path))
}

/// Every descendant of a category (children, their children, ...), not the category itself,
/// breadth first. Empty for a leaf or a missing category.
pub fn category_descendants(read: &impl TenantReads, id: u64) -> Result<Vec<u64>, StorageError> {
    Ok(subtree_with_depths(read, id)?
        .into_iter()
        .skip(1)
        .map(|(d, _)| d)
        .collect())
}

impl Engine {
    async fn category_action(
        &self,
        tenant: TenantId,
        actor: Actor,
        action: CatalogAction,
    ) -> Result<Category, EngineError> {
        match self.run_catalog(tenant, actor, action).await? {
            CatalogOutput::Category(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    /// Creates a category (under `input.parent`, or as a root).
    pub async fn create_category(
        &self,
        tenant: TenantId,
        actor: Actor,
        input: CategoryInput,
    ) -> Result<Category, EngineError> {
        self.category_action(tenant, actor, CatalogAction::CreateCategory(input))
            .await
    }

    /// Renames a category and sets its slug.
    pub async fn rename_category(
        &self,
        tenant: TenantId,
        actor: Actor,
        id: u64,
        name: &str,
        slug: &str,
    ) -> Result<Category, EngineError> {
        let action = CatalogAction::RenameCategory {
            id,
            name: name.to_string(),
            slug: slug.to_string(),
        };
        self.category_action(tenant, actor, action).await
    }

    /// Moves a category and its subtree under `parent` (`None`: to the root).
    pub async fn move_category(
        &self,
        tenant: TenantId,
        actor: Actor,
        id: u64,
        parent: Option<u64>,
    ) -> Result<Category, EngineError> {
        self.category_action(tenant, actor, CatalogAction::MoveCategory { id, parent })
            .await
    }

    /// A category by id.
    pub fn category(&self, tenant: TenantId, id: u64) -> Result<Option<Category>, EngineError> {
        Ok(category(&self.storage.read(tenant)?, id)?)
    }

    /// A category by slug.
    pub fn category_by_slug(
        &self,
        tenant: TenantId,
        slug: &str,
    ) -> Result<Option<Category>, EngineError> {
        let read = self.storage.read(tenant)?;
        match read.get(&CATEGORY_BY_SLUG, &slug.to_string())? {
            Some(IdRef(id)) => Ok(category(&read, id)?),
            None => Ok(None),
        }
    }

    /// All categories in id order.
    pub fn list_categories(
        &self,
        tenant: TenantId,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<Category>, EngineError> {
        Ok(list_categories(&self.storage.read(tenant)?, after, limit)?)
    }

    /// Direct children of a category (`None`: the roots).
    pub fn category_children(
        &self,
        tenant: TenantId,
        parent: Option<u64>,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Page<Category>, EngineError> {
        Ok(category_children(
            &self.storage.read(tenant)?,
            parent,
            after,
            limit,
        )?)
    }

    /// The path from the root to a category; `None` if it does not exist.
    pub fn category_path(
        &self,
        tenant: TenantId,
        id: u64,
    ) -> Result<Option<Vec<CategoryPathItem>>, EngineError> {
        Ok(category_path(&self.storage.read(tenant)?, id)?)
    }

    /// Every descendant of a category (not the category itself).
    pub fn category_descendants(&self, tenant: TenantId, id: u64) -> Result<Vec<u64>, EngineError> {
        Ok(category_descendants(&self.storage.read(tenant)?, id)?)
    }
}
