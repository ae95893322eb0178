//! The AWS configuration every AWS client of glaux shares, loaded once per process: credentials
//! from the SDK's default chain — environment, shared profiles (static keys, SSO, `role_arn` with
//! `source_profile`, `credential_process`), web identity (EKS IRSA), container credentials
//! (ECS, EKS Pod Identity), EC2 instance metadata — and the region. Glue and S3 both use it.

use std::time::SystemTime;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use tokio::sync::OnceCell;

static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();

/// The process's AWS configuration (the SDK over rustls with ring, as object_store uses).
pub async fn sdk_config() -> &'static SdkConfig {
    CONFIG
        .get_or_init(|| async {
            let http = aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https();
            aws_config::defaults(BehaviorVersion::latest()).http_client(http).load().await
        })
        .await
}

/// One set of AWS credentials, and when it stops working.
#[derive(Clone)]
pub struct AwsKeys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expiry: Option<SystemTime>,
}

impl std::fmt::Debug for AwsKeys {
    // secrets never reach logs
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKeys").field("expiry", &self.expiry).finish_non_exhaustive()
    }
}

/// Credentials from the default chain, fetched now (callers cache them until near expiry).
pub async fn credentials() -> Result<AwsKeys, String> {
    let config = sdk_config().await;
    let provider =
        config.credentials_provider().ok_or_else(|| "no AWS credentials provider is configured".to_string())?;
    let found = provider.provide_credentials().await.map_err(|e| {
        format!(
            "no AWS credentials were found ({}); set them in the environment, a profile, a web identity, \
             container or instance role — or read public data with --no-sign-request (GLAUX_S3_ANONYMOUS=true)",
            aws_smithy_types::error::display::DisplayErrorContext(&e)
        )
    })?;
    Ok(AwsKeys {
        access_key_id: found.access_key_id().to_string(),
        secret_access_key: found.secret_access_key().to_string(),
        session_token: found.session_token().map(str::to_string),
        expiry: found.expiry(),
    })
}
