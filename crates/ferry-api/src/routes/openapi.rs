//! The OpenAPI 3.1 document of ferry's endpoints, rendered from the route table's [`RouteDoc`]s.

use super::RouteDoc;
use serde_json::json;

/// Builds the OpenAPI 3.1 document from the route table.
pub(crate) fn openapi(docs: &[RouteDoc], public_url: &str) -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for doc in docs {
        let params: Vec<serde_json::Value> = doc
            .path
            .split(['/', '(', ')'])
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut operation = json!({
            "summary": doc.summary,
            "tags": [doc.tag],
            "parameters": params,
            "responses": { "200": { "description": "OK" }, "default": { "description": "OData error envelope" } },
        });
        if doc.secured {
            operation["security"] = json!([{ "bearer": [] }]);
            operation["responses"]["401"] = json!({ "description": "Missing or invalid bearer token" });
            operation["responses"]["403"] = json!({ "description": "The app's roles do not allow this" });
        }
        let entry = paths.entry(doc.path.to_string()).or_insert_with(|| json!({}));
        entry[doc.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ferry",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Data-integration server: OData entity API, OAuth 2.0 and operations endpoints.",
        },
        "servers": [{ "url": public_url }],
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
            },
        },
        "paths": paths,
    })
}
