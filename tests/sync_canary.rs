//! Canary test: the store, the inference inputs and personalization (class names and
//! examples) are seeded with 1,000 unique canary strings and numbers; every byte the SDK sends is captured twice — as the SDK built each
//! request (plaintext, before TLS) and at a man-in-the-middle proxy (after TLS, plus the raw
//! TCP bytes) — and no canary may appear. The proxy also checks that nothing was sent that
//! the SDK's request log does not account for.

#[path = "sync_harness.rs"]
mod harness;
use harness::proxy;

use std::sync::Arc;

use edgekeep::inference::Tensor;
use edgekeep::personalize::{Backbone, ClassId, GuardPolicy, HeadKind, Personalizer};
use edgekeep::store::Namespace;
use edgekeep::sync::{ActivationPolicy, SyncClient};
use edgekeep::telemetry::{ErrorKind, metrics};
use harness::{Harness, RequestLog, model_bytes, open_store, publisher_key};
use proxy::Mitm;

const APP_NOTES: Namespace = Namespace::new("app.notes");
const APP_EVENTS: Namespace = Namespace::new("app.events");

/// Every log line the SDK writes, at every level.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

/// Captures the SDK's logs (target `edgekeep`, every level) for the whole test binary.
fn capture_sdk_logs() -> LogBuffer {
    use tracing_subscriber::layer::SubscriberExt as _;
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(logs.clone()),
        )
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_target("edgekeep", tracing::Level::TRACE),
        );
    tracing::subscriber::set_global_default(subscriber).unwrap();
    logs
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_ever_reaches_the_wire_or_the_logs() {
    let logs = capture_sdk_logs();
    let mitm = Mitm::start().await;
    let h = Harness::start_behind(&mitm).await;
    let publisher = publisher_key();
    h.register_publisher(&publisher).await;
    h.publish_and_roll_out(&publisher, "classifier", 1, &model_bytes("logreg.onnx"))
        .await;

    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let strings: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                "CANARY-{i:04}-{:08x}",
                (i as u32).wrapping_mul(2_654_435_761)
            )
        })
        .collect();
    let numbers: Vec<f32> = (0..1000).map(|i| 7919.0 + i as f32 * 0.37).collect();
    for (i, canary) in strings.iter().enumerate() {
        store
            .kv()
            .put(APP_NOTES, format!("note-{i}").as_bytes(), canary.as_bytes())
            .unwrap();
        store
            .events()
            .append(APP_EVENTS, canary.as_bytes())
            .unwrap();
    }

    let log = Arc::new(RequestLog::default());
    let client = h
        .enroll(
            SyncClient::builder(&mitm.base_url())
                .store(store.clone())
                .root_certificate_pem(mitm.ca_pem.as_bytes().to_vec())
                .publisher_key(publisher.public_key())
                .activation_policy(ActivationPolicy::Immediate)
                .request_observer(log.clone()),
        )
        .await;
    client.update_models_async().await.unwrap();
    let active = client.active_model("classifier").unwrap().unwrap();
    let input = active.model.inputs()[0].clone();
    let shape = input.concrete_shape(1);
    let width: usize = shape.iter().product();
    for chunk in numbers.chunks(width) {
        if chunk.len() == width {
            let started = std::time::Instant::now();
            let values = Tensor::from_shape_vec(&shape, chunk.to_vec()).unwrap();
            let _ = active.model.run([(input.name.as_str(), values)]);
            client.telemetry().observe(
                metrics::INFERENCE_LATENCY_MS,
                &active.version,
                started.elapsed().as_secs_f64() * 1e3,
            );
        }
    }
    // Personalization on the same data: canary class names, canary-valued examples, the
    // quality report through the declared metrics.
    let backbone =
        Backbone::new(active.model.clone(), "probabilities", active.model_sha256).unwrap();
    let mut personal = Personalizer::builder(backbone)
        .head(HeadKind::prototype())
        .guard(GuardPolicy {
            min_held_out: 2,
            ..GuardPolicy::default()
        })
        .min_train_per_class(3)
        .held_out_fraction(0.4)
        .store(client.store().clone(), Namespace::new("app.personal"))
        .build()
        .unwrap();
    let classes: Vec<ClassId> = strings[..3]
        .iter()
        .map(|name| personal.define_class(name).unwrap())
        .collect();
    for (i, chunk) in numbers.chunks(width).take(30).enumerate() {
        let values = Tensor::from_shape_vec(&shape, chunk.to_vec()).unwrap();
        personal
            .add_example([(input.name.as_str(), values)], classes[i % 3])
            .unwrap();
    }
    let adaptation = personal.retrain().unwrap();
    let report = adaptation.report.expect("a held-out split exists");
    report.record(client.telemetry(), &active.version);
    client
        .telemetry()
        .add_labeled(metrics::ERRORS, ErrorKind::ModelRun, None, 1);
    for _ in 0..3 {
        client.sync_async().await.unwrap();
    }

    let sdk_side = log.requests();
    assert!(
        sdk_side.iter().any(|r| contains(
            r.body.as_deref().unwrap_or_default(),
            b"personalized_accuracy"
        )),
        "the personalization report was uploaded (and is scanned below)"
    );
    let wire = mitm.requests();
    assert!(
        wire.len() >= 5,
        "too little traffic to be a meaningful test"
    );
    // Every request the proxy saw is one the SDK built, and vice versa.
    assert_eq!(sdk_side.len(), wire.len());
    for (built, seen) in sdk_side.iter().zip(&wire) {
        assert!(
            built.url.ends_with(&seen.path),
            "{} vs {}",
            built.url,
            seen.path
        );
        assert_eq!(built.body.clone().unwrap_or_default(), seen.body);
    }
    let raw = mitm.raw_from_client.lock().unwrap().clone();
    let mut texts: Vec<Vec<u8>> = Vec::new();
    for request in &sdk_side {
        texts.push(request.url.clone().into_bytes());
        for (name, value) in &request.headers {
            texts.push(format!("{name}: {value}").into_bytes());
        }
        texts.push(request.body.clone().unwrap_or_default());
    }
    for request in &wire {
        texts.push(request.path.clone().into_bytes());
        for (name, value) in &request.headers {
            texts.push(format!("{name}: {value}").into_bytes());
        }
        texts.push(request.body.clone());
    }
    // Raw TLS records: canary texts only (a 4-byte pattern can occur in ciphertext by chance).
    for canary in &strings {
        assert!(
            !contains(&raw, canary.as_bytes()),
            "canary string in the TCP stream"
        );
    }
    for text in &texts {
        for canary in &strings {
            assert!(
                !contains(text, canary.as_bytes()),
                "canary string on the wire"
            );
        }
        for number in &numbers {
            assert!(
                !contains(text, number.to_string().as_bytes()),
                "canary number on the wire"
            );
            assert!(
                !contains(text, &number.to_le_bytes()),
                "canary number bytes on the wire"
            );
        }
    }

    let logged = logs.0.lock().unwrap().clone();
    assert!(
        contains(&logged, b"device enrolled") && contains(&logged, b"model version"),
        "the SDK logged its work: {}",
        String::from_utf8_lossy(&logged)
    );
    for canary in &strings {
        assert!(
            !contains(&logged, canary.as_bytes()),
            "canary string in the logs"
        );
    }
}
