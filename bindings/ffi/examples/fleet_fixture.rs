//! Seeds a running `edgekeep-server` for the binding tests (`bindings/test.sh`): registers a
//! fresh publisher key, publishes, approves and rolls out a real model to the whole org, mints
//! single-use bootstrap tokens, and prints what the tests need as JSON.
//!
//! ```text
//! fleet_fixture URL CA_PEM OWNER_API_KEY MODEL_FILE SLOT TOKENS
//! ```

use edgekeep_protocol::api::{BootstrapTokenResponse, CreateBootstrapTokenRequest};
use edgekeep_protocol::artifact::{ArtifactSpec, ModelFormat, SemVer, build_artifact};
use edgekeep_protocol::signing::SigningKey;
use ring::rand::SystemRandom;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error>;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn expect(response: reqwest::Response, status: u16, what: &str) -> Result<Value, Error> {
    let got = response.status().as_u16();
    let body = response.text().await?;
    if got != status {
        return Err(format!("{what}: HTTP {got}: {body}").into());
    }
    Ok(serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, ca, owner, model_file, slot, tokens] = args.as_slice() else {
        return Err("usage: fleet_fixture URL CA_PEM OWNER_API_KEY MODEL_FILE SLOT TOKENS".into());
    };
    let ca_pem = std::fs::read(ca)?;
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem)?)
        .build()?;
    let org = expect(
        http.get(format!("{url}/v1/org"))
            .bearer_auth(owner)
            .send()
            .await?,
        200,
        "read org",
    )
    .await?;
    let org_id = org["id"].as_str().ok_or("org has no id")?.to_owned();

    let rng = SystemRandom::new();
    let publisher = SigningKey::generate(&rng).map_err(|e| format!("{e:?}"))?;
    let public = publisher.public_key().to_text();
    expect(
        http.post(format!("{url}/v1/publisher-keys"))
            .bearer_auth(owner)
            .json(&json!({"name": "bindings-ci", "public_key": public}))
            .send()
            .await?,
        201,
        "register publisher key",
    )
    .await?;

    let spec = ArtifactSpec {
        model: slot.clone(),
        version: 1,
        format: ModelFormat::Onnx,
        min_sdk_version: SemVer::new(0, 1, 0),
        tract_version: SemVer::new(0, 23, 9),
        opset: 17,
        created_at: now() - 10,
        expires_at: now() + 86_400,
    };
    let built = build_artifact(&std::fs::read(model_file)?, &spec, &publisher, &rng)
        .map_err(|e| format!("{e:?}"))?;
    expect(
        http.post(format!("{url}/v1/artifacts"))
            .bearer_auth(owner)
            .header("content-type", "application/octet-stream")
            .body(built.to_bundle())
            .send()
            .await?,
        201,
        "upload artifact",
    )
    .await?;
    expect(
        http.post(format!("{url}/v1/models/{slot}/versions/1/approve"))
            .bearer_auth(owner)
            .send()
            .await?,
        200,
        "approve",
    )
    .await?;
    expect(
        http.post(format!("{url}/v1/rollouts"))
            .bearer_auth(owner)
            .json(
                &json!({"model": slot, "version": 1, "device_group": null, "basis_points": 10000}),
            )
            .send()
            .await?,
        201,
        "roll out",
    )
    .await?;

    let mut minted = Vec::new();
    for _ in 0..tokens.parse::<usize>()? {
        let response = http
            .post(format!("{url}/v1/bootstrap-tokens"))
            .bearer_auth(owner)
            .json(&CreateBootstrapTokenRequest::default())
            .send()
            .await?;
        let body = expect(response, 201, "mint bootstrap token").await?;
        let token: BootstrapTokenResponse = serde_json::from_value(body)?;
        minted.push(token.token);
    }
    let out = json!({
        "url": url,
        "ca_pem": String::from_utf8(ca_pem)?,
        "org_id": org_id,
        "publisher_key": public,
        "slot": slot,
        "tokens": minted,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
