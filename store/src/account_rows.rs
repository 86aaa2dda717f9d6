//! Account rows as stored: the JSON of an [`Account`], its secret sealed under the secret key when one is
//! set (`secret_sealed`, see `seal.rs`) or plain (`secret`, as before encryption was configured).

use serde_json::Value;

use crate::accounts::Account;
use crate::error::StoreError;
use crate::seal::{self, SecretKey};

/// Field of a sealed secret in a row.
const SEALED_FIELD: &str = "secret_sealed";

/// A decoded row and whether its secret was stored plain.
pub(crate) struct Decoded {
    pub(crate) account: Account,
    pub(crate) plain: bool,
}

/// The row for `account`: its secret sealed when `key` is set.
pub(crate) fn encode(account: &Account, key: Option<&SecretKey>) -> Result<String, StoreError> {
    let mut value = serde_json::to_value(account).map_err(StoreError::Encode)?;
    if let (Some(key), Value::Object(map)) = (key, &mut value) {
        let sealed = seal::seal(key, account.id, &account.label, &account.secret)?;
        map.remove("secret");
        map.insert(SEALED_FIELD.into(), Value::String(sealed));
    }
    serde_json::to_string(&value).map_err(StoreError::Encode)
}

/// Decodes row `id`, opening a sealed secret with `key`. A sealed secret without a key, or with the
/// wrong one, is [`StoreError::SecretKey`].
pub(crate) fn decode(id: u64, json: &str, key: Option<&SecretKey>) -> Result<Decoded, StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("account row {id}: {e}"));
    let mut value: Value = serde_json::from_str(json).map_err(|e| corrupt(&e))?;
    let Value::Object(map) = &mut value else {
        return Err(corrupt(&"not a JSON object"));
    };
    let plain = match map.remove(SEALED_FIELD) {
        None => true,
        Some(Value::String(sealed)) => {
            let label = map.get("label").and_then(Value::as_str).unwrap_or("");
            let Some(key) = key else {
                return Err(StoreError::SecretKey(
                    "the store holds encrypted account secrets but no secret key is set: set \
                     APERTURE_SECRET_KEY (or secret_key_file) to the key they were encrypted with"
                        .into(),
                ));
            };
            let secret = seal::open(key, id, label, &sealed)?;
            map.insert("secret".into(), Value::String(secret));
            false
        }
        Some(_) => return Err(corrupt(&"secret_sealed is not a string")),
    };
    let account: Account = serde_json::from_value(value).map_err(|e| corrupt(&e))?;
    if account.id != id {
        return Err(StoreError::Corrupt(format!(
            "account row {id} holds account id {}",
            account.id
        )));
    }
    Ok(Decoded { account, plain })
}

/// Whether a row holds a sealed secret (without opening it).
pub(crate) fn is_sealed_row(json: &str) -> bool {
    serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|v| {
            v.get(SEALED_FIELD)
                .and_then(Value::as_str)
                .map(seal::is_sealed)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{AccountState, Counters};

    fn account() -> Account {
        Account {
            id: 3,
            label: "main".into(),
            email: None,
            secret: "AIzaSy-plain-secret".into(),
            state: AccountState::Active,
            created_ms: 1,
            counters: Counters::default(),
            disabled_models: Default::default(),
        }
    }

    #[test]
    fn plain_without_key_sealed_with_key() {
        let key = SecretKey::from_bytes([1; 32]);
        let plain = encode(&account(), None).unwrap();
        assert!(plain.contains("AIzaSy-plain-secret") && !is_sealed_row(&plain));
        let d = decode(3, &plain, Some(&key)).unwrap();
        assert!(d.plain);
        assert_eq!(d.account, account());

        let sealed = encode(&account(), Some(&key)).unwrap();
        assert!(
            !sealed.contains("AIzaSy") && is_sealed_row(&sealed),
            "{sealed}"
        );
        let d = decode(3, &sealed, Some(&key)).unwrap();
        assert!(!d.plain);
        assert_eq!(d.account, account());
        assert!(matches!(
            decode(3, &sealed, None),
            Err(StoreError::SecretKey(_))
        ));
        assert!(matches!(
            decode(3, &sealed, Some(&SecretKey::from_bytes([2; 32]))),
            Err(StoreError::SecretKey(_))
        ));
    }
}
