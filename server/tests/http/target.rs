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

/// `slots` caps what is served at once (the rest wait), and `PUT /_tune`
/// slows every answer from then on.
#[tokio::test]
async fn slots_cap_what_is_served_at_once_and_the_latency_can_be_tuned() {
    let base = spawn_target(Distribution::Fixed { ms: 0.0 }, 0.0, 503).await;
    let client = reqwest::Client::new();
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let client = client.clone();
            let url = format!("{base}/x?slots=3&delay_ms=30");
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap(), 200);
    }
    let s = stats(&base).await;
    assert_eq!(s["requests"], 12);
    let most = s["most_served_at_once"].as_u64().unwrap();
    assert!((1..=3).contains(&most), "{s}");
    for bad in ["slots=0", "slots=x", "slots=10001"] {
        let r = client.get(format!("{base}/x?{bad}")).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }

    let delay = |body: serde_json::Value| body["delay_ms"].as_f64().unwrap();
    let before: serde_json::Value = client
        .get(format!("{base}/x?delay_ms=4"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(delay(before), 4.0);
    let tuned = client
        .put(format!("{base}/_tune"))
        .json(&serde_json::json!({"latency_factor": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(tuned.status(), 200);
    let after: serde_json::Value = client
        .get(format!("{base}/x?delay_ms=4"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(delay(after), 8.0);
    assert_eq!(stats(&base).await["latency_factor"], 2.0);
    for bad in [
        serde_json::json!({"latency_factor": -1.0}),
        serde_json::json!({"latency_factor": 1000.0}),
        serde_json::json!({"factor": 2.0}),
    ] {
        let r = client
            .put(format!("{base}/_tune"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
}
