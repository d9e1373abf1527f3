use shared::spec::Distribution;

use crate::helpers::{spawn_target, stats};

#[tokio::test]
async fn the_target_fails_its_share_and_obeys_overrides() {
    let base = spawn_target(Distribution::Fixed { ms: 0.0 }, 0.5, 503).await;
    let client = reqwest::Client::new();
    let mut failed = 0;
    for _ in 0..200 {
        let s = client
            .get(format!("{base}/anything"))
            .send()
            .await
            .unwrap()
            .status();
        assert!(s == 200 || s == 503, "{s}");
        if s == 503 {
            failed += 1;
        }
    }
    assert!((50..150).contains(&failed), "about half fail: {failed}");
    let forced = client
        .post(format!("{base}/x?status=418&delay_ms=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), 418);
    let ok = client
        .post(format!("{base}/x?fail_share=0"))
        .body("a\nb\n\nc")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["lines"], 3);
    let s = stats(&base).await;
    assert_eq!(s["requests"], 202);
    assert_eq!(s["failures"].as_u64().unwrap(), failed + 1);
    assert_eq!(s["lines"], 3);
}
