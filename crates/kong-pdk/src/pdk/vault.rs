use crate::error::Result;
use crate::kong::Kong;

/// `kong.vault`: secrets by reference (`{vault://env/my-secret}`).
/// **Needs MsgPack:1**: not in Kong's ProtoBuf service.
#[derive(Debug)]
pub struct Vault<'a> {
    kong: &'a mut Kong,
}

impl<'a> Vault<'a> {
    pub(crate) fn new(kong: &'a mut Kong) -> Self {
        Vault { kong }
    }

    /// `kong.vault.get(reference)`: the secret a reference points at;
    /// `None` when it cannot be resolved (Kong 3.10 drops the error).
    /// Every phase.
    pub async fn get(self, reference: &str) -> Result<Option<String>> {
        self.kong.call("kong.vault.get", (reference,)).await
    }

    /// `kong.vault.is_reference(value)`: whether `value` is a vault
    /// reference.
    pub async fn is_reference(self, value: &str) -> Result<bool> {
        let yes: Option<bool> = self.kong.call("kong.vault.is_reference", (value,)).await?;
        Ok(yes.unwrap_or(false))
    }
}
