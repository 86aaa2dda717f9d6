//! The policy-lifecycle test guests in a real gateway: loaded through `[components]`,
//! `safety_extra_deny` denies its extra term before any upstream call and serves
//! everything else like the real policy.

use std::path::PathBuf;

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_safety_extra_deny_denies_the_canary_term() {
    let guest = PathBuf::from(concat!(
        env!("APERTURE_GUEST_DIR"),
        "/safety_extra_deny.wasm"
    ));
    assert!(guest.is_file(), "guest not built at {}", guest.display());
    let config = format!("[components]\nsafety = {:?}\n", guest.display().to_string());
    let s = Setup::new(&["bb-gemini-key-1"], |l| l.config(&config)).await;
    let r =
        s.gw.generate(json!({"prompt": "a lighthouse, aperture-canary-term"}))
            .await;
    let e = r.error(400, "IMG_SAFETY_BLOCKED");
    assert_eq!(e["error_type"], "USER_ERROR", "{}", r.brief());
    assert_eq!(s.emu.calls(), 0, "denied before any upstream call");
    let ok = s.gw.generate(json!({"prompt": "a lighthouse"})).await;
    assert_eq!(image_sizes(&ok.ok()), vec![(1024, 1024)]);
}
