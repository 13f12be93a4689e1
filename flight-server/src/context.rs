//! The per-call context: who is calling, and their session.
//!
//! The front door authenticates every call (except the handshake) before the Flight SQL
//! handlers run, and leaves a [`CallContext`] in the request's extensions. The session is
//! resolved lazily: from the `pond_session` cookie when the client carries one, otherwise it is
//! created on first use and announced with `set-cookie` on the response.

use std::sync::Arc;

use parking_lot::Mutex;
use pond_coordinator::{Coordinator, Principal, Session};
use tonic::Request;
use tonic::metadata::MetadataMap;

use crate::status::{FlightSqlError, Result};

/// The name of Pond's session cookie.
pub const SESSION_COOKIE: &str = "pond_session";

/// What every authenticated call carries.
#[derive(Clone)]
pub struct CallContext {
    pub principal: Principal,
    coordinator: Arc<Coordinator>,
    cookie: Option<String>,
    created: Arc<Mutex<Option<Arc<Session>>>>,
}

impl CallContext {
    pub(crate) fn new(principal: Principal, coordinator: Arc<Coordinator>, cookie: Option<String>) -> Self {
        Self {
            principal,
            coordinator,
            cookie,
            created: Arc::new(Mutex::new(None)),
        }
    }

    /// The caller's session: the cookie's, or a new one.
    pub fn session(&self) -> Result<Arc<Session>> {
        if let Some(s) = self.created.lock().as_ref() {
            return Ok(Arc::clone(s));
        }
        let (session, new) = self.coordinator.session(&self.principal, self.cookie.as_deref())?;
        if new {
            *self.created.lock() = Some(Arc::clone(&session));
        }
        Ok(session)
    }

    /// The session that owns a handle (transaction id, prepared statement, query ticket).
    pub fn session_of(&self, handle: &str) -> Result<Arc<Session>> {
        let session = self.coordinator.session_of(&self.principal, handle)?;
        // A handle alone does not show the client keeps the session (a client without cookies
        // uses one per query); the session's cookie beside it does.
        if self.cookie.as_deref() == Some(session.id()) {
            session.mark_returned();
        }
        Ok(session)
    }

    /// The cookie to set on the response, if this call created a session.
    pub(crate) fn new_session_cookie(&self) -> Option<String> {
        self.created
            .lock()
            .as_ref()
            .map(|s| format!("{SESSION_COOKIE}={}; Path=/; HttpOnly", s.id()))
    }
}

/// Reads the context the front door attached.
pub fn context<T>(request: &Request<T>) -> Result<CallContext> {
    request
        .extensions()
        .get::<CallContext>()
        .cloned()
        .ok_or(FlightSqlError::Unauthenticated)
}

/// The bearer token of a call, if any: `authorization: Bearer …`, or Pond's client's own
/// header ([`pond_proto::token`]) when `authorization` is absent.
pub fn bearer(metadata: &MetadataMap) -> Option<String> {
    let Some(value) = metadata.get("authorization") else {
        let token = metadata.get(pond_proto::token::HEADER)?.to_str().ok()?.trim();
        return (!token.is_empty()).then(|| token.to_string());
    };
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string())
}

/// The session cookie of a call, if any.
pub fn session_cookie(metadata: &MetadataMap) -> Option<String> {
    metadata.get_all("cookie").iter().find_map(|v| {
        v.to_str().ok()?.split(';').find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == SESSION_COOKIE).then(|| v.to_string())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_cookie() {
        let mut m = MetadataMap::new();
        m.insert("authorization", "Bearer abc.def".parse().unwrap());
        m.insert("cookie", "a=1; pond_session=xyz; b=2".parse().unwrap());
        assert_eq!(bearer(&m).as_deref(), Some("abc.def"));
        assert_eq!(session_cookie(&m).as_deref(), Some("xyz"));
        let mut m = MetadataMap::new();
        m.insert("authorization", "Basic Zm9v".parse().unwrap());
        assert_eq!(bearer(&m), None);
        // Pond's client's header counts only without `authorization`.
        m.insert(pond_proto::token::HEADER, "ghi.jkl".parse().unwrap());
        assert_eq!(bearer(&m), None);
        m.remove("authorization");
        assert_eq!(bearer(&m).as_deref(), Some("ghi.jkl"));
        m.insert(pond_proto::token::HEADER, " ".parse().unwrap());
        assert_eq!(bearer(&m), None);
    }
}
