//! The API's own documentation: `/openapi.json` (OpenAPI 3.1, generated from the handlers and
//! types by utoipa: a route cannot exist without its entry) and `/docs`, a human-readable page
//! rendered on the server from the same document (no scripts, nothing fetched from elsewhere).

use crate::app::AppState;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use std::fmt::Write as _;
use std::sync::Arc;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, Ref, RefOr};

/// Fills in what no handler says: title, version, description and the bearer scheme.
pub fn finish_document(mut doc: OpenApi) -> OpenApi {
    doc.info.title = "Mercato API".to_owned();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.info.description = Some(
        "REST/JSON API of the Mercato B2B wholesale marketplace. Authenticate with \
         `Authorization: Bearer <token>` (a session token from `POST /v1/auth/login`, an API \
         key, or the platform token for `/v1/admin`). Errors are `application/problem+json` \
         with a stable `code`. Lists are cursor-paginated (`limit`, `cursor`, `fields`)."
            .to_owned(),
    );
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    document_common_errors(&mut doc);
    doc
}

/// A problem+json response with `description`.
fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/problem+json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

/// Adds the errors any `/v1` operation can answer, whatever its handler says, unless the
/// handler documents them already: 401 when it takes a credential, 413 when it takes a body,
/// and 429 (per-credential rate limit, with `Retry-After`), 500 and 503 everywhere (the
/// middleware produces them, not the handlers). The `/docs` page lists them too.
fn document_common_errors(doc: &mut OpenApi) {
    let unauthenticated = problem_response("No valid credential").build();
    let too_large = problem_response("The request body exceeds the configured limit").build();
    let retry_after = HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        ))
        .description(Some("Whole seconds to wait before retrying"))
        .build();
    let rate_limited = problem_response("This credential exceeded its request rate")
        .header("Retry-After", retry_after.clone())
        .build();
    let internal = problem_response("Internal server error").build();
    let unavailable =
        problem_response("Not ready, shutting down, overloaded or out of time for this request")
            .build();
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/v1/") {
            continue;
        }
        for operation in operations_mut(item) {
            let authenticated = operation
                .security
                .as_ref()
                .is_some_and(|requirements| !requirements.is_empty());
            let has_body = operation.request_body.is_some();
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, response: &Response| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::T(response.clone()));
            };
            if authenticated {
                add("401", &unauthenticated);
            }
            if has_body {
                add("413", &too_large);
            }
            add("429", &rate_limited);
            add("500", &internal);
            add("503", &unavailable);
            // A 429 the handler documents itself (a login guard) carries Retry-After too.
            if let Some(RefOr::T(response)) = responses.get_mut("429") {
                response
                    .headers
                    .entry("Retry-After".to_owned())
                    .or_insert_with(|| RefOr::T(retry_after.clone()));
            }
        }
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.patch.as_mut(),
        item.delete.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// `/openapi.json` and `/docs` for `doc`, rendered once.
pub fn router(doc: &OpenApi) -> Router<AppState> {
    let json: Arc<str> = doc
        .to_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        .into();
    let page: Arc<str> = render_page(doc).into();
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    let mut response = json.to_string().into_response();
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    response
                }
            }),
        )
        .route(
            "/docs",
            get(move || {
                let page = page.clone();
                async move { Html(page.to_string()).into_response() }
            }),
        )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn operations(item: &PathItem) -> Vec<(&'static str, &Operation)> {
    [
        ("GET", &item.get),
        ("POST", &item.post),
        ("PUT", &item.put),
        ("PATCH", &item.patch),
        ("DELETE", &item.delete),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_ref().map(|op| (method, op)))
    .collect()
}

/// The HTML page: every operation with its summary, parameters and responses.
pub fn render_page(doc: &OpenApi) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         code{{background:#f3f3f3;padding:0 .2em}}h3{{margin-bottom:.2rem}}\
         .m{{display:inline-block;min-width:4.5rem;font-weight:bold}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}}</style>\
         </head><body><h1>{title} {version}</h1><p>{description}</p>\
         <p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1).</p>",
        title = escape(&doc.info.title),
        version = escape(&doc.info.version),
        description = escape(doc.info.description.as_deref().unwrap_or("")),
    );
    for (path, item) in &doc.paths.paths {
        for (method, op) in operations(item) {
            let _ = write!(
                html,
                "<h3><span class=\"m\">{method}</span><code>{}</code></h3>",
                escape(path)
            );
            if let Some(summary) = &op.summary {
                let _ = write!(html, "<p>{}</p>", escape(summary));
            }
            if let Some(description) = &op.description {
                let _ = write!(html, "<p>{}</p>", escape(description));
            }
            if let Some(parameters) = op.parameters.as_ref().filter(|p| !p.is_empty()) {
                html.push_str("<table><tr><th>parameter</th><th>in</th><th>about</th></tr>");
                for p in parameters.iter().filter_map(|p| match p {
                    RefOr::T(p) => Some(p),
                    RefOr::Ref(_) => None,
                }) {
                    let location = serde_json::to_value(&p.parameter_in)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let _ = write!(
                        html,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        escape(&p.name),
                        escape(&location),
                        escape(p.description.as_deref().unwrap_or(""))
                    );
                }
                html.push_str("</table>");
            }
            html.push_str("<ul>");
            for (status, response) in &op.responses.responses {
                let description = match response {
                    RefOr::T(r) => r.description.clone(),
                    RefOr::Ref(r) => r.ref_location.clone(),
                };
                let _ = write!(
                    html,
                    "<li><b>{}</b> {}</li>",
                    escape(status),
                    escape(&description)
                );
            }
            html.push_str("</ul>");
        }
    }
    html.push_str("</body></html>");
    html
}
