//! What every `/v1` handler shares: the credential extractor, engine-error mapping, list
//! parameters and pages, cached JSON reads (ETag, `If-None-Match`, `Cache-Control`, `fields=`),
//! and the per-credential rate limiter.
//!
//! A handler's shape is always the same:
//!
//! ```text
//! async fn get_thing(State(state), Auth(principal), Path(id), headers) -> Result<Response, ApiError> {
//!     require(&principal, Permission::ReadCatalog)?;
//!     let thing = state.engine.thing(principal.tenant, id)?.ok_or_else(|| not_found("thing", id))?;
//!     Ok(read_json(&headers, &thing, None)?)
//! }
//! ```
//!
//! The tenant always comes from the credential (`principal.tenant`), never from the path, the
//! query or the body, and a resource of another tenant is indistinguishable from a missing one
//! (404), because the engine only ever reads the caller's tenant.

pub mod auth;
pub mod errors;
pub mod login_guard;
pub mod paging;
pub mod ratelimit;
pub mod respond;

pub use auth::{Auth, PlatformAuth, require};
pub use errors::not_found;
pub use paging::{
    FieldSet, ListParams, ListResponse, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, SortParam,
};
pub use respond::{
    CACHE_CONTROL_PRIVATE, blocking, created, no_content, ok_json, read_json, read_list,
};
