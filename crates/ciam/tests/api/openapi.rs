//! The served OpenAPI document matches the server: every documented
//! operation exists, every error code the server has is in it, and its
//! links lead to operations it has. (Schemathesis, run by `.ci/run`,
//! checks the rest: every request and answer against the schemas.)

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{Backend, TestApp, read};

crate::on_both_backends!(every_documented_operation_exists);

async fn every_documented_operation_exists(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app.client.get(app.url("/openapi.json")).send().await.expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let doc: Value = resp.json().await.expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");

    let documented: Vec<&str> = doc["components"]["schemas"]["ErrorBody"]["properties"]["error_code"]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for code in ciam_core::ErrorCode::ALL {
        assert!(documented.contains(&code.as_str()), "{code} is not in the OpenAPI document");
    }

    let paths = doc["paths"].as_object().expect("paths");
    let operation_ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().expect("path item").values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    let mut links = 0;
    for item in paths.values() {
        for operation in item.as_object().expect("path item").values() {
            for response in operation["responses"].as_object().into_iter().flat_map(|r| r.values()) {
                for link in response["links"].as_object().into_iter().flat_map(|l| l.values()) {
                    let target = link["operationId"].as_str().expect("operationId");
                    assert!(operation_ids.contains(&target), "a link leads to {target}, which is not documented");
                    links += 1;
                }
            }
        }
    }
    assert!(links >= 8, "{links}");
    assert_security(paths);

    let mut operations = 0;
    for (path, item) in paths {
        for (method, _) in item.as_object().expect("path item").iter().filter(|(k, _)| *k != "parameters") {
            let concrete = path.replace("{client_id}", "none").replace("{user_id}", "none").replace("{id}", "none");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let (status, body) =
                read(app.client.request(method.clone(), app.url(&concrete)).send().await.expect("request")).await;
            let code = body["error_code"].as_str().unwrap_or_default();
            assert!(
                code != "IDAAS.SDK.REQ.0005" && code != "IDAAS.SDK.REQ.0006",
                "{method} {path} is documented but the server does not serve it: {status} {body}"
            );
            assert!(!status.is_server_error(), "{method} {path}: {status}");
            operations += 1;
        }
    }
    assert!(operations >= 25, "{operations}");
}

/// Every admin operation asks for the admin token, userinfo for an access
/// token; the others ask for neither.
fn assert_security(paths: &serde_json::Map<String, Value>) {
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let scheme = operation["security"][0].as_object().and_then(|s| s.keys().next().cloned());
            let expected = match path.as_str() {
                p if p.starts_with("/api/v2/admin/") => Some("admin_token"),
                "/api/v1/oauth2/userinfo" => Some("access_token"),
                _ => None,
            };
            assert_eq!(scheme.as_deref(), expected, "{method} {path}");
        }
    }
}
