//! What each instance keeps for SMS codes: its copy of the policy, the
//! addresses it saw over their hourly sends, the delivery queue, and the
//! deployment's key for code digests.

use std::sync::Arc;

use crate::admin::invalid;
use crate::clock::Clock;
use crate::error::CiamError;
use crate::service::{Cached, Ciam, ClosedWindows, shared_secret};
use crate::store::Store;

use super::delivery::{Delivery, SmsConfig};
use super::{SmsPolicy, SmsPolicyPatch};

/// The setting the SMS policy is stored under.
const SMS_POLICY: &str = "sms_policy";
/// The setting of the key code digests are made with.
const SMS_CODE_SECRET: &str = "sms_code_secret";

/// SMS codes on one instance.
#[derive(Debug)]
pub(crate) struct SmsState {
    policy: Cached<SmsPolicy>,
    /// Addresses seen over their hourly sends, and numbers refused for an
    /// address, with when their window ends.
    pub(crate) closed: ClosedWindows,
    /// The queue to the provider; `None` without one.
    delivery: Option<Delivery>,
    config: SmsConfig,
    code_secret: Vec<u8>,
}

impl SmsState {
    /// Reads (or makes) the deployment's code key and starts delivery.
    pub(crate) async fn open(
        store: &Arc<dyn Store>,
        config: &SmsConfig,
        clock: &Arc<dyn Clock>,
        key_encryption_key: Option<&[u8; 32]>,
    ) -> Result<Self, CiamError> {
        let stored = shared_secret(store.as_ref(), SMS_CODE_SECRET).await?;
        // With a key encryption key, the digests' key is derived from it and
        // the stored secret together: a copy of the database alone (a
        // backup) holds nothing to try a million codes against.
        let code_secret = match key_encryption_key {
            Some(kek) => crate::token::keyed_digest(kek, &stored).into_bytes(),
            None => stored,
        };
        let delivery = config
            .provider
            .clone()
            .map(|provider| Delivery::start(provider, config.outbound.clone(), Arc::clone(store), Arc::clone(clock)));
        Ok(Self {
            policy: Cached::new(),
            closed: ClosedWindows::default(),
            delivery,
            config: config.clone(),
            code_secret,
        })
    }

    pub(crate) fn delivery(&self) -> Option<&Delivery> {
        self.delivery.as_ref()
    }

    pub(crate) fn config(&self) -> &SmsConfig {
        &self.config
    }
}

impl Ciam {
    /// The SMS policy.
    pub async fn sms_policy(&self) -> Result<SmsPolicy, CiamError> {
        if let Some(p) = self.sms().policy.get() {
            return Ok(p);
        }
        let p: SmsPolicy = self.setting(SMS_POLICY).await?;
        self.sms().policy.set(p.clone());
        Ok(p)
    }

    /// Changes the fields of the SMS policy that `patch` sets.
    pub async fn update_sms_policy(&self, patch: SmsPolicyPatch) -> Result<SmsPolicy, CiamError> {
        let policy = patch.apply(self.sms_policy().await?);
        policy.validate().map_err(|(field, why)| invalid(field, why))?;
        self.put_setting(SMS_POLICY, &policy).await?;
        self.sms().policy.set(policy.clone());
        Ok(policy)
    }

    /// The deployment's key for code digests.
    pub(crate) fn sms_code_secret(&self) -> &[u8] {
        &self.sms().code_secret
    }
}
