//! `ciam app create|list|secret`.

use ciam_core::Ciam;
use ciam_core::admin::AppInput;
use ciam_core::clock::to_rfc3339;
use ciam_core::model::{AppAccess, ClientType, SigningAlg};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::{CliError, print_json};

/// `ciam app …`
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an app and print it (with its client id) as JSON.
    Create(AppCreate),
    /// List apps as JSON.
    List,
    /// Replace a confidential app's client secret; prints the new one once
    /// (the old one stops working).
    Secret {
        /// The app's client_id.
        client_id: String,
    },
}

/// Who may log in through an app.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Access {
    /// Every user.
    All,
    /// Only users assigned to the app.
    Assigned,
}

/// `ciam app create`
#[derive(Debug, Args)]
pub struct AppCreate {
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// Who may log in.
    #[arg(long, value_enum, default_value = "all")]
    pub access: Access,
    /// Check password age at login (PASSWORD_WARN / PASSWORD_EXPIRED).
    #[arg(long)]
    pub password_expiry_check: bool,
    /// session_token lifetime, seconds (default 432000).
    #[arg(long)]
    pub session_ttl: Option<i64>,
    /// id_token lifetime, seconds (default 300).
    #[arg(long)]
    pub id_token_ttl: Option<i64>,
    /// How id_tokens are signed: RS256, which every relying party verifies,
    /// or EdDSA (Ed25519), cheaper but not verified by all.
    #[arg(long, value_enum, default_value = "rs256")]
    pub id_token_alg: Alg,
    /// OpenID Connect: a public client (no secret, PKCE) or a confidential
    /// one (its secret is printed once).
    #[arg(long, value_enum, default_value = "public")]
    pub client_type: Kind,
    /// OpenID Connect: a redirect URI (repeat for several).
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// OpenID Connect: a post-logout redirect URI (repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// OpenID Connect: where an SSO ticket sends the browser.
    #[arg(long)]
    pub initiate_login_uri: Option<String>,
    /// SMS: let people register through this app with a code.
    #[arg(long)]
    pub self_registration: bool,
    /// SMS: a login code to an unregistered number creates the user.
    #[arg(long)]
    pub sms_auto_register: bool,
}

/// How an app's id_tokens are signed.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[value(name = "rs256", alias = "RS256")]
    Rs256,
    /// Ed25519.
    #[value(name = "eddsa", alias = "EdDSA")]
    EdDsa,
}

/// An OpenID Connect client's type.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// No secret; PKCE required.
    Public,
    /// Authenticates with a secret.
    Confidential,
}

pub(super) async fn run(ciam: &Ciam, command: AppCommand) -> Result<(), CliError> {
    match command {
        AppCommand::Create(a) => {
            let input = AppInput {
                name: Some(a.name),
                enabled: Some(true),
                password_expiry_check: Some(a.password_expiry_check),
                access: Some(match a.access {
                    Access::All => AppAccess::All,
                    Access::Assigned => AppAccess::Assigned,
                }),
                session_ttl: a.session_ttl,
                id_token_ttl: a.id_token_ttl,
                id_token_alg: Some(match a.id_token_alg {
                    Alg::Rs256 => SigningAlg::RS256,
                    Alg::EdDsa => SigningAlg::EdDSA,
                }),
                client_type: Some(match a.client_type {
                    Kind::Public => ClientType::Public,
                    Kind::Confidential => ClientType::Confidential,
                }),
                redirect_uris: Some(a.redirect_uris),
                post_logout_redirect_uris: Some(a.post_logout_redirect_uris),
                initiate_login_uri: Some(a.initiate_login_uri),
                self_registration: Some(a.self_registration),
                sms_auto_register: Some(a.sms_auto_register),
            };
            let (app, secret) = ciam.create_app(input).await?;
            let mut shown = app_json(&app);
            if let Some(secret) = secret {
                shown["client_secret"] = secret.expose().into();
            }
            print_json(&shown)
        }
        AppCommand::List => {
            let apps = ciam.apps().await?;
            print_json(&serde_json::Value::Array(apps.iter().map(app_json).collect()))
        }
        AppCommand::Secret { client_id } => {
            let secret = ciam.new_client_secret(&client_id).await?;
            print_json(&json!({"client_id": client_id, "client_secret": secret.expose()}))
        }
    }
}

fn app_json(app: &ciam_core::model::App) -> serde_json::Value {
    json!({
        "client_id": app.client_id,
        "name": app.name,
        "enabled": app.enabled,
        "password_expiry_check": app.password_expiry_check,
        "access": app.access,
        "session_ttl": app.session_ttl,
        "id_token_ttl": app.id_token_ttl,
        "id_token_alg": app.id_token_alg,
        "created_at": to_rfc3339(app.created_at),
        "client_type": app.oidc.client_type,
        "redirect_uris": app.oidc.redirect_uris,
        "post_logout_redirect_uris": app.oidc.post_logout_redirect_uris,
        "initiate_login_uri": app.oidc.initiate_login_uri,
        "self_registration": app.signup.self_registration,
        "sms_auto_register": app.signup.sms_auto_register,
    })
}
