//! Serving the API's description: `/openapi.json`, and Swagger UI at `/docs` from assets compiled
//! into the binary.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::extract::Path;
use crate::AppState;

pub async fn openapi(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], s.openapi()).into_response()
}

const UI_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>coupond API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.onload = () => { window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#ui" }); };</script>
</body></html>"##;

pub async fn ui() -> Html<&'static str> {
    Html(UI_PAGE)
}

pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "swagger-ui-bundle.js" => (
            include_bytes!("../../vendor/swagger-ui/swagger-ui-bundle.js"),
            "text/javascript",
        ),
        "swagger-ui.css" => (include_bytes!("../../vendor/swagger-ui/swagger-ui.css"), "text/css"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
