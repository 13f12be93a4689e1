//! Shares: a user's database published read-only to other users, with MotherDuck's syntax
//! (`CREATE SHARE`, `ATTACH 'pond:_share/<db>/<token>'`).
//!
//! Invariants:
//! - A share is a pointer, never a copy: its source database's id and, when its updates are
//!   MANUAL, the snapshot it publishes. Readers attach that snapshot (or, AUTOMATIC, the newest)
//!   as a private read-only copy built from the store's objects.
//! - A share's token is 128 random bits, and a URL's token is compared with every share's in
//!   constant time, so neither guessing nor timing finds one.
//! - Who may read is decided here ([`ShareEntry::may_read`]), by the catalog that holds the
//!   share, never by a duckling: a duckling process asks its coordinator, which checks.
//! - A reader is told nothing of the owner but the share: its grants stay with the owner
//!   ([`ShareEntry::for_reader`]).

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::{CoordinatorError, Result};

/// The prefix of a share's URL after `pond:` (or `md:`).
pub const SHARE_PREFIX: &str = "_share/";

/// Who may attach a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    /// The owner and the users granted `READ` on it.
    Restricted,
    /// Every user of this server (Pond has one organization per server).
    Organization,
    /// Anyone holding the URL. On one server that is every user too; the difference is that
    /// such a share is never listed, so its URL is the only way to it.
    Unrestricted,
}

/// Whether a share is listed in `shared_with_me` to the users who may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    Discoverable,
    Hidden,
}

/// What readers see: the snapshot published by `CREATE SHARE` or the last `UPDATE SHARE`
/// (`Manual`), or the source's newest snapshot, followed within seconds (`Automatic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Update {
    Automatic,
    Manual,
}

macro_rules! keyword_enum {
    ($t:ty, $what:literal, $($variant:ident => $kw:literal),+) => {
        impl $t {
            /// The keyword, as `CREATE SHARE` takes it and the views show it.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $kw),+ }
            }

            /// Parses the keyword, in any case.
            pub fn parse(word: &str) -> Result<Self> {
                $(if word.eq_ignore_ascii_case($kw) { return Ok(Self::$variant); })+
                Err(CoordinatorError::InvalidArgument(format!(
                    concat!($what, " is one of {}, not {}"),
                    [$($kw),+].join(", "),
                    word
                )))
            }
        }
    };
}

keyword_enum!(Access, "ACCESS", Restricted => "RESTRICTED", Organization => "ORGANIZATION", Unrestricted => "UNRESTRICTED");
keyword_enum!(Visibility, "VISIBILITY", Discoverable => "DISCOVERABLE", Hidden => "HIDDEN");
keyword_enum!(Update, "UPDATE", Automatic => "AUTOMATIC", Manual => "MANUAL");

/// A share's options as `CREATE SHARE` wrote them; [`Self::resolved`] fills MotherDuck's
/// defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareOptions {
    pub access: Option<Access>,
    pub visibility: Option<Visibility>,
    pub update: Option<Update>,
}

/// A share's options, every one decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareSettings {
    pub access: Access,
    pub visibility: Visibility,
    pub update: Update,
}

impl ShareOptions {
    /// MotherDuck's defaults: ORGANIZATION access, DISCOVERABLE (HIDDEN when UNRESTRICTED),
    /// MANUAL updates. An UNRESTRICTED share cannot be DISCOVERABLE: listing it would hand its
    /// URL to everyone.
    pub fn resolved(self) -> Result<ShareSettings> {
        let access = self.access.unwrap_or(Access::Organization);
        let visibility = self.visibility.unwrap_or(match access {
            Access::Unrestricted => Visibility::Hidden,
            _ => Visibility::Discoverable,
        });
        if access == Access::Unrestricted && visibility == Visibility::Discoverable {
            return Err(CoordinatorError::InvalidArgument(
                "an UNRESTRICTED share must be HIDDEN: only its URL leads to it".into(),
            ));
        }
        Ok(ShareSettings {
            access,
            visibility,
            update: self.update.unwrap_or(Update::Manual),
        })
    }
}

/// A share as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareEntry {
    pub name: String,
    pub owner: String,
    /// The source database's id: a share follows its database, not its name.
    pub database_id: String,
    /// The source database's name when the share was made (its URL's `<db>`).
    pub database_name: String,
    /// 32 hex digits: 128 random bits.
    pub token: String,
    pub settings: ShareSettings,
    /// The snapshot readers of a MANUAL share see.
    pub published_seq: Option<u64>,
    /// Users granted `READ` (RESTRICTED shares); empty as a reader sees it.
    pub grants: Vec<String>,
    pub created_ms: u64,
}

impl ShareEntry {
    /// `pond:_share/<db>/<token>`.
    pub fn url(&self) -> String {
        format!("pond:{SHARE_PREFIX}{}/{}", self.database_name, self.token)
    }

    /// Whether `user` may attach it.
    pub fn may_read(&self, user: &str) -> bool {
        self.owner == user
            || match self.settings.access {
                Access::Restricted => self.grants.iter().any(|g| g == user),
                Access::Organization | Access::Unrestricted => true,
            }
    }

