//! The HTTP contract of docs/openapi.yaml where schemathesis (tests/schemathesis)
//! found the gateway off it: every wrong method is 405 with `Allow`, admin paths
//! included; an account secret that cannot be sent upstream is refused.

use serde_json::json;

use crate::harness::*;

/// Found by schemathesis: a wrong method on an admin path was 404 `IMG_NOT_FOUND`
/// (the path exists), and no 405 carried the `Allow` header RFC 9110 requires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_405_with_allow_on_every_path() {
    let s = Setup::simple().await;
    let (admin_auth, client_auth) = (format!("Bearer {ADMIN_KEY}"), format!("Bearer {API_KEY}"));
    let admin = [("authorization", admin_auth.as_str())];
    let client = [("authorization", client_auth.as_str())];
    for (method, path, allow, headers) in [
        ("TRACE", "/admin/accounts", "GET, POST", &admin),
        ("PUT", "/admin/accounts/a1", "DELETE", &admin),
        ("GET", "/admin/accounts/a1/disable", "POST", &admin),
        ("DELETE", "/admin/accounts/a1/enable", "POST", &admin),
        ("PATCH", "/admin/keys", "GET, POST", &admin),
        ("GET", "/admin/keys/some%20label", "DELETE, PATCH", &admin),
        ("POST", "/admin/store/backup", "GET", &admin),
        ("POST", "/admin/cache", "GET, DELETE", &admin),
        ("DELETE", "/admin/components/", "GET", &admin),
        ("TRACE", "/healthz", "GET", &client),
        ("POST", "/v1/models", "GET", &client),
        ("GET", "/v1/images/generations", "POST", &client),
    ] {
        let r = request(method, &format!("{}{path}", s.gw.url), headers, Vec::new()).await;
        let e = r.error(405, "IMG_METHOD_NOT_ALLOWED");
        assert!(
            e["message"].as_str().unwrap().contains(allow),
            "{method} {path}: {e}"
        );
        assert_eq!(r.header("allow").as_deref(), Some(allow), "{method} {path}");
    }
    // An admin path that does not exist is still 404, and a wrong method still needs the admin key.
    let r = request(
        "GET",
        &format!("{}/admin/nothing", s.gw.url),
        &admin,
        Vec::new(),
    )
    .await;
    r.error(404, "IMG_NOT_FOUND");
    let r = request(
        "PUT",
        &format!("{}/admin/accounts", s.gw.url),
        &client,
        Vec::new(),
    )
    .await;
    r.error(401, "IMG_UNAUTHORIZED");
}

/// Found by schemathesis: `POST /admin/accounts` took a secret with control
/// characters; every call on that account then failed while building the
/// `x-goog-api-key` header, reported as 502 IMG_NETWORK_ERROR ("the connection to
/// the upstream broke") and never disabled. Such a secret is now a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_secret_that_cannot_be_a_header_is_refused() {
    let s = Setup::simple().await;
    let url = format!("{}/admin/accounts", s.gw.url);
    let auth = format!("Bearer {ADMIN_KEY}");
    let headers = [("authorization", auth.as_str())];
    for secret in ["key\u{7}bell", "line\nbreak", "del\u{7f}", "nul\u{0}"] {
        let body = json!({"label": "junk", "secret": secret})
            .to_string()
            .into_bytes();
        let r = request("POST", &url, &headers, body).await;
        let e = r.error(400, "IMG_INVALID_REQUEST");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("control characters"),
            "{e}"
        );
    }
    // Surrounding whitespace is fine (trimmed), and the account works.
    let body = json!({"label": "spaced", "secret": "  bb-gemini-key-1\n"})
        .to_string()
        .into_bytes();
    let r = request("POST", &url, &headers, body).await;
    assert_eq!(r.status, 201, "{}", r.brief());
    let r =
        s.gw.generate(json!({"prompt": "a key with spaces around it"}))
            .await;
    r.ok();
    let (accounts, _) = s.gw.list_accounts().await;
    assert_eq!(accounts.len(), 2, "{accounts:?}");
}
