//! The served OpenAPI document matches the server: every documented
//! operation exists, and every error code the server has is in it.

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

    let documented: Vec<&str> = doc["components"]["schemas"]["Error"]["properties"]["error_code"]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for code in ciam_core::ErrorCode::ALL {
        assert!(documented.contains(&code.as_str()), "{code} is not in the OpenAPI document");
    }

    let paths = doc["paths"].as_object().expect("paths");
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