    /// Whether it is listed in `user`'s `shared_with_me` without being attached.
    pub fn discoverable_by(&self, user: &str) -> bool {
        self.owner != user && self.settings.visibility == Visibility::Discoverable && self.may_read(user)
    }

    /// What a reader is told: the share without its grants.
    pub fn for_reader(mut self) -> Self {
        self.grants.clear();
        self
    }

    /// Whether `token` is this share's, compared in constant time.
    pub fn has_token(&self, token: &str) -> bool {
        self.token.len() == token.len() && bool::from(self.token.as_bytes().ct_eq(token.as_bytes()))
    }
}

/// A new share's random token.
pub fn new_token() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A share's URL taken apart: `_share/<db>/<token>` (after `pond:` or `md:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareUrl {
    pub database_name: String,
    pub token: String,
}

impl ShareUrl {
    /// Parses the part of an `ATTACH` URL after `pond:`. The same error for every malformed URL,
    /// naming the form, not what was wrong.
    pub fn parse(source: &str) -> Result<Self> {
        let malformed = || {
            CoordinatorError::InvalidArgument(format!(
                "a share's URL is pond:{SHARE_PREFIX}<database>/<token>, as CREATE SHARE returned it"
            ))
        };
        let rest = source.strip_prefix(SHARE_PREFIX).ok_or_else(malformed)?;
        let (database_name, token) = rest.split_once('/').ok_or_else(malformed)?;
        if database_name.is_empty() || token.is_empty() || token.contains('/') || token.len() > 128 {
            return Err(malformed());
        }
        Ok(Self {
            database_name: database_name.to_string(),
            token: token.to_string(),
        })
    }
}

/// A reader's attachment of a share, as the catalog keeps it across sessions and restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareAttachment {
    pub user: String,
    pub alias: String,
    /// The URL's token: the attachment follows the share it named, and ends with it.
    pub token: String,
    pub attached_ms: u64,
}

/// One of a reader's attachments with what it shows now: the share, or why it cannot be read
/// (revoked, dropped, its source database dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedShare {
    pub alias: String,
    pub attached_ms: u64,
    pub share: std::result::Result<ShareEntry, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(access: Access) -> ShareEntry {
        ShareEntry {
            name: "s".into(),
            owner: "alice".into(),
            database_id: "db_1".into(),
            database_name: "sales".into(),
            token: new_token(),
            settings: ShareSettings {
                access,
                visibility: Visibility::Discoverable,
                update: Update::Manual,
            },
            published_seq: Some(3),
            grants: vec!["bob".into()],
            created_ms: 0,
        }
    }

    #[test]
    fn tokens_are_128_random_bits_and_compare_whole() {
        let a = new_token();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_token());
        let s = ShareEntry {
            token: a.clone(),
            ..share(Access::Restricted)
        };
        assert!(s.has_token(&a));
        assert!(!s.has_token(&a[..31]));
        assert!(!s.has_token(&format!("{a}0")));
        assert!(!s.has_token(&a.to_uppercase().replace(|c: char| c.is_ascii_digit(), "x")));
    }

    #[test]
    fn access_decides_who_reads_and_visibility_who_discovers() {
        let restricted = share(Access::Restricted);
        assert!(restricted.may_read("alice") && restricted.may_read("bob"));
        assert!(!restricted.may_read("carol"));
        assert!(restricted.discoverable_by("bob") && !restricted.discoverable_by("carol"));
        assert!(
            !restricted.discoverable_by("alice"),
            "the owner's shares are owned_shares"
        );
        let org = share(Access::Organization);
        assert!(org.may_read("carol") && org.discoverable_by("carol"));
        assert!(restricted.for_reader().grants.is_empty());
    }

    #[test]
    fn defaults_follow_motherduck_and_unrestricted_shares_stay_hidden() {
        let d = ShareOptions::default().resolved().unwrap();
        assert_eq!(
            (d.access, d.visibility, d.update),
            (Access::Organization, Visibility::Discoverable, Update::Manual)
        );
        let u = ShareOptions {
            access: Some(Access::Unrestricted),
            ..Default::default()
        };
        assert_eq!(u.resolved().unwrap().visibility, Visibility::Hidden);
        let listed = ShareOptions {
            visibility: Some(Visibility::Discoverable),
            ..u
        };
        assert!(listed.resolved().is_err());
        assert!(
            Access::parse("everyone")
                .unwrap_err()
                .to_string()
                .contains("RESTRICTED")
        );
        assert_eq!(Update::parse("automatic").unwrap(), Update::Automatic);
    }

    #[test]
    fn urls_parse_only_in_their_one_form() {
        let u = ShareUrl::parse("_share/sales/abc").unwrap();
        assert_eq!((u.database_name.as_str(), u.token.as_str()), ("sales", "abc"));
        for bad in ["sales", "_share/sales", "_share//abc", "_share/sales/", "_share/a/b/c"] {
            assert!(ShareUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
