//! Response helpers: cached JSON reads with ETag and `If-None-Match`, created/empty answers for
//! writes, and running longer engine work on the blocking pool.
//!
//! Caching policy (the roadmap's): tenant data is private to its credential, so reads answer
//! `Cache-Control: private, no-cache` (a client may keep a copy but must revalidate it, which
//! the weak ETag makes a cheap 304) and writes answer `no-store`.

use crate::api::paging::{FieldSet, ListResponse};
use crate::app::AppState;
use crate::problem::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mercato_engine::{Engine, EngineError};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// `Cache-Control` of reads of tenant data.
pub const CACHE_CONTROL_PRIVATE: &str = "private, no-cache";
/// `Cache-Control` of write responses.
pub const CACHE_CONTROL_NO_STORE: &str = "no-store";

/// A weak ETag of a response body: the first 16 bytes of its SHA-256, in hex. Weak because
/// compression may change the bytes on the wire but not the representation.
pub fn etag_of(body: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(36);
    tag.push_str("W/\"");
    for byte in &digest[..16] {
        tag.push(char::from(HEX[usize::from(byte >> 4)]));
        tag.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    tag.push('"');
    tag
}

/// First capacity of a response body buffer: most single-resource bodies fit, so they are
/// written without growing (and copying) the buffer several times.
const BODY_CAPACITY_INITIAL: usize = 4096;

/// `value` as compact JSON.
fn to_json(value: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::with_capacity(BODY_CAPACITY_INITIAL);
    serde_json::to_writer(&mut body, value).map_err(ApiError::internal)?;
    Ok(body)
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let weak = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = weak(etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|candidate| candidate.trim() == "*" || weak(candidate) == ours)
}

fn json_bytes<T: Serialize>(
    value: &T,
    fields: Option<&FieldSet>,
    list: bool,
) -> Result<Vec<u8>, ApiError> {
    match fields {
        None => to_json(value),
        Some(fields) => {
            let mut json = serde_json::to_value(value).map_err(ApiError::internal)?;
            if list {
                if let Some(serde_json::Value::Array(items)) = json.get_mut("items") {
                    items.iter_mut().for_each(|item| fields.apply(item));
                }
            } else {
                fields.apply(&mut json);
            }
            to_json(&json)
        }
    }
}

fn cached_response(headers: &HeaderMap, body: Vec<u8>) -> Response {
    let etag = etag_of(&body);
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("W/\"\""));
    let mut response = if not_modified(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(body));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag_value);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL_PRIVATE),
    );
    response
}

/// A read of one resource: 200 with the JSON body (only `fields`, when given), its ETag and
/// `Cache-Control: private, no-cache`; or 304 when `If-None-Match` names the ETag.
pub fn read_json<T: Serialize>(
    headers: &HeaderMap,
    value: &T,
    fields: Option<&FieldSet>,
) -> Result<Response, ApiError> {
    Ok(cached_response(headers, json_bytes(value, fields, false)?))
}

/// A read of a list page: as [`read_json`], with `fields` applied to each item.
pub fn read_list<T: Serialize>(
    headers: &HeaderMap,
    page: &ListResponse<T>,
    fields: Option<&FieldSet>,
) -> Result<Response, ApiError> {
    Ok(cached_response(headers, json_bytes(page, fields, true)?))
}

fn write_response<T: Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let body = to_json(value)?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL_NO_STORE),
    );
    Ok(response)
}

/// 201 Created with the new resource.
pub fn created<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    write_response(StatusCode::CREATED, value)
}

/// 200 with the result of a write (not cacheable).
pub fn ok_json<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    write_response(StatusCode::OK, value)
}

/// 204 No Content.
pub fn no_content() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL_NO_STORE),
    );
    response
}

/// Runs engine work that may take more than microseconds (scans of many rows, CSV, audit
/// queries) on the blocking pool, so it never stalls the async workers.
pub async fn blocking<T, F>(state: &AppState, work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
{
    let engine = state.engine.clone();
    tokio::task::spawn_blocking(move || work(&engine))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn etag_is_the_hex_of_the_first_half_of_the_sha256() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad
        assert_eq!(etag_of(b"abc"), "W/\"ba7816bf8f01cfea414140de5dae2223\"");
    }

    #[test]
    fn etag_matches_in_any_form() {
        let body = br#"{"id":1}"#;
        let etag = etag_of(body);
        assert!(etag.starts_with("W/\"") && etag.len() == 36, "{etag}");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&etag).expect("value"),
        );
        assert!(not_modified(&headers, &etag));
        let strong = etag.trim_start_matches("W/").to_owned();
        headers.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"other\", {strong}")).expect("value"),
        );
        assert!(not_modified(&headers, &etag));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"nope\""));
        assert!(!not_modified(&headers, &etag));
    }

    #[test]
    fn read_answers_304_for_its_own_etag() {
        let value = json!({"id": 1, "name": "bolt"});
        let first = read_json(&HeaderMap::new(), &value, None).expect("response");
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(
            first.headers().get(header::CACHE_CONTROL),
            Some(&HeaderValue::from_static(CACHE_CONTROL_PRIVATE))
        );
        let etag = first.headers().get(header::ETAG).expect("etag").clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag.clone());
        let second = read_json(&headers, &value, None).expect("response");
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(second.headers().get(header::ETAG), Some(&etag));
        let changed = read_json(&headers, &json!({"id": 1, "name": "nut"}), None).expect("r");
        assert_eq!(changed.status(), StatusCode::OK);
    }

    #[test]
    fn fields_apply_to_list_items() {
        let page = ListResponse::new(vec![json!({"id": 1, "name": "a", "x": 2})], Some(1));
        let fields = FieldSet::parse("id").expect("fields");
        let bytes = json_bytes(&page, Some(&fields), true).expect("bytes");
        let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(value, json!({"items": [{"id": 1}], "next_cursor": "c1"}));
    }
}
